#!/usr/bin/env bash
# outbound.sh
#    Bidirectional mode (M4): accepted local changes are queued in the
#    transaction of the change and sent to the ERP by drain_outbound() and
#    by the outbound background worker.  The CAP test ERP (test/erp) checks
#    the ETag round trip and 412 after a concurrent ERP change.  The fault
#    server (test/erp/fault-server.js) plays an SAP Gateway with CSRF tokens,
#    rejected values and a slow sink, and logs every request it receives.
#
# The database $DB has no background worker, so only drain_outbound() sends
# there and each step is deterministic.  $WORKER_DB is listed in
# stocktech_sync.database and has the outbound worker.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/../../scripts/lib.sh"
source "$here/lib.sh"

CAP_PORT=${CAP_PORT:-4393}
FAULT_PORT=${FAULT_PORT:-4394}
PG_PORT_IT=${PG_PORT_IT:-54393}
CAP_V4=http://127.0.0.1:$CAP_PORT/odata/v4/vehicle/
FAULT_BASE=http://127.0.0.1:$FAULT_PORT
GATEWAY_V4=$FAULT_BASE/gateway/odata/v4/vehicle/
DB=outbound
V2_DB=outbound_v2
PRECONDITION_DB=outbound_428
WORKER_DB=outbound_worker
# Lease of a claimed change: a change claimed by a killed worker is sent
# again once it expires.  It is above http_timeout (6 s), as the description of
# stocktech_sync.outbound_lease recommends, and above the slow sink's delay.
LEASE_SECONDS=8
SLOW_SINK_MS=4000

cleanup() {
    "$REPO_ROOT/test/erp/fault-stop.sh" "$FAULT_PORT" >/dev/null 2>&1 || true
    stop_erp "$CAP_PORT"
    stop_cluster
}
trap cleanup EXIT

# A long retry delay keeps a failed change waiting for the whole test; the
# scenarios that send it again set next_attempt_at themselves.
EXTRA_PG_CONF="stocktech_sync.database = '$WORKER_DB'
stocktech_sync.launcher_naptime = 1
stocktech_sync.http_max_attempts = 3
stocktech_sync.http_retry_base_delay = 30000
stocktech_sync.http_retry_max_delay = 60000
stocktech_sync.http_connect_timeout = 1000
stocktech_sync.http_timeout = 6000
stocktech_sync.outbound_lease = ${LEASE_SECONDS}s" start_cluster "$PG_PORT_IT"
SERVER_LOG=$CLUSTER_DIR/server.log
if ! start_erp "$CAP_PORT"; then
    echo "could not start the test ERP on port $CAP_PORT"
    echo "0 passed, 1 failed"
    exit 1
fi
if ! "$REPO_ROOT/test/erp/fault-start.sh" "$FAULT_PORT" >/dev/null; then
    echo "could not start the fault server on port $FAULT_PORT"
    echo "0 passed, 1 failed"
    exit 1
fi

for db in "$DB" "$V2_DB" "$WORKER_DB"; do
    psql -X -q -d postgres -c "CREATE DATABASE $db"
    psql -X -q -d "$db" -c 'CREATE EXTENSION stocktech_sync' -c "SELECT stocktech_sync.set_mode('hybrid')" >/dev/null
done

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

# json_get JSON FILTER: the jq FILTER applied to JSON, as raw text; empty
# for null or a JSON that does not parse.
json_get() {
    jq -r "$2 // \"\"" <<<"$1" 2>/dev/null
}

# contains TEXT PART: succeeds when TEXT contains PART.
contains() {
    [[ $1 == *"$2"* ]]
}

# save_connector DATABASE NAME PROFILE_JSON: creates the connector or saves
# the profile as its next version.
save_connector() {
    psql -X -At -v ON_ERROR_STOP=1 -d "$1" -v name="$2" -v profile="$3" \
        <<<"SELECT stocktech_sync.create_connector(:'name', :'profile'::jsonb)" >/dev/null
}

# drain DATABASE MAX: the JSON result of drain_outbound(MAX).
drain() {
    sql "$1" "SELECT stocktech_sync.drain_outbound($2)"
}

# drain_all DATABASE: drains until a call claims nothing, at most 10 calls.
# Prints the number of calls that claimed something.
drain_all() {
    local calls=0 result
    for _ in $(seq 10); do
        result=$(drain "$1" 100)
        [ "$(json_get "$result" '.claimed')" == 0 ] && break
        calls=$((calls + 1))
    done
    echo "$calls"
}

# pick_vins DATABASE CONNECTOR COUNT [CONDITION]: COUNT vehicles of
# CONNECTOR, not in transit, that match CONDITION and were never changed
# locally, so that each scenario works on vehicles of its own.  A vehicle
# created from an ERP record has NULL in the stocktech_wins fields
# (pdi_status, maint_status, odometer_km), because their ERP values are
# ignored, so conditions on them use IS DISTINCT FROM.
pick_vins() {
    local db=$1 connector=$2 count=$3 condition=${4:-true}
    sql "$db" "SELECT string_agg(vin, ' ' ORDER BY vin) FROM (
                   SELECT vin FROM stocktech_sync.vin_master AS m
                   WHERE erp_connector = '$connector' AND NOT vitw_in_transit AND ($condition)
                     AND NOT EXISTS (SELECT 1 FROM stocktech_sync.audit_log AS a
                                     WHERE a.vin = m.vin AND a.event <> 'erp_record')
                   ORDER BY vin LIMIT $count) AS v"
}

# column DATABASE VIN COLUMN: a vin_master column of the vehicle.
column() {
    sql "$1" "SELECT $3 FROM stocktech_sync.vin_master WHERE vin = '$2'"
}

# queue DATABASE EXPRESSION WHERE: EXPRESSION over the outbound_queue rows
# that match WHERE, in id order; EXPRESSION may be an aggregate.
queue() {
    sql "$1" "SELECT $2 FROM (SELECT * FROM stocktech_sync.outbound_queue WHERE $3 ORDER BY id) AS outbound_queue"
}

# letter DATABASE EXPRESSION WHERE: EXPRESSION over the latest outbound
# dead letter that matches WHERE.
letter() {
    sql "$1" "SELECT $2 FROM (SELECT * FROM stocktech_sync.outbound_dead_letter WHERE $3 ORDER BY id DESC LIMIT 1) AS outbound_dead_letter"
}

# letters DATABASE WHERE: the number of outbound dead letters that match WHERE.
letters() {
    sql "$1" "SELECT count(*) FROM stocktech_sync.outbound_dead_letter WHERE $2"
}

# status_column DATABASE CONNECTOR COLUMN: a column of the status view.
status_column() {
    sql "$1" "SELECT $3 FROM stocktech_sync.status WHERE connector = '$2'"
}

# outbound_audits DATABASE VIN: outbound_result audit rows of the vehicle.
outbound_audits() {
    sql "$1" "SELECT count(*) FROM stocktech_sync.audit_log WHERE vin = '$2' AND event = 'outbound_result'"
}

# entity_etag URL: the ETag header of a GET of URL.
entity_etag() {
    curl -sf -D - -o /dev/null "$1" | sed -n 's/^[Ee][Tt][Aa][Gg]: *//p' | tr -d '\r'
}

cap_url() { echo "${CAP_V4}Vehicles('$1')"; }
gateway_url() { echo "${GATEWAY_V4}Vehicles('$1')"; }

# cap_property VIN PROPERTY, gateway_property VIN PROPERTY: one property of
# the vehicle in the CAP ERP or in the fault server's gateway.
cap_property() {
    curl -sf "$(cap_url "$1")" | jq -r ".$2"
}
gateway_property() {
    curl -sf "$(gateway_url "$1")" | jq -r ".$2"
}

patch_cap() {
    PORT=$CAP_PORT "$REPO_ROOT/test/erp/patch-vehicle.sh" "$1" "$2" >/dev/null
}

fault_config() {
    curl -sf -X POST "$FAULT_BASE/_config" -H 'Content-Type: application/json' -d "$1" >/dev/null
}

clear_requests() {
    curl -sf -X DELETE "$FAULT_BASE/_requests" >/dev/null
}

# requests SCENARIO [JQ_FILTER]: the fault server's log entries of SCENARIO,
# passed through JQ_FILTER (default: the whole array).
requests() {
    curl -sf "$FAULT_BASE/_requests?scenario=$1" | jq -c "${2:-.}"
}

# writes SCENARIO [VIN]: the write requests of SCENARIO, of one vehicle
# when VIN is given, in arrival order.
writes() {
    requests "$1" "[.[] | select(.method != \"GET\" and .method != \"HEAD\")
                    | select(\"${2:-}\" == \"\" or (.url | contains(\"${2:-}\")))]"
}

# token_fetches SCENARIO: requests of SCENARIO that fetched a CSRF token.
token_fetches() {
    requests "$1" '[.[] | select((.headers["x-csrf-token"] // "" | ascii_downcase) == "fetch")] | length'
}

# vin_list "A B C": 'A', 'B', 'C' for an SQL IN list.
vin_list() {
    sed "s/[^ ][^ ]*/'&'/g; s/ /, /g" <<<"$1"
}

# wait_until SECONDS COMMAND...: polls COMMAND every 0.1 s until it succeeds.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.1
    done
}

# writes_at_least N SCENARIO [VIN]: succeeds when the fault server has
# logged N writes or more for SCENARIO (and VIN).
writes_at_least() {
    [ "$(writes "$2" "${3:-}" | jq length)" -ge "$1" ]
}

# crash_restart: stops the cluster with pg_ctl -m immediate, as a crash
# would, and starts it again on the same data directory.
crash_restart() {
    local run_as=()
    if [ "$(id -u)" = 0 ]; then
        run_as=(runuser -u postgres --)
    fi
    "${run_as[@]}" "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/data" -m immediate -w stop >/dev/null
    "${run_as[@]}" "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$SERVER_LOG" -w -t 60 start >/dev/null
}

# ---------------------------------------------------------------------------
# Connectors and vehicles
# ---------------------------------------------------------------------------

# CAP checks If-Match but does not hand out CSRF tokens, so the CAP
# connector does not fetch one.
CAP_PROFILE=$(local_profile s4hana_odata_v4.json "$CAP_V4" | jq -c '.write_back.csrf.fetch = false')
save_connector "$DB" cap "$CAP_PROFILE"
cap_run=$(sql "$DB" "SELECT stocktech_sync.sync_now('cap')")
check_eq "cap: initial sync succeeded" succeeded "$(json_get "$cap_run" '.status')"
GATEWAY_PROFILE=$(local_profile s4hana_odata_v4.json "$GATEWAY_V4")
save_connector "$DB" gw "$GATEWAY_PROFILE"
gw_run=$(sql "$DB" "SELECT stocktech_sync.sync_now('gw')")
check_eq "gw: initial sync succeeded" succeeded "$(json_get "$gw_run" '.status')"
check_eq "gw: the 40 gateway vehicles belong to gw" 40 \
    "$(sql "$DB" "SELECT count(*) FROM stocktech_sync.vin_master WHERE erp_connector = 'gw'")"
check_true "cap: vehicles have ETags" test "$(sql "$DB" "SELECT count(*) FROM stocktech_sync.vin_master WHERE erp_connector = 'cap' AND erp_etag IS NULL")" -eq 0

# ---------------------------------------------------------------------------
# Modes other than bidirectional queue nothing
# ---------------------------------------------------------------------------

read -r mode_vin <<<"$(pick_vins "$DB" cap 1 "pdi_status IS DISTINCT FROM 'failed'")"
for mode in manual read_only hybrid; do
    sql "$DB" "SELECT stocktech_sync.set_mode('$mode')" >/dev/null
    # read_only may reject the write; either way nothing is queued.
    psql -X -q -d "$DB" -c "UPDATE stocktech_sync.vin_master SET pdi_status = 'failed', odometer_km = coalesce(odometer_km, 0) + 1 WHERE vin = '$mode_vin'" >/dev/null 2>&1
    psql -X -q -d "$DB" -c "UPDATE stocktech_sync.vin_master SET pdi_status = 'pending' WHERE vin = '$mode_vin'" >/dev/null 2>&1
    check_eq "$mode: local changes queue nothing" 0 "$(sql "$DB" 'SELECT count(*) FROM stocktech_sync.outbound_queue')"
done

# ---------------------------------------------------------------------------
# Against CAP: a local change reaches the ERP and its new ETag comes back
# ---------------------------------------------------------------------------

sql "$DB" "SELECT stocktech_sync.set_mode('bidirectional')" >/dev/null
read -r vin_a vin_m <<<"$(pick_vins "$DB" cap 2 "commercial_status = 'available' AND pdi_status IS DISTINCT FROM 'passed'")"
echo "# CAP: vehicles $vin_a (commercial_status) and $vin_m (three fields)"

psql -X -q -d "$DB" -c 'BEGIN' \
    -c "UPDATE stocktech_sync.vin_master SET commercial_status = 'reserved' WHERE vin = '$vin_a'" \
    -c 'ROLLBACK' >/dev/null
check_eq "CAP: a rolled-back change queues nothing" 0 "$(queue "$DB" 'count(*)' "vin = '$vin_a'")"
sql "$DB" "UPDATE stocktech_sync.vin_master SET customs_evidence = 'evidence/$vin_a.jpg' WHERE vin = '$vin_a'" >/dev/null
check_eq "CAP: a change of a non-outbound field queues nothing" 0 "$(queue "$DB" 'count(*)' "vin = '$vin_a'")"

etag_a=$(column "$DB" "$vin_a" erp_etag)
sql "$DB" "UPDATE stocktech_sync.vin_master SET commercial_status = 'reserved' WHERE vin = '$vin_a'" >/dev/null
check_eq "CAP: one queued change" 1 "$(queue "$DB" 'count(*)' "vin = '$vin_a'")"
check_eq "CAP: queued fields" '{"commercial_status": "reserved"}' "$(queue "$DB" 'fields' "vin = '$vin_a'")"
check_eq "CAP: queued for the vehicle's connector" cap "$(queue "$DB" 'connector' "vin = '$vin_a'")"
check_eq "CAP: queued with the stored ETag" "$etag_a" "$(queue "$DB" 'etag' "vin = '$vin_a'")"
check_eq "CAP: the stored ETag is the ERP's" "$(entity_etag "$(cap_url "$vin_a")")" "$etag_a"
check_eq "CAP: queued as pending under policy 3.2" "pending 3.2 0" \
    "$(queue "$DB" "status || ' ' || policy_version || ' ' || attempts" "vin = '$vin_a'")"
check_true "CAP: queued with an idempotency key" test -n "$(queue "$DB" 'idempotency_key' "vin = '$vin_a'")"
check_eq "status: one change pending" 1 "$(status_column "$DB" cap outbound_pending)"
check_eq "status: age of the oldest pending change is shown" t \
    "$(status_column "$DB" cap 'outbound_oldest_age IS NOT NULL')"

odometer_m=$(($(column "$DB" "$vin_m" 'coalesce(odometer_km, 0)') + 250))
sql "$DB" "UPDATE stocktech_sync.vin_master SET pdi_status = 'passed', odometer_km = $odometer_m, arrival_date = '2025-06-01' WHERE vin = '$vin_m'" >/dev/null
check_eq "CAP: one change of three fields is one queued row" 1 "$(queue "$DB" 'count(*)' "vin = '$vin_m'")"
check_eq "CAP: queued fields of the three-field change" \
    "{\"pdi_status\": \"passed\", \"odometer_km\": $odometer_m, \"arrival_date\": \"2025-06-01\"}" \
    "$(sql "$DB" "SELECT jsonb_build_object('pdi_status', fields ->> 'pdi_status', 'odometer_km', (fields ->> 'odometer_km')::integer, 'arrival_date', fields ->> 'arrival_date') FROM stocktech_sync.outbound_queue WHERE vin = '$vin_m'")"

finstatus_a=$(cap_property "$vin_a" FinStatus)
storagebin_a=$(cap_property "$vin_a" StorageBin)
result=$(drain "$DB" 100)
echo "# CAP: drain: $result"
check_eq "CAP: drain claimed two changes" 2 "$(json_get "$result" '.claimed')"
check_eq "CAP: drain sent two changes" 2 "$(json_get "$result" '.sent')"
check_eq "CAP: the ERP has the new SalesStatus" R1 "$(cap_property "$vin_a" SalesStatus)"
check_eq "CAP: the ERP has the new PdiStatus" P2 "$(cap_property "$vin_m" PdiStatus)"
check_eq "CAP: the ERP has the new Mileage" "$odometer_m" "$(cap_property "$vin_m" Mileage)"
check_eq "CAP: the ERP has the new ArrivalDate" 2025-06-01 "$(cap_property "$vin_m" ArrivalDate)"
check_eq "CAP: the ERP's other properties stay" "$finstatus_a $storagebin_a" \
    "$(cap_property "$vin_a" FinStatus) $(cap_property "$vin_a" StorageBin)"
check_eq "CAP: erp_etag is the ERP's new ETag" "$(entity_etag "$(cap_url "$vin_a")")" "$(column "$DB" "$vin_a" erp_etag)"
check_true "CAP: the ETag changed" test "$etag_a" != "$(column "$DB" "$vin_a" erp_etag)"
check_eq "CAP: erp_etag of the three-field change" "$(entity_etag "$(cap_url "$vin_m")")" "$(column "$DB" "$vin_m" erp_etag)"
check_eq "CAP: the queued rows are done" "done done" \
    "$(sql "$DB" "SELECT string_agg(status, ' ') FROM stocktech_sync.outbound_queue WHERE vin IN ('$vin_a', '$vin_m')")"
check_eq "CAP: the queue keeps the acknowledged ETag" "$(column "$DB" "$vin_a" erp_etag)" \
    "$(queue "$DB" 'acknowledged_etag' "vin = '$vin_a'")"
check_eq "CAP: one attempt" 1 "$(queue "$DB" 'attempts' "vin = '$vin_a'")"
check_eq "CAP: done_at is set" t "$(queue "$DB" 'done_at IS NOT NULL' "vin = '$vin_a'")"
check_eq "CAP: the outcome is sent" sent "$(queue "$DB" 'outcome' "vin = '$vin_a'")"
check_eq "CAP: one outbound_result audit row" 1 "$(outbound_audits "$DB" "$vin_a")"
check_eq "CAP: the acknowledged value is the new baseline" reserved \
    "$(column "$DB" "$vin_a" "erp_baseline ->> 'commercial_status'")"
check_eq "status: nothing pending after the drain" 0 "$(status_column "$DB" cap outbound_pending)"
check_eq "status: no oldest age without pending changes" t \
    "$(status_column "$DB" cap 'outbound_oldest_age IS NULL')"
check_eq "CAP: a second drain claims nothing" 0 "$(json_get "$(drain "$DB" 100)" '.claimed')"

# The next poll reads the change back from the ERP: it changes nothing and
# queues nothing.
audits_before=$(sql "$DB" "SELECT count(*) FROM stocktech_sync.audit_log WHERE vin = '$vin_a'")
echo_run=$(sql "$DB" "SELECT stocktech_sync.sync_now('cap')")
check_eq "CAP: the poll after the write succeeded" succeeded "$(json_get "$echo_run" '.status')"
check_eq "CAP: the ERP's echo of the change queues nothing" 2 \
    "$(sql "$DB" "SELECT count(*) FROM stocktech_sync.outbound_queue")"
check_eq "CAP: the ERP's echo keeps the local value" reserved "$(column "$DB" "$vin_a" commercial_status)"
check_eq "CAP: the ERP's echo writes no audit row" "$audits_before" \
    "$(sql "$DB" "SELECT count(*) FROM stocktech_sync.audit_log WHERE vin = '$vin_a'")"

# ---------------------------------------------------------------------------
# A concurrent change in the ERP: 412, re-read, decided by the matrix
# ---------------------------------------------------------------------------

read -r vin_b vin_c vin_d <<<"$(pick_vins "$DB" cap 3 "commercial_status = 'available' AND pdi_status IS DISTINCT FROM 'passed' AND financial_status <> 'paid'")"
echo "# 412: vehicles $vin_b (erp_wins, ERP changed it), $vin_c (stocktech_wins), $vin_d (erp_wins, ERP changed another field)"
sql "$DB" "UPDATE stocktech_sync.vin_master SET commercial_status = 'sold' WHERE vin = '$vin_b'" >/dev/null
sql "$DB" "UPDATE stocktech_sync.vin_master SET pdi_status = 'passed' WHERE vin = '$vin_c'" >/dev/null
sql "$DB" "UPDATE stocktech_sync.vin_master SET commercial_status = 'reserved' WHERE vin = '$vin_d'" >/dev/null
sleep 0.01
patch_cap "$vin_b" '{"SalesStatus":"BL"}'
patch_cap "$vin_c" '{"PdiStatus":"P9","FinStatus":"PD"}'
patch_cap "$vin_d" '{"FinStatus":"PD"}'
etag_b_erp=$(entity_etag "$(cap_url "$vin_b")")
check_true "412: the ERP changed the ETag of $vin_b" test "$etag_b_erp" != "$(queue "$DB" etag "vin = '$vin_b'")"

result=$(drain "$DB" 100)
echo "# 412: drain: $result"
check_eq "412: one change dropped" 1 "$(json_get "$result" '.dropped')"
check_eq "412: two changes sent" 2 "$(json_get "$result" '.sent')"
check_eq "412: nothing dead-lettered" 0 "$(sql "$DB" 'SELECT count(*) FROM stocktech_sync.outbound_dead_letter')"

# erp_wins, and the ERP changed the same field: the ERP's value wins.
check_eq "412 erp_wins: the ERP's newer value is applied locally" blocked "$(column "$DB" "$vin_b" commercial_status)"
check_eq "412 erp_wins: the ERP keeps its value" BL "$(cap_property "$vin_b" SalesStatus)"
check_eq "412 erp_wins: nothing was written to the ERP" "$etag_b_erp" "$(entity_etag "$(cap_url "$vin_b")")"
check_eq "412 erp_wins: erp_etag is the ERP's" "$etag_b_erp" "$(column "$DB" "$vin_b" erp_etag)"
check_eq "412 erp_wins: the change is done" done "$(queue "$DB" status "vin = '$vin_b'")"
echo "# 412 erp_wins outcome: $(queue "$DB" outcome "vin = '$vin_b'")"
check_true "412 erp_wins: the outcome says dropped" grep -q '^dropped: ' <<<"$(queue "$DB" outcome "vin = '$vin_b'")"
check_eq "412 erp_wins: the drop is audited" 1 \
    "$(sql "$DB" "SELECT count(*) FROM stocktech_sync.audit_log WHERE vin = '$vin_b' AND event = 'outbound_result' AND detail::text LIKE '%dropped%'")"
check_eq "412 erp_wins: the re-read is audited as applied" applied \
    "$(sql "$DB" "SELECT decision FROM stocktech_sync.audit_decisions WHERE vin = '$vin_b' AND event = 'erp_record' AND field = 'commercial_status' ORDER BY audit_id DESC LIMIT 1")"

# stocktech_wins: the local value is kept and sent with the fresh ETag, and
# the ERP's change of an erp_wins field is applied.
check_eq "412 stocktech_wins: the local value is kept" passed "$(column "$DB" "$vin_c" pdi_status)"
check_eq "412 stocktech_wins: the local value was resent" P2 "$(cap_property "$vin_c" PdiStatus)"
check_eq "412 stocktech_wins: the re-read applied the ERP's FinStatus" paid "$(column "$DB" "$vin_c" financial_status)"
check_eq "412 stocktech_wins: erp_etag is the ERP's" "$(entity_etag "$(cap_url "$vin_c")")" "$(column "$DB" "$vin_c" erp_etag)"
check_eq "412 stocktech_wins: the change is done and sent" "done sent" \
    "$(queue "$DB" "status || ' ' || outcome" "vin = '$vin_c'")"
check_eq "412 stocktech_wins: the re-read ignored the ERP's PdiStatus" ignored \
    "$(sql "$DB" "SELECT decision FROM stocktech_sync.audit_decisions WHERE vin = '$vin_c' AND event = 'erp_record' AND field = 'pdi_status' ORDER BY audit_id DESC LIMIT 1")"

# erp_wins, and the ERP changed only another field: the local value is kept.
check_eq "412 erp_wins, other field: the local value is kept" reserved "$(column "$DB" "$vin_d" commercial_status)"
check_eq "412 erp_wins, other field: the local value was resent" R1 "$(cap_property "$vin_d" SalesStatus)"
check_eq "412 erp_wins, other field: the ERP's FinStatus is applied" paid "$(column "$DB" "$vin_d" financial_status)"
check_eq "412 erp_wins, other field: erp_etag is the ERP's" "$(entity_etag "$(cap_url "$vin_d")")" "$(column "$DB" "$vin_d" erp_etag)"

# ---------------------------------------------------------------------------
# Fields outside write_back.fields, and write_back disabled
# ---------------------------------------------------------------------------

save_connector "$DB" cap "$(jq -c '.write_back.fields = ["pdi_status", "odometer_km"]' <<<"$CAP_PROFILE")"
read -r vin_f1 vin_f2 <<<"$(pick_vins "$DB" cap 2 "commercial_status = 'available' AND pdi_status IS DISTINCT FROM 'passed'")"
sql "$DB" "UPDATE stocktech_sync.vin_master SET commercial_status = 'reserved' WHERE vin = '$vin_f1'" >/dev/null
check_eq "write_back.fields: a field outside the list queues nothing" 0 "$(queue "$DB" 'count(*)' "vin = '$vin_f1'")"
sql "$DB" "UPDATE stocktech_sync.vin_master SET commercial_status = 'reserved', pdi_status = 'passed' WHERE vin = '$vin_f2'" >/dev/null
check_eq "write_back.fields: only listed fields are queued" '{"pdi_status": "passed"}' \
    "$(queue "$DB" fields "vin = '$vin_f2'")"
sql "$DB" "DELETE FROM stocktech_sync.outbound_queue WHERE vin = '$vin_f2'" >/dev/null
save_connector "$DB" cap "$(jq -c '.write_back.enabled = false' <<<"$CAP_PROFILE")"
sql "$DB" "UPDATE stocktech_sync.vin_master SET pdi_status = 'failed' WHERE vin = '$vin_f2'" >/dev/null
check_eq "write_back disabled: nothing is queued" 0 "$(queue "$DB" 'count(*)' "vin = '$vin_f2'")"
check_eq "write_back disabled: the local change is still accepted" failed "$(column "$DB" "$vin_f2" pdi_status)"
save_connector "$DB" cap "$CAP_PROFILE"

# ---------------------------------------------------------------------------
# The ERP is down: changes wait with backoff, then arrive in order
# ---------------------------------------------------------------------------

read -r vin_c1 vin_c2 vin_c3 <<<"$(pick_vins "$DB" gw 3 "pdi_status IS DISTINCT FROM 'in_progress' AND commercial_status NOT IN ('reserved', 'sold')")"
echo "# ERP down: vehicles $vin_c1 (two changes), $vin_c2, $vin_c3"
"$REPO_ROOT/test/erp/fault-stop.sh" "$FAULT_PORT" >/dev/null
sql "$DB" "UPDATE stocktech_sync.vin_master SET commercial_status = 'reserved' WHERE vin = '$vin_c1'" >/dev/null
sql "$DB" "UPDATE stocktech_sync.vin_master SET pdi_status = 'in_progress', odometer_km = coalesce(odometer_km, 0) + 5 WHERE vin IN ('$vin_c2', '$vin_c3')" >/dev/null
sql "$DB" "UPDATE stocktech_sync.vin_master SET commercial_status = 'sold' WHERE vin = '$vin_c1'" >/dev/null
c_vins="'$vin_c1', '$vin_c2', '$vin_c3'"
check_eq "ERP down: four changes queued" 4 "$(queue "$DB" 'count(*)' "vin IN ($c_vins)")"
result=$(drain "$DB" 100)
echo "# ERP down: drain while the ERP is down: $result"
check_eq "ERP down: the oldest change of each vehicle was claimed" 3 "$(json_get "$result" '.claimed')"
check_eq "ERP down: all three will be retried" 3 "$(json_get "$result" '.rescheduled')"
check_eq "ERP down: nothing sent" 0 "$(json_get "$result" '.sent')"
check_eq "ERP down: nothing lost" "pending pending pending pending" \
    "$(sql "$DB" "SELECT string_agg(status, ' ' ORDER BY id) FROM stocktech_sync.outbound_queue WHERE vin IN ($c_vins)")"
check_eq "ERP down: attempts, the second change of $vin_c1 waits" "1 0" \
    "$(queue "$DB" "attempts" "vin = '$vin_c1'" | paste -sd' ')"
check_eq "ERP down: attempts of the other vehicles" "1 1" \
    "$(queue "$DB" "attempts" "vin IN ('$vin_c2', '$vin_c3')" | paste -sd' ')"
# The delay has full jitter, from 0 to http_retry_base_delay (30 s) for a
# first failure, so a delay under 1 s is possible but rare.
check_eq "ERP down: the attempted changes wait at most the base delay" 3 \
    "$(queue "$DB" 'count(*)' "vin IN ($c_vins) AND attempts = 1 AND next_attempt_at <= now() + interval '30 seconds'")"
check_true "ERP down: at least two of them wait over 1 s" \
    test "$(queue "$DB" 'count(*)' "vin IN ($c_vins) AND attempts = 1 AND next_attempt_at > now() + interval '1 second'")" -ge 2
check_eq "ERP down: the error is kept" 3 \
    "$(queue "$DB" 'count(*)' "vin IN ($c_vins) AND attempts = 1 AND last_error <> ''")"
echo "# ERP down: last error: $(queue "$DB" last_error "vin = '$vin_c2'")"
check_eq "ERP down: nothing dead-lettered" 0 "$(letters "$DB" "vin IN ($c_vins)")"
echo "# ERP down: dead letters: $(sql "$DB" "SELECT string_agg(vin || ': ' || reason, ' | ' ORDER BY id) FROM stocktech_sync.outbound_dead_letter WHERE vin IN ($c_vins)")"
check_eq "status: four changes pending for gw" 4 "$(status_column "$DB" gw outbound_pending)"

"$REPO_ROOT/test/erp/fault-start.sh" "$FAULT_PORT" >/dev/null
sql "$DB" "UPDATE stocktech_sync.outbound_queue SET next_attempt_at = now() WHERE vin IN ($c_vins) AND status <> 'done'" >/dev/null
calls=$(drain_all "$DB")
echo "# ERP down: drains after the ERP came back: $calls"
check_eq "ERP down: every change delivered" "done done done done" \
    "$(sql "$DB" "SELECT string_agg(status, ' ' ORDER BY id) FROM stocktech_sync.outbound_queue WHERE vin IN ($c_vins)")"
c1_writes=$(writes gateway "$vin_c1")
echo "# ERP down: writes of $vin_c1: $(jq -c '[.[] | {status, body}]' <<<"$c1_writes")"
check_eq "ERP down: the two changes of $vin_c1 arrived in order" '["R1","S2"]' \
    "$(jq -c '[.[] | select(.status == 204) | .body | fromjson | .SalesStatus]' <<<"$c1_writes")"
check_eq "ERP down: the gateway has the last value" S2 "$(gateway_property "$vin_c1" SalesStatus)"
check_eq "ERP down: the last value is kept locally" sold "$(column "$DB" "$vin_c1" commercial_status)"
check_eq "ERP down: the other vehicles arrived" "P1 P1" \
    "$(gateway_property "$vin_c2" PdiStatus) $(gateway_property "$vin_c3" PdiStatus)"
check_eq "ERP down: erp_etag follows the last write" "$(entity_etag "$(gateway_url "$vin_c1")")" "$(column "$DB" "$vin_c1" erp_etag)"
check_eq "ERP down: four writes accepted" 4 \
    "$(requests gateway '[.[] | select(.method != "GET" and .status == 204)] | length')"
check_eq "ERP down: each change was accepted once under its own key" \
    "$(queue "$DB" "idempotency_key::text" "vin IN ($c_vins)" | sort | paste -sd' ')" \
    "$(requests gateway '[.[] | select(.method != "GET" and .status == 204) | .repeatability_request_id] | sort | join(" ")' | tr -d '"')"

# ---------------------------------------------------------------------------
# Values the ERP rejects go to the dead letter; nothing else waits
# ---------------------------------------------------------------------------

read -r vin_d1 vin_d2 vin_d3 <<<"$(pick_vins "$DB" gw 3 "pdi_status IS DISTINCT FROM 'passed' AND commercial_status <> 'reserved'")"
echo "# rejected: vehicles $vin_d1 (locked in the ERP), $vin_d2 (StorageBin too long, then a good change), $vin_d3"
clear_requests
dead_before=$(letters "$DB" "connector = 'gw' AND status = 'open'")
fault_config "{\"reject_vins\": [\"$vin_d1\"]}"
long_bin=STORAGE-BIN-25-CHARACTERS
sql "$DB" "UPDATE stocktech_sync.vin_master SET commercial_status = 'reserved' WHERE vin = '$vin_d1'" >/dev/null
sql "$DB" "UPDATE stocktech_sync.vin_master SET warehouse_location = '$long_bin' WHERE vin = '$vin_d2'" >/dev/null
sql "$DB" "UPDATE stocktech_sync.vin_master SET pdi_status = 'passed' WHERE vin = '$vin_d2'" >/dev/null
odometer_d3=$(($(column "$DB" "$vin_d3" 'coalesce(odometer_km, 0)') + 42))
sql "$DB" "UPDATE stocktech_sync.vin_master SET pdi_status = 'passed', odometer_km = $odometer_d3, arrival_date = '2025-07-04' WHERE vin = '$vin_d3'" >/dev/null
key_d1=$(queue "$DB" idempotency_key "vin = '$vin_d1'")
key_d2=$(queue "$DB" idempotency_key "vin = '$vin_d2'" | head -1)
calls=$(drain_all "$DB")
echo "# rejected: drains: $calls"

check_eq "rejected: two dead letters" 2 "$(sql "$DB" "SELECT count(*) FROM stocktech_sync.outbound_dead_letter WHERE vin IN ('$vin_d1', '$vin_d2')")"
echo "# rejected: dead letter of $vin_d1: $(letter "$DB" "to_jsonb(outbound_dead_letter)" "vin = '$vin_d1'" | sed 's/^/ /')"
check_eq "locked: HTTP status" 400 "$(letter "$DB" http_status "vin = '$vin_d1'")"
check_eq "locked: the ERP's code" ZSTK/042 "$(letter "$DB" erp_code "vin = '$vin_d1'")"
check_true "locked: the ERP's message" contains "$(letter "$DB" erp_message "vin = '$vin_d1'")" "is locked by a billing document"
check_true "locked: a reason" test -n "$(letter "$DB" reason "vin = '$vin_d1'")"
check_eq "locked: the change and its key are kept" "{\"commercial_status\": \"reserved\"} $key_d1 open" \
    "$(letter "$DB" "fields::text || ' ' || idempotency_key || ' ' || status" "vin = '$vin_d1'")"
check_eq "locked: sent once, not retried" 1 "$(writes gateway "$vin_d1" | jq length)"
check_eq "locked: the change left the queue" 0 "$(queue "$DB" 'count(*)' "idempotency_key = '$key_d1'")"
check_eq "locked: the dead letter is audited" 1 "$(outbound_audits "$DB" "$vin_d1")"
check_eq "too long: HTTP status and code" "400 ZSTK/010" \
    "$(letter "$DB" "http_status || ' ' || erp_code" "vin = '$vin_d2'")"
check_true "too long: the ERP's message names StorageBin" contains "$(letter "$DB" erp_message "vin = '$vin_d2'")" "StorageBin"
check_eq "too long: the dead-lettered change is the StorageBin one" "$key_d2 $long_bin" \
    "$(letter "$DB" "idempotency_key || ' ' || (fields ->> 'warehouse_location')" "vin = '$vin_d2'")"
check_eq "too long: the next change of the vehicle was delivered" P2 "$(gateway_property "$vin_d2" PdiStatus)"
check_eq "rejected: the other vehicle was delivered" P2 "$(gateway_property "$vin_d3" PdiStatus)"
check_eq "rejected: the body has ERP names, codes and types" \
    "{\"ArrivalDate\":\"2025-07-04\",\"Mileage\":$odometer_d3,\"PdiStatus\":\"P2\"}" \
    "$(writes gateway "$vin_d3" | jq -c '.[-1].body | fromjson | to_entries | sort_by(.key) | from_entries')"
check_eq "rejected: nothing of the vehicles left in the queue" 0 \
    "$(queue "$DB" 'count(*)' "vin IN ('$vin_d1', '$vin_d2', '$vin_d3') AND status <> 'done'")"
check_eq "status: two more dead letters for gw" $((dead_before + 2)) "$(status_column "$DB" gw outbound_dead)"

# A vehicle that the gateway does not have: 404.  An ERP record applied
# under the gw connector moves a CAP vehicle, with its ETag, to gw.
read -r missing_vin <<<"$(pick_vins "$DB" cap 1 "pdi_status IS DISTINCT FROM 'passed' AND color_code <> 'ZZ8'")"
sql "$DB" "SELECT stocktech_sync.apply_erp_record(jsonb_build_object('vin', '$missing_vin', 'color_code', 'ZZ8'), 'gw')" >/dev/null
check_eq "missing vehicle: the vehicle belongs to gw" gw "$(column "$DB" "$missing_vin" erp_connector)"
sql "$DB" "UPDATE stocktech_sync.vin_master SET pdi_status = 'passed' WHERE vin = '$missing_vin'" >/dev/null
drain_all "$DB" >/dev/null
echo "# rejected: dead letter of the missing vehicle: $(letter "$DB" "to_jsonb(outbound_dead_letter)" "vin = '$missing_vin'")"
check_eq "missing vehicle: dead-lettered with HTTP 404" 404 "$(letter "$DB" http_status "vin = '$missing_vin'")"
check_eq "missing vehicle: sent once" 1 "$(writes gateway "$missing_vin" | jq length)"

# A vehicle without an ETag under a profile that requires one: never sent
# without If-Match, nor with If-Match: *.
no_etag_vin=WVWZZZ1KZSA999999
check_eq "no ETag: the vehicle is new" 0 \
    "$(sql "$DB" "SELECT count(*) FROM stocktech_sync.vin_master WHERE vin = '$no_etag_vin'")"
sql "$DB" "SELECT stocktech_sync.apply_erp_record(jsonb_build_object('vin', '$no_etag_vin', 'pdi_status', 'pending'), 'gw')" >/dev/null
sql "$DB" "UPDATE stocktech_sync.vin_master SET pdi_status = 'passed' WHERE vin = '$no_etag_vin'" >/dev/null
check_eq "no ETag: one change queued" 1 "$(queue "$DB" 'count(*)' "vin = '$no_etag_vin'")"
drain_all "$DB" >/dev/null
echo "# rejected: dead letter of the vehicle without an ETag: $(letter "$DB" "to_jsonb(outbound_dead_letter)" "vin = '$no_etag_vin'")"
check_true "no ETag: dead-lettered, naming the ETag" grep -q 'ETag' <<<"$(letter "$DB" reason "vin = '$no_etag_vin'")"
check_eq "no ETag: nothing sent" 0 "$(writes gateway "$no_etag_vin" | jq length)"

# Operators retry and discard dead letters.
fault_config '{"reject_vins": []}'
id_d1=$(letter "$DB" id "vin = '$vin_d1'")
id_d2=$(letter "$DB" id "vin = '$vin_d2'")
queued=$(sql "$DB" "SELECT stocktech_sync.retry_dead_letter($id_d1)")
check_eq "retry_dead_letter: queued again with the same key" "$key_d1 pending" \
    "$(queue "$DB" "idempotency_key || ' ' || status" "id = ${queued:-0}")"
check_eq "retry_dead_letter: queued with the current ETag" "$(column "$DB" "$vin_d1" erp_etag)" \
    "$(queue "$DB" etag "id = ${queued:-0}")"
check_eq "retry_dead_letter: the letter is retried" retried "$(letter "$DB" status "id = $id_d1")"
check_eq "retry_dead_letter: audited" 1 \
    "$(sql "$DB" "SELECT count(*) FROM stocktech_sync.audit_log WHERE event = 'operator_action' AND detail ->> 'action' = 'retry_dead_letter' AND (detail ->> 'dead_letter_id')::bigint = $id_d1")"
check_true "retry_dead_letter: a retried letter cannot be retried again" \
    bash -c "! psql -X -q -d '$DB' -c 'SELECT stocktech_sync.retry_dead_letter($id_d1)' 2>/dev/null"
result=$(drain "$DB" 100)
check_eq "retry_dead_letter: the retried change is sent" 1 "$(json_get "$result" '.sent')"
check_eq "retry_dead_letter: the ERP has the value" R1 "$(gateway_property "$vin_d1" SalesStatus)"
check_eq "retry_dead_letter: the resend carried the original key" "$key_d1 $key_d1" \
    "$(writes gateway "$vin_d1" | jq -r '[.[].repeatability_request_id] | join(" ")')"
check_true "discard_dead_letter: a reason is required" \
    bash -c "! psql -X -q -d '$DB' -c \"SELECT stocktech_sync.discard_dead_letter($id_d2, ' ')\" 2>/dev/null"
sql "$DB" "SELECT stocktech_sync.discard_dead_letter($id_d2, 'bin names have at most 20 characters in the ERP')" >/dev/null
check_eq "discard_dead_letter: the letter is discarded with the reason" \
    "discarded bin names have at most 20 characters in the ERP" \
    "$(letter "$DB" "status || ' ' || resolution" "id = $id_d2")"
check_eq "discard_dead_letter: audited" 1 \
    "$(sql "$DB" "SELECT count(*) FROM stocktech_sync.audit_log WHERE event = 'operator_action' AND detail ->> 'action' = 'discard_dead_letter' AND (detail ->> 'dead_letter_id')::bigint = $id_d2")"
check_true "discard_dead_letter: a discarded letter cannot be retried" \
    bash -c "! psql -X -q -d '$DB' -c 'SELECT stocktech_sync.retry_dead_letter($id_d2)' 2>/dev/null"
check_true "retry_dead_letter: an unknown id is an error" \
    bash -c "! psql -X -q -d '$DB' -c 'SELECT stocktech_sync.retry_dead_letter(999999)' 2>/dev/null"
check_eq "status: missing vehicle and no ETag still open" $((dead_before + 2)) "$(status_column "$DB" gw outbound_dead)"

# ---------------------------------------------------------------------------
# Attempts run out: connection refused until http_max_attempts
# ---------------------------------------------------------------------------

save_connector "$DB" refused "$(local_profile s4hana_odata_v4.json "http://127.0.0.1:9/odata/v4/vehicle/")"
read -r vin_r <<<"$(pick_vins "$DB" cap 1 "pdi_status IS DISTINCT FROM 'passed' AND color_code <> 'ZZ9'")"
# An ERP record from the refused connector makes it the vehicle's connector.
sql "$DB" "SELECT stocktech_sync.apply_erp_record(jsonb_build_object('vin', '$vin_r', 'color_code', 'ZZ9'), 'refused')" >/dev/null
check_eq "attempts: the vehicle now belongs to the refused connector" refused "$(column "$DB" "$vin_r" erp_connector)"
sql "$DB" "UPDATE stocktech_sync.vin_master SET pdi_status = 'passed' WHERE vin = '$vin_r'" >/dev/null
for attempt in 1 2 3; do
    sql "$DB" "UPDATE stocktech_sync.outbound_queue SET next_attempt_at = now() WHERE vin = '$vin_r' AND status <> 'done'" >/dev/null
    result=$(drain "$DB" 100)
    echo "# attempts: drain $attempt: $result"
done
check_eq "attempts: the third attempt dead-letters the change" 1 "$(json_get "$result" '.dead_lettered')"
check_eq "attempts: the dead letter counts three attempts" 3 "$(letter "$DB" attempts "vin = '$vin_r'")"
check_true "attempts: the reason says the attempts ran out" grep -qi 'attempt' <<<"$(letter "$DB" reason "vin = '$vin_r'")"
check_eq "attempts: no HTTP status without a response" "" "$(letter "$DB" http_status "vin = '$vin_r'")"
check_eq "attempts: the change left the queue" 0 "$(queue "$DB" 'count(*)' "vin = '$vin_r'")"

# ---------------------------------------------------------------------------
# 429 and 503 with Retry-After: the next attempt waits Retry-After (2 s),
# not the backoff (up to 30 s)
# ---------------------------------------------------------------------------

for busy_status in 429 503; do
    read -r vin_busy <<<"$(pick_vins "$DB" gw 1 "pdi_status IS DISTINCT FROM 'passed'")"
    fault_config "{\"busy_writes\": 1, \"busy_status\": $busy_status}"
    sql "$DB" "UPDATE stocktech_sync.vin_master SET pdi_status = 'passed' WHERE vin = '$vin_busy'" >/dev/null
    result=$(drain "$DB" 100)
    echo "# $busy_status: drain: $result"
    check_eq "$busy_status: rescheduled" 1 "$(json_get "$result" '.rescheduled')"
    check_eq "$busy_status: the status is kept" "$busy_status" "$(queue "$DB" last_http_status "vin = '$vin_busy'")"
    check_eq "$busy_status: the next attempt waits Retry-After" t \
        "$(queue "$DB" "next_attempt_at - now() BETWEEN interval '1 second' AND interval '2.1 seconds'" "vin = '$vin_busy'")"
    check_eq "$busy_status: a drain before Retry-After claims nothing" 0 "$(json_get "$(drain "$DB" 100)" '.claimed')"
    sleep 2.2
    result=$(drain "$DB" 100)
    check_eq "$busy_status: sent after Retry-After" 1 "$(json_get "$result" '.sent')"
    check_eq "$busy_status: the gateway has the value" P2 "$(gateway_property "$vin_busy" PdiStatus)"
    check_true "$busy_status: the retry is logged with the delay" \
        grep -q "outbound change .* of vehicle \"$vin_busy\" failed .*retrying in 2000 ms" "$SERVER_LOG"
done

# ---------------------------------------------------------------------------
# V2: MERGE through SAP Gateway, without repeatable requests
# ---------------------------------------------------------------------------

V2_PROFILE=$(local_profile sap_gateway_odata_v2.json "$FAULT_BASE/gateway/odata/v2/vehicle/")
save_connector "$V2_DB" gw2 "$V2_PROFILE"
v2_run=$(sql "$V2_DB" "SELECT stocktech_sync.sync_now('gw2')")
check_eq "V2: initial sync succeeded" succeeded "$(json_get "$v2_run" '.status')"
sql "$V2_DB" "SELECT stocktech_sync.set_mode('bidirectional')" >/dev/null
# A vehicle of the gateway that no scenario of $DB changed.
used_vins=$(sql "$DB" "SELECT string_agg(DISTINCT quote_literal(vin), ', ') FROM stocktech_sync.audit_log WHERE event <> 'erp_record' AND vin IS NOT NULL")
read -r vin_v2 <<<"$(pick_vins "$V2_DB" gw2 1 "pdi_status IS DISTINCT FROM 'passed' AND vin NOT IN ($used_vins)")"
echo "# V2: vehicle $vin_v2"
clear_requests
sql "$V2_DB" "UPDATE stocktech_sync.vin_master SET pdi_status = 'passed', arrival_date = '2025-08-15' WHERE vin = '$vin_v2'" >/dev/null
result=$(drain "$V2_DB" 100)
echo "# V2: drain: $result"
check_eq "V2: sent" 1 "$(json_get "$result" '.sent')"
v2_write=$(writes gateway "$vin_v2" | jq -c '.[-1]')
check_eq "V2: sent as MERGE" MERGE \
    "$(jq -r 'if .method == "POST" then .headers["x-http-method"] else .method end' <<<"$v2_write")"
check_true "V2: sent to the V2 service" contains "$(json_get "$v2_write" '.url')" "/gateway/odata/v2/vehicle/"
check_eq "V2: no Repeatability-Request-ID without repeatable_requests" "" "$(json_get "$v2_write" '.repeatability_request_id')"
check_eq "V2: the gateway has the values" "P2 2025-08-15" \
    "$(gateway_property "$vin_v2" PdiStatus) $(gateway_property "$vin_v2" ArrivalDate)"
check_eq "V2: erp_etag is the gateway's" "$(entity_etag "$(gateway_url "$vin_v2")")" "$(column "$V2_DB" "$vin_v2" erp_etag)"

# ---------------------------------------------------------------------------
# 428: a vehicle without an ETag under a profile with etag if_present is
# sent without If-Match, re-read after 428, and sent again with the ETag
# ---------------------------------------------------------------------------

psql -X -q -d postgres -c "CREATE DATABASE $PRECONDITION_DB"
psql -X -q -d "$PRECONDITION_DB" -c 'CREATE EXTENSION stocktech_sync' -c "SELECT stocktech_sync.set_mode('bidirectional')" >/dev/null
save_connector "$PRECONDITION_DB" gw428 "$(jq -c '.etag = "if_present"' <<<"$GATEWAY_PROFILE")"
# A gateway vehicle that no scenario of $DB changed, created from a record
# without an ETag.
used_vins=$(sql "$DB" "SELECT string_agg(DISTINCT quote_literal(vin), ', ') FROM stocktech_sync.audit_log WHERE event <> 'erp_record' AND vin IS NOT NULL")
vin_428=$(sql "$DB" "SELECT min(vin) FROM stocktech_sync.vin_master WHERE erp_connector = 'gw' AND NOT vitw_in_transit AND vin NOT IN ($used_vins, '$vin_v2')")
sql "$PRECONDITION_DB" "SELECT stocktech_sync.apply_erp_record(jsonb_build_object('vin', '$vin_428', 'pdi_status', 'pending'), 'gw428')" >/dev/null
check_eq "428: the vehicle has no ETag" t "$(column "$PRECONDITION_DB" "$vin_428" 'erp_etag IS NULL')"
clear_requests
sql "$PRECONDITION_DB" "UPDATE stocktech_sync.vin_master SET pdi_status = 'passed' WHERE vin = '$vin_428'" >/dev/null
result=$(drain "$PRECONDITION_DB" 100)
echo "# 428: drain: $result"
log_428=$(writes gateway "$vin_428")
echo "# 428: writes: $(jq -c '[.[] | {status, if_match: .headers["if-match"]}]' <<<"$log_428")"
check_eq "428: sent without If-Match, then with it" '[428,204]' "$(jq -c '[.[].status]' <<<"$log_428")"
check_eq "428: no If-Match on the first write" "" "$(jq -r '.[0].headers["if-match"] // ""' <<<"$log_428")"
check_true "428: the resend carries an ETag" grep -q '^W/"' <<<"$(jq -r '.[1].headers["if-match"] // ""' <<<"$log_428")"
check_eq "428: the gateway has the value" P2 "$(gateway_property "$vin_428" PdiStatus)"
check_eq "428: erp_etag is the gateway's" "$(entity_etag "$(gateway_url "$vin_428")")" "$(column "$PRECONDITION_DB" "$vin_428" erp_etag)"
check_eq "428: the re-read applied the ERP's record" "$(gateway_property "$vin_428" Model)" \
    "$(column "$PRECONDITION_DB" "$vin_428" model_code)"

# ---------------------------------------------------------------------------
# CSRF tokens: refreshed when they expire, and no loop on a plain 403
# ---------------------------------------------------------------------------

g_vins=$(pick_vins "$DB" gw 10 "pdi_status IS DISTINCT FROM 'passed' AND vin NOT IN ('$vin_v2', '$vin_428')")
check_eq "CSRF: ten vehicles" 10 "$(wc -w <<<"$g_vins")"
g_where="vin IN ($(vin_list "$g_vins"))"
clear_requests
fault_config '{"token_writes": 3}'
sql "$DB" "UPDATE stocktech_sync.vin_master SET pdi_status = 'passed' WHERE $g_where" >/dev/null
result=$(drain "$DB" 100)
echo "# CSRF: drain: $result"
check_eq "CSRF: one drain sends all ten" 10 "$(json_get "$result" '.sent')"
# Whatever the first drain left is retried at once, so that the checks
# below see every change delivered.
g_drains=1
for _ in 1 2 3 4; do
    [ "$(queue "$DB" 'count(*)' "$g_where AND status <> 'done'")" -eq 0 ] && break
    sql "$DB" "UPDATE stocktech_sync.outbound_queue SET next_attempt_at = now() WHERE $g_where AND status = 'pending'" >/dev/null
    echo "# CSRF: drain again: $(drain "$DB" 100)"
    g_drains=$((g_drains + 1))
done
check_eq "CSRF: all ten done" 10 "$(queue "$DB" 'count(*)' "$g_where AND status = 'done'")"
check_eq "CSRF: nothing dead-lettered" 0 "$(letters "$DB" "$g_where")"
g_log=$(requests gateway)
accepted=$(jq '[.[] | select(.method != "GET" and .status == 204)] | length' <<<"$g_log")
required=$(jq '[.[] | select(.method != "GET" and .status == 403)] | length' <<<"$g_log")
fetches=$(token_fetches gateway)
echo "# CSRF: $g_drains drains, $accepted writes accepted, $required rejected for the token, $fetches token fetches"
echo "# CSRF: statuses in order: $(jq -c '[.[] | if .method == "GET" then "fetch" else .status end]' <<<"$g_log")"
check_eq "CSRF: ten writes accepted" 10 "$accepted"
check_eq "CSRF: every write was accepted or asked for a token" "$((accepted + required))" \
    "$(jq '[.[] | select(.method != "GET")] | length' <<<"$g_log")"
check_true "CSRF: one token fetch per drain and per refresh at most ($fetches fetches)" \
    test "$fetches" -le $((g_drains + required))
check_eq "CSRF: every write carries the session cookie" 0 \
    "$(jq '[.[] | select(.method != "GET") | select((.headers.cookie // "") | contains("SAP_SESSIONID_STK_100=") | not)] | length' <<<"$g_log")"
check_eq "CSRF: every write carries a token" 0 \
    "$(jq '[.[] | select(.method != "GET") | select((.headers["x-csrf-token"] // "fetch" | ascii_downcase) == "fetch")] | length' <<<"$g_log")"
check_eq "CSRF: every write sends If-Match with an ETag, never *" 0 \
    "$(jq '[.[] | select(.method != "GET") | select((.headers["if-match"] // "") | test("^W/\"[^\"]+\"$") | not)] | length' <<<"$g_log")"
check_eq "CSRF: Repeatability-First-Sent is an HTTP date" 0 \
    "$(jq '[.[] | select(.method != "GET") | select((.repeatability_first_sent // "") | test("^[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT$") | not)] | length' <<<"$g_log")"
check_eq "CSRF: each change was accepted once, under its queued key" \
    "$(queue "$DB" "idempotency_key::text" "$g_where" | sort | paste -sd' ')" \
    "$(jq -r '[.[] | select(.method != "GET" and .status == 204) | .repeatability_request_id] | sort | join(" ")' <<<"$g_log")"
fault_config '{"token_writes": 0}'

# /gateway403: a 403 without "x-csrf-token: Required" is permanent.
save_connector "$DB" gw "$(local_profile s4hana_odata_v4.json "$FAULT_BASE/gateway403/odata/v4/vehicle/")"
read -r vin_403 <<<"$(pick_vins "$DB" gw 1 "pdi_status IS DISTINCT FROM 'passed' AND vin NOT IN ('$vin_v2', '$vin_428')")"
clear_requests
sql "$DB" "UPDATE stocktech_sync.vin_master SET pdi_status = 'passed' WHERE vin = '$vin_403'" >/dev/null
result=$(drain "$DB" 100)
echo "# CSRF 403: drain: $result"
check_eq "CSRF 403: dead-lettered" 1 "$(json_get "$result" '.dead_lettered')"
check_eq "CSRF 403: HTTP status and code" "403 /IWFND/CM_CONSUMER/102" \
    "$(letter "$DB" "http_status || ' ' || erp_code" "vin = '$vin_403'")"
check_true "CSRF 403: at most one token fetch" test "$(token_fetches gateway403)" -le 1
check_eq "CSRF 403: one write" 1 "$(writes gateway403 | jq length)"

# ---------------------------------------------------------------------------
# Back to hybrid: nothing new is queued, pending changes still drain
# ---------------------------------------------------------------------------

save_connector "$DB" gw "$GATEWAY_PROFILE"
read -r vin_h1 vin_h2 vin_h3 <<<"$(pick_vins "$DB" gw 3 "pdi_status IS DISTINCT FROM 'passed' AND vin NOT IN ('$vin_v2', '$vin_428')")"
sql "$DB" "UPDATE stocktech_sync.vin_master SET pdi_status = 'passed' WHERE vin IN ('$vin_h1', '$vin_h2')" >/dev/null
check_eq "hybrid: two changes pending" 2 "$(status_column "$DB" gw outbound_pending)"
sql "$DB" "SELECT stocktech_sync.set_mode('hybrid')" >/dev/null
sql "$DB" "UPDATE stocktech_sync.vin_master SET pdi_status = 'passed' WHERE vin = '$vin_h3'" >/dev/null
check_eq "hybrid: hybrid accepts the local change" passed "$(column "$DB" "$vin_h3" pdi_status)"
check_eq "hybrid: hybrid queues nothing" 0 "$(queue "$DB" 'count(*)' "vin = '$vin_h3'")"
check_eq "hybrid: the pending changes stay visible" "2 pending pending" \
    "$(status_column "$DB" gw outbound_pending) $(queue "$DB" status "vin IN ('$vin_h1', '$vin_h2')" | paste -sd' ')"
check_eq "hybrid: the oldest pending age is shown" t "$(status_column "$DB" gw 'outbound_oldest_age IS NOT NULL')"
result=$(drain "$DB" 100)
echo "# hybrid: drain in hybrid: $result"
check_eq "hybrid: the pending changes drain in hybrid" 2 "$(json_get "$result" '.sent')"
check_eq "hybrid: the gateway has them" "P2 P2" "$(gateway_property "$vin_h1" PdiStatus) $(gateway_property "$vin_h2" PdiStatus)"
check_eq "hybrid: nothing pending" 0 "$(status_column "$DB" gw outbound_pending)"
sql "$DB" "SELECT stocktech_sync.set_mode('bidirectional')" >/dev/null

# ---------------------------------------------------------------------------
# 105 changes in one transaction, drained 100 at a time, each sent once
# ---------------------------------------------------------------------------

SINK_PROFILE=$(local_profile s4hana_odata_v4.json "$FAULT_BASE/sink/odata/v4/vehicle/")
save_connector "$DB" cap "$SINK_PROFILE"
fault_config '{"record_sink": true}'
clear_requests
e_vins=$(pick_vins "$DB" cap 105 "pdi_status IS DISTINCT FROM 'passed'")
check_eq "105 changes: 105 vehicles" 105 "$(wc -w <<<"$e_vins")"
e_where="vin IN ($(vin_list "$e_vins"))"
sql "$DB" "UPDATE stocktech_sync.vin_master SET pdi_status = 'passed' WHERE $e_where" >/dev/null
check_eq "105 changes: 105 changes queued" 105 "$(queue "$DB" 'count(*)' "$e_where")"
first=$(drain "$DB" 100)
second=$(drain "$DB" 100)
third=$(drain "$DB" 100)
echo "# 105 changes: drains: $first / $second / $third"
check_eq "105 changes: the first drain claims 100" 100 "$(json_get "$first" '.claimed')"
check_eq "105 changes: the first drain sends 100" 100 "$(json_get "$first" '.sent')"
check_eq "105 changes: the second drain sends the other 5" 5 "$(json_get "$second" '.sent')"
check_eq "105 changes: the third drain claims nothing" 0 "$(json_get "$third" '.claimed')"
check_eq "105 changes: all 105 done" 105 "$(queue "$DB" 'count(*)' "$e_where AND status = 'done'")"
sink_writes=$(writes sink)
check_eq "105 changes: 105 writes reached the ERP" 105 "$(jq length <<<"$sink_writes")"
check_eq "105 changes: 105 distinct keys" 105 "$(jq '[.[].repeatability_request_id] | unique | length' <<<"$sink_writes")"
check_eq "105 changes: one write per vehicle" 105 "$(jq '[.[].url] | unique | length' <<<"$sink_writes")"
check_eq "105 changes: the keys are the queued keys" \
    "$(queue "$DB" "idempotency_key::text" "$e_where" | sort | paste -sd' ')" \
    "$(jq -r '[.[].repeatability_request_id] | sort | join(" ")' <<<"$sink_writes")"

# ---------------------------------------------------------------------------
# The outbound worker: woken at commit, killed mid-send, crash restart
# ---------------------------------------------------------------------------

FAST_SINK_PROFILE=$(local_profile s4hana_odata_v4.json "$FAULT_BASE/sink/odata/v4/vehicle/" |
    jq -c '. + {poll_interval_seconds: 3600}')
SLOW_SINK_PROFILE=$(jq -c --arg url "Vehicles('{key}')?delay_ms=$SLOW_SINK_MS" '.write_back.url = $url' <<<"$FAST_SINK_PROFILE")
save_connector "$WORKER_DB" sink "$FAST_SINK_PROFILE"
w_run=$(sql "$WORKER_DB" "SELECT stocktech_sync.sync_now('sink')")
check_eq "worker: initial sync succeeded" succeeded "$(json_get "$w_run" '.status')"
sql "$WORKER_DB" "SELECT stocktech_sync.set_mode('bidirectional')" >/dev/null
outbound_worker_pid() {
    sql "$WORKER_DB" "SELECT pid FROM pg_stat_activity WHERE backend_type = 'stocktech_sync outbound' AND datname = '$WORKER_DB'"
}
check_true "worker: the outbound worker runs" \
    wait_for 30 "$WORKER_DB" "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'stocktech_sync outbound' AND datname = '$WORKER_DB'" 1
check_eq "worker: no outbound worker in a database not listed" 0 \
    "$(sql "$DB" "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'stocktech_sync outbound' AND datname = '$DB'")"

# Woken at commit: the change arrives well before any polling interval.
read -r vin_w <<<"$(pick_vins "$WORKER_DB" sink 1 "pdi_status IS DISTINCT FROM 'passed'")"
clear_requests
started=$(date +%s%N)
sql "$WORKER_DB" "UPDATE stocktech_sync.vin_master SET pdi_status = 'passed' WHERE vin = '$vin_w'" >/dev/null
wait_for 10 "$WORKER_DB" "SELECT status FROM stocktech_sync.outbound_queue WHERE vin = '$vin_w'" done
elapsed_ms=$((($(date +%s%N) - started) / 1000000))
check_eq "worker: the worker delivered the change" done "$(queue "$WORKER_DB" status "vin = '$vin_w'")"
check_true "worker: delivered within 2 s of the commit (${elapsed_ms} ms)" test "$elapsed_ms" -le 2000
check_eq "worker: one write" 1 "$(writes sink "$vin_w" | jq length)"

# pg_terminate_backend on the worker while it waits for the slow sink.
save_connector "$WORKER_DB" sink "$SLOW_SINK_PROFILE"
f_vins=$(pick_vins "$WORKER_DB" sink 3 "pdi_status IS DISTINCT FROM 'passed'")
f_where="vin IN ($(vin_list "$f_vins"))"
clear_requests
sql "$WORKER_DB" "UPDATE stocktech_sync.vin_master SET pdi_status = 'passed' WHERE $f_where" >/dev/null
check_true "worker: the worker is sending to the slow sink" \
    wait_until 10 writes_at_least 1 sink
worker_pid=$(outbound_worker_pid)
sql "$WORKER_DB" "SELECT pg_terminate_backend(${worker_pid:-0})" >/dev/null
check_true "worker: the worker comes back" \
    wait_for 30 "$WORKER_DB" "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'stocktech_sync outbound' AND pid <> ${worker_pid:-0}" 1
check_true "worker: every change is delivered after the lease expired" \
    wait_for 60 "$WORKER_DB" "SELECT count(*) FROM stocktech_sync.outbound_queue WHERE $f_where AND status = 'done'" 3
f_log=$(writes sink)
echo "# worker: writes after the kill: $(jq -c '[.[] | {url, status, outcome, repeatability_request_id}]' <<<"$f_log")"
killed_key=$(jq -r '.[0].repeatability_request_id' <<<"$f_log")
check_eq "worker: the killed request was cut off" "client closed" "$(jq -r '.[0].outcome' <<<"$f_log")"
check_eq "worker: the interrupted change was resent with its key" 2 \
    "$(jq --arg key "$killed_key" '[.[] | select(.repeatability_request_id == $key)] | length' <<<"$f_log")"
check_eq "worker: the resend kept Repeatability-First-Sent" 1 \
    "$(jq --arg key "$killed_key" '[.[] | select(.repeatability_request_id == $key) | .repeatability_first_sent] | unique | length' <<<"$f_log")"
check_eq "worker: the resend is the queued change's key" 1 \
    "$(queue "$WORKER_DB" 'count(*)' "idempotency_key::text = '$killed_key'")"
check_eq "worker: every change was accepted, under its own key" \
    "$(queue "$WORKER_DB" "idempotency_key::text" "$f_where" | sort | paste -sd' ')" \
    "$(jq -r '[.[] | select(.status == 204) | .repeatability_request_id] | sort | unique | join(" ")' <<<"$f_log")"
check_eq "worker: nothing dead-lettered" 0 "$(sql "$WORKER_DB" 'SELECT count(*) FROM stocktech_sync.outbound_dead_letter')"

# pg_ctl stop -m immediate while the worker waits for the slow sink.
g2_vins=$(pick_vins "$WORKER_DB" sink 2 "pdi_status IS DISTINCT FROM 'passed'")
g2_where="vin IN ($(vin_list "$g2_vins"))"
clear_requests
sql "$WORKER_DB" "UPDATE stocktech_sync.vin_master SET pdi_status = 'passed' WHERE $g2_where" >/dev/null
check_true "worker crash: the worker is sending to the slow sink" \
    wait_until 10 writes_at_least 1 sink
crash_restart
check_true "worker crash: every change is delivered after the restart" \
    wait_for 60 "$WORKER_DB" "SELECT count(*) FROM stocktech_sync.outbound_queue WHERE $g2_where AND status = 'done'" 2
crash_log=$(writes sink)
echo "# worker crash: writes: $(jq -c '[.[] | {url, status, outcome, repeatability_request_id}]' <<<"$crash_log")"
crash_key=$(jq -r '.[0].repeatability_request_id' <<<"$crash_log")
check_true "worker crash: the interrupted change was resent with its key" \
    test "$(jq --arg key "$crash_key" '[.[] | select(.repeatability_request_id == $key)] | length' <<<"$crash_log")" -ge 2
check_eq "worker crash: every change was accepted, under its own key" \
    "$(queue "$WORKER_DB" "idempotency_key::text" "$g2_where" | sort | paste -sd' ')" \
    "$(jq -r '[.[] | select(.status == 204) | .repeatability_request_id] | sort | unique | join(" ")' <<<"$crash_log")"
check_eq "worker crash: nothing dead-lettered" 0 "$(sql "$WORKER_DB" 'SELECT count(*) FROM stocktech_sync.outbound_dead_letter')"

# A drain while the worker sends a round that outlasts the lease.  The
# worker claims up to 32 changes under one lease and sends them 8 at a time,
# so 24 changes at 4 s each take 12 s, beyond the 8 s lease.  A drain that
# starts after 9 s must not claim and send them again.
f3_vins=$(pick_vins "$WORKER_DB" sink 24 "pdi_status IS DISTINCT FROM 'passed'")
check_eq "concurrent drain: 24 vehicles" 24 "$(wc -w <<<"$f3_vins")"
f3_where="vin IN ($(vin_list "$f3_vins"))"
clear_requests
sql "$WORKER_DB" "UPDATE stocktech_sync.vin_master SET pdi_status = 'passed' WHERE $f3_where" >/dev/null
wait_until 10 writes_at_least 1 sink
sleep $((LEASE_SECONDS + 1))
echo "# concurrent drain: queue after $((LEASE_SECONDS + 1)) s: $(sql "$WORKER_DB" "SELECT string_agg(n || ' ' || state, ', ') FROM (SELECT status || CASE WHEN lease_until < now() THEN ' with an expired lease' ELSE '' END AS state, count(*) AS n FROM stocktech_sync.outbound_queue WHERE $f3_where GROUP BY 1) AS s")"
result=$(drain "$WORKER_DB" 100)
echo "# concurrent drain: drain while the worker sends: $result"
check_eq "concurrent drain: the drain claims none of the worker's changes" 0 "$(json_get "$result" '.claimed')"
check_true "concurrent drain: every change is delivered" \
    wait_for 60 "$WORKER_DB" "SELECT count(*) FROM stocktech_sync.outbound_queue WHERE $f3_where AND status = 'done'" 24
f3_log=$(writes sink)
echo "# concurrent drain: $(jq length <<<"$f3_log") writes, $(jq '[.[].repeatability_request_id] | unique | length' <<<"$f3_log") keys"
check_eq "concurrent drain: no change sent twice" 0 \
    "$(jq '[group_by(.repeatability_request_id)[] | select(length > 1)] | length' <<<"$f3_log")"

# A profile change to another host: the CSRF session of the old host stays
# with it.  localhost and 127.0.0.1 are different origins on the same server.
save_connector "$WORKER_DB" sink "$(local_profile s4hana_odata_v4.json "http://localhost:$FAULT_PORT/gateway/odata/v4/vehicle/" | jq -c '. + {poll_interval_seconds: 3600}')"
read -r vin_host <<<"$(pick_vins "$WORKER_DB" sink 1 "pdi_status IS DISTINCT FROM 'passed'")"
clear_requests
sql "$WORKER_DB" "UPDATE stocktech_sync.vin_master SET pdi_status = 'passed' WHERE vin = '$vin_host'" >/dev/null
check_true "new host: the worker sends the change" wait_until 15 writes_at_least 1 gateway "$vin_host"
first_write=$(writes gateway "$vin_host" | jq -c '.[0]')
echo "# new host: first write: $(jq -c '{host: .headers.host, cookie: .headers.cookie, token: .headers["x-csrf-token"], status}' <<<"$first_write")"
check_true "new host: no session cookie of the old host" \
    bash -c '! grep -q "SAP_SESSIONID_STK_100=sink" <<<"$1"' _ "$(json_get "$first_write" '.headers.cookie')"
check_true "new host: no CSRF token of the old host" test "$(json_get "$first_write" '.headers["x-csrf-token"]')" != sink-token
check_true "new host: the change is delivered" \
    wait_for 30 "$WORKER_DB" "SELECT status FROM stocktech_sync.outbound_queue WHERE vin = '$vin_host'" done

check_true "the outbound worker logged its start" grep -q "stocktech_sync outbound worker started" "$SERVER_LOG"
check_eq "server log has no crash" 0 "$(grep -c 'terminated by signal\|PANIC' "$SERVER_LOG")"

finish
