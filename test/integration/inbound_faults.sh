#!/usr/bin/env bash
# inbound_faults.sh
#    The ERP inbound sync against an ERP that fails, played by the fault
#    server (test/erp/fault-server.js): retries of transient failures,
#    readable errors for permanent ones, broken and endless paging, poison
#    records, the response size cap, and cancel and terminate during a
#    request and during a Retry-After wait.  Most runs go through
#    sync_now(); the last section runs some scenarios through the inbound
#    background worker.  Each scenario has its own connector.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/../../scripts/lib.sh"
source "$here/lib.sh"

FAULT_PORT=${FAULT_PORT:-4392}
PG_PORT_IT=${PG_PORT_IT:-54392}
FAULT_BASE=http://127.0.0.1:$FAULT_PORT
DB=faults
# The size cap below is 1024 kB; the oversized scenario sends 2 MiB.
MAX_RESPONSE_KB=1024
# A watermark before every vehicle of the fault server, set before each
# failing run to show that a failed run leaves it alone.
SEED_WATERMARK='2025-03-03 07:59:59+00'
SEED_WATERMARK_KEY=W0000000000000000

cleanup() {
    "$REPO_ROOT/test/erp/fault-stop.sh" "$FAULT_PORT" >/dev/null 2>&1 || true
    stop_cluster
}
trap cleanup EXIT

EXTRA_PG_CONF="stocktech_sync.database = '$DB'
stocktech_sync.launcher_naptime = 1
stocktech_sync.http_max_attempts = 3
stocktech_sync.http_retry_base_delay = 50
stocktech_sync.http_timeout = 2000
stocktech_sync.http_max_response_size = $MAX_RESPONSE_KB" start_cluster "$PG_PORT_IT"
if ! "$REPO_ROOT/test/erp/fault-start.sh" "$FAULT_PORT" >/dev/null; then
    echo "could not start the fault server on port $FAULT_PORT"
    echo "0 passed, 1 failed"
    exit 1
fi
SERVER_LOG=$CLUSTER_DIR/server.log

psql -X -q -d postgres -c "CREATE DATABASE $DB"
psql -X -q -d "$DB" -c 'CREATE EXTENSION stocktech_sync' -c "SELECT stocktech_sync.set_mode('hybrid')" >/dev/null

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

# json_get JSON FILTER: the jq FILTER (such as .counts.created) applied to
# JSON, as raw text; empty for null or a JSON that does not parse.
json_get() {
    jq -r "$2 // \"\"" <<<"$1" 2>/dev/null
}

# contains TEXT PART: succeeds when TEXT contains PART.
contains() {
    [[ $1 == *"$2"* ]]
}

# create_scenario_connector NAME PAGE_SIZE [EXTRA_PROFILE_JSON [SCENARIO [VERSION]]]:
# a connector that reads /SCENARIO/odata/VERSION/vehicle/ of the fault
# server, from the S/4HANA profile for v4 (the default) or the SAP Gateway
# profile for v2.  SCENARIO defaults to NAME.
create_scenario_connector() {
    local name=$1 page_size=$2 extra=${3:-'{}'} scenario=${4:-$1} version=${5:-v4}
    local file=s4hana_odata_v4.json profile
    [ "$version" == v2 ] && file=sap_gateway_odata_v2.json
    profile=$(local_profile "$file" "$FAULT_BASE/$scenario/odata/$version/vehicle/" |
        jq -c --argjson size "$page_size" --argjson extra "$extra" '. + {page_size: $size} + $extra')
    # psql expands :'variables' in standard input, not in -c.
    psql -X -At -v ON_ERROR_STOP=1 -d "$DB" -v profile="$profile" -v name="$name" \
        <<<"SELECT stocktech_sync.create_connector(:'name', :'profile'::jsonb)" >/dev/null
}

# seed_watermark NAME: sets the connector's watermark to SEED_WATERMARK.
seed_watermark() {
    sql "$DB" "INSERT INTO stocktech_sync.connector_state (connector, watermark_modified, watermark_key)
               VALUES ('$1', '$SEED_WATERMARK', '$SEED_WATERMARK_KEY')
               ON CONFLICT (connector) DO UPDATE
               SET watermark_modified = EXCLUDED.watermark_modified, watermark_key = EXCLUDED.watermark_key" >/dev/null
}

# watermark NAME: "timestamp key" of the connector.
watermark() {
    sql "$DB" "SELECT watermark_modified || ' ' || watermark_key FROM stocktech_sync.connector_state WHERE connector = '$1'"
}

# sync NAME: runs sync_now and prints its summary; the WARNING of a failed
# run goes to stderr.
sync() {
    sql "$DB" "SELECT stocktech_sync.sync_now('$1')" 2>/dev/null
}

# run_column NAME EXPRESSION: EXPRESSION over the connector's latest sync_runs row.
run_column() {
    sql "$DB" "SELECT $2 FROM stocktech_sync.sync_runs WHERE connector = '$1' ORDER BY id DESC LIMIT 1"
}

# status_column NAME COLUMN: a column of the status view.
status_column() {
    sql "$DB" "SELECT $2 FROM stocktech_sync.status WHERE connector = '$1'"
}

# dead_letters NAME: open inbound dead letters of the connector.
dead_letters() {
    sql "$DB" "SELECT count(*) FROM stocktech_sync.inbound_dead_letter WHERE connector = '$1'"
}

# requests_to SCENARIO: requests the fault server received for SCENARIO since the last reset.
requests_to() {
    curl -sf "$FAULT_BASE/_counters" | jq --arg scenario "$1" '.[$scenario] // 0'
}

# request_gap_ms SCENARIO I: milliseconds between request I and I+1 (0-based).
request_gap_ms() {
    curl -sf "$FAULT_BASE/_requests?scenario=$1" |
        jq --argjson i "$2" '.[$i + 1].time_ms - .[$i].time_ms'
}

# retry_lines NAME: "retrying in" lines that the server log has for the connector.
retry_lines() {
    grep -c "stocktech_sync connector \"$1\": .*retrying in" "$SERVER_LOG"
}

# closed_by_client SCENARIO: waits up to 2 s until the scenario's latest
# request in the fault server's log ended because the client closed it.
closed_by_client() {
    local outcome
    for _ in $(seq 20); do
        outcome=$(curl -sf "$FAULT_BASE/_requests?scenario=$1" | jq -r '.[-1].outcome')
        [ "$outcome" == "client closed" ] && return 0
        sleep 0.1
    done
    return 1
}

reset_fault_server() {
    curl -sf -X POST "$FAULT_BASE/_reset" >/dev/null
    curl -sf -X DELETE "$FAULT_BASE/_requests" >/dev/null
}

# check_failed_run NAME SUMMARY EXPECTED_ERROR_PART: the checks that every
# failed run shares. The summary and sync_runs report the failure and its
# error, the status view shows the error, the watermark stays, and nothing is
# dead-lettered.
check_failed_run() {
    local name=$1 summary=$2 part=$3
    local error
    error=$(json_get "$summary" '.error')
    echo "# $name error: $error"
    check_eq "$name: sync_now reports failed" failed "$(json_get "$summary" '.status')"
    check_true "$name: error mentions '$part'" contains "$error" "$part"
    check_eq "$name: sync_runs row is failed" failed "$(run_column "$name" status)"
    check_eq "$name: sync_runs keeps the error" "$error" "$(run_column "$name" error)"
    check_eq "$name: status shows the error" "$error" "$(status_column "$name" last_error)"
    check_eq "$name: watermark unchanged" "$(sql "$DB" "SELECT '$SEED_WATERMARK'::timestamptz") $SEED_WATERMARK_KEY" \
        "$(watermark "$name")"
    check_eq "$name: nothing dead-lettered" 0 "$(dead_letters "$name")"
}

reset_fault_server

# ---------------------------------------------------------------------------
# ok: one short page, the baseline for the retried scenarios
# ---------------------------------------------------------------------------

create_scenario_connector ok 50
summary=$(sync ok)
check_eq "ok: run succeeded" succeeded "$(json_get "$summary" '.status')"
check_eq "ok: read all 40 vehicles" 40 "$(json_get "$summary" '.records')"
check_eq "ok: created all 40 vehicles" 40 "$(json_get "$summary" '.counts.created')"
check_eq "ok: one request for one short page" 1 "$(requests_to ok)"
check_eq "ok: status shows connected" t "$(status_column ok connected)"
last=$(curl -sf "$FAULT_BASE/ok/odata/v4/vehicle/Vehicles?\$orderby=modifiedAt%20desc,VIN%20desc&\$top=1")
check_eq "ok: watermark is the last (modifiedAt, VIN)" \
    "$(sql "$DB" "SELECT '$(json_get "$last" '.value[0].modifiedAt')'::timestamptz") $(json_get "$last" '.value[0].VIN')" \
    "$(watermark ok)"
check_eq "ok: nothing dead-lettered" 0 "$(dead_letters ok)"

# ---------------------------------------------------------------------------
# Transient failures: retried, then the run succeeds
# ---------------------------------------------------------------------------

# ratelimit: two 429 with Retry-After: 1, then five pages of 10 (the fifth
# empty) by keyset, so seven requests.
create_scenario_connector ratelimit 10
summary=$(sync ratelimit)
check_eq "ratelimit: run succeeded" succeeded "$(json_get "$summary" '.status')"
check_eq "ratelimit: read all 40 vehicles" 40 "$(json_get "$summary" '.records')"
check_eq "ratelimit: two 429 and five pages" 7 "$(requests_to ratelimit)"
check_eq "ratelimit: two retries logged" 2 "$(retry_lines ratelimit)"
check_true "ratelimit: log names HTTP 429 and the Retry-After delay" \
    grep -q 'connector "ratelimit": HTTP 429.*retrying in 1000 ms' "$SERVER_LOG"
gap=$(request_gap_ms ratelimit 0)
check_true "ratelimit: first retry waited Retry-After (${gap} ms)" test "$gap" -ge 1000
gap=$(request_gap_ms ratelimit 1)
check_true "ratelimit: second retry waited Retry-After (${gap} ms)" test "$gap" -ge 1000
check_eq "ratelimit: status shows connected" t "$(status_column ratelimit connected)"
check_eq "ratelimit: nothing dead-lettered" 0 "$(dead_letters ratelimit)"

# unavailable: a 503 with Retry-After as an HTTP-date 2 s ahead (second
# resolution, so 1 to 2 s), a 503 without it, then one page.
create_scenario_connector unavailable 50
summary=$(sync unavailable)
check_eq "unavailable: run succeeded" succeeded "$(json_get "$summary" '.status')"
check_eq "unavailable: read all 40 vehicles" 40 "$(json_get "$summary" '.records')"
check_eq "unavailable: two 503 and one page" 3 "$(requests_to unavailable)"
check_eq "unavailable: two retries logged" 2 "$(retry_lines unavailable)"
check_true "unavailable: log names HTTP 503" grep -q 'connector "unavailable": HTTP 503.*retrying in' "$SERVER_LOG"
gap=$(request_gap_ms unavailable 0)
check_true "unavailable: retry waited for the Retry-After date (${gap} ms)" test "$gap" -ge 1000

# flaky: every odd request loses its connection mid-body; each of the five
# pages needs two attempts.
create_scenario_connector flaky 10
summary=$(sync flaky)
check_eq "flaky: run succeeded" succeeded "$(json_get "$summary" '.status')"
check_eq "flaky: read all 40 vehicles" 40 "$(json_get "$summary" '.records')"
check_eq "flaky: two attempts for each of five pages" 10 "$(requests_to flaky)"
check_eq "flaky: five retries logged" 5 "$(retry_lines flaky)"
check_eq "flaky: status shows connected" t "$(status_column flaky connected)"
check_eq "flaky: nothing dead-lettered" 0 "$(dead_letters flaky)"

# The same over OData V2: keyset pages with datetimeoffset literals, and an
# empty page with a __next link.
create_scenario_connector ok_v2 10 '{}' ok v2
summary=$(sync ok_v2)
check_eq "ok over V2: run succeeded" succeeded "$(json_get "$summary" '.status')"
check_eq "ok over V2: read all 40 vehicles" 40 "$(json_get "$summary" '.records')"
check_eq "ok over V2: count from __count" 40 "$(json_get "$summary" '.expected_count')"
check_eq "ok over V2: same watermark as V4" "$(watermark ok)" "$(watermark ok_v2)"
create_scenario_connector emptynext_v2 10 '{}' emptynext v2
seed_watermark emptynext_v2
before=$(requests_to emptynext)
summary=$(sync emptynext_v2)
check_failed_run emptynext_v2 "$summary" "empty page that links to another page"
check_eq "emptynext_v2: stopped after one request" 1 $(($(requests_to emptynext) - before))

# ---------------------------------------------------------------------------
# Failures that end the run with a readable error
# ---------------------------------------------------------------------------

create_scenario_connector error500 50
seed_watermark error500
summary=$(sync error500)
check_failed_run error500 "$summary" "Internal error in the ERP"
check_true "error500: error names the ERP code" contains "$(json_get "$summary" '.error')" "SY/530"
check_true "error500: error says the attempts ran out" contains "$(json_get "$summary" '.error')" "after 3 attempts"
check_true "error500: error names the status once" \
    bash -c '! grep -q "HTTP 500: HTTP 500" <<<"$1"' _ "$(json_get "$summary" '.error')"
check_eq "error500: three attempts" 3 "$(requests_to error500)"
check_eq "error500: status shows disconnected" f "$(status_column error500 connected)"

create_scenario_connector html502 50
seed_watermark html502
summary=$(sync html502)
check_failed_run html502 "$summary" "502 Bad Gateway - SAP Web Dispatcher"
check_eq "html502: three attempts" 3 "$(requests_to html502)"

create_scenario_connector truncated 50
seed_watermark truncated
summary=$(sync truncated)
check_failed_run truncated "$summary" "invalid page"
check_eq "truncated: no pending page left" 0 "$(status_column truncated inbound_pending_pages)"
check_eq "truncated: status shows disconnected" f "$(status_column truncated connected)"

create_scenario_connector nonutf8 50
seed_watermark nonutf8
summary=$(sync nonutf8)
check_failed_run nonutf8 "$summary" "invalid page"
check_true "nonutf8: error names UTF-8" contains "$(json_get "$summary" '.error')" "UTF-8"

for scenario in unauthorized forbidden notfound; do
    create_scenario_connector "$scenario" 50
    seed_watermark "$scenario"
    summary=$(sync "$scenario")
    check_failed_run "$scenario" "$summary" "configuration error"
    check_eq "$scenario: not retried" 1 "$(requests_to "$scenario")"
done
check_true "unauthorized: error has the ERP message" \
    contains "$(run_column unauthorized error)" "Logon failed: user name or password is incorrect"
check_true "unauthorized: error has HTTP 401" contains "$(run_column unauthorized error)" "HTTP 401"
check_true "forbidden: error has the ERP message" \
    contains "$(run_column forbidden error)" "User STK_SYNC has no authorization for service ZSTK_VEHICLE_SRV"
check_true "notfound: error has the ERP message" \
    contains "$(run_column notfound error)" "No service found for namespace"

# oversized: 2 MiB against the 1024 kB cap, once chunked (the client counts
# the bytes) and once with a Content-Length (the client can refuse at once).
create_scenario_connector oversized 50
seed_watermark oversized
summary=$(sync oversized)
check_failed_run oversized "$summary" "exceeds max_response_bytes ($((MAX_RESPONSE_KB * 1024)) bytes)"
create_scenario_connector oversized_length 50 '{"query": {"content_length": "1"}}' oversized
seed_watermark oversized_length
summary=$(sync oversized_length)
check_failed_run oversized_length "$summary" "Content-Length 2097152 exceeds max_response_bytes"

# slow: every attempt runs into http_timeout (2 s).
create_scenario_connector slow 50
seed_watermark slow
started=$(date +%s%N)
summary=$(sync slow)
elapsed_ms=$((($(date +%s%N) - started) / 1000000))
check_failed_run slow "$summary" "after 3 attempts"
check_true "slow: error says the request timed out" grep -qi 'timed out\|timeout' <<<"$(json_get "$summary" '.error')"
check_eq "slow: three attempts" 3 "$(requests_to slow)"
check_true "slow: three 2 s timeouts took under 9 s (${elapsed_ms} ms)" test "$elapsed_ms" -lt 9000

# ---------------------------------------------------------------------------
# Paging that would never end
# ---------------------------------------------------------------------------

# samepage: the same full page whatever the filter, so the keyset query of
# page 3 equals that of page 2.
create_scenario_connector samepage 10
seed_watermark samepage
summary=$(sync samepage)
check_failed_run samepage "$summary" "the ERP returned the same page twice"
check_eq "samepage: stopped after two requests" 2 "$(requests_to samepage)"
check_eq "samepage: two pages recorded" 2 "$(run_column samepage pages)"

create_scenario_connector emptynext 10
seed_watermark emptynext
before=$(requests_to emptynext)
summary=$(sync emptynext)
check_failed_run emptynext "$summary" "empty page that links to another page"
check_eq "emptynext: stopped after one request" 1 $(($(requests_to emptynext) - before))

# ---------------------------------------------------------------------------
# Poison records: dead-lettered with a reason, the good records applied
# ---------------------------------------------------------------------------

create_scenario_connector poison 50
poison_page=$(curl -sf "$FAULT_BASE/poison/odata/v4/vehicle/Vehicles")
summary=$(sync poison)
echo "# poison run: $summary"
check_eq "poison: run succeeded" succeeded "$(json_get "$summary" '.status')"
check_eq "poison: read nine records" 9 "$(json_get "$summary" '.records')"
check_eq "poison: six good vehicles created" 6 "$(json_get "$summary" '.counts.created')"
check_eq "poison: three dead letters" 3 "$(dead_letters poison)"
check_eq "poison: status counts three dead letters" 3 "$(status_column poison inbound_dead)"
good_vins=$(jq -r '[.value[:6][].VIN | @sh] | join(",")' <<<"$poison_page")
check_eq "poison: good vehicles are in vin_master" 6 \
    "$(sql "$DB" "SELECT count(*) FROM stocktech_sync.vin_master WHERE vin IN ($good_vins)")"
bad_vin=$(json_get "$poison_page" '.value[6].VIN')
bad_status_vin=$(json_get "$poison_page" '.value[7].VIN')
bad_price_vin=$(json_get "$poison_page" '.value[8].VIN')
reason_of() {
    sql "$DB" "SELECT reason FROM stocktech_sync.inbound_dead_letter WHERE connector = 'poison' AND record ->> 'VIN' = '$1'"
}
echo "# invalid VIN reason: $(reason_of "$bad_vin")"
echo "# unknown SalesStatus reason: $(reason_of "$bad_status_vin")"
echo "# invalid ListPrice reason: $(reason_of "$bad_price_vin")"
check_true "poison: invalid VIN dead-lettered with a VIN reason" grep -qi 'vin' <<<"$(reason_of "$bad_vin")"
check_true "poison: unknown SalesStatus dead-lettered naming ZZ" grep -q 'ZZ' <<<"$(reason_of "$bad_status_vin")"
check_true "poison: unknown SalesStatus reason names commercial_status" \
    grep -q 'commercial_status' <<<"$(reason_of "$bad_status_vin")"
check_true "poison: invalid ListPrice reason names list_price" grep -q 'list_price' <<<"$(reason_of "$bad_price_vin")"
check_eq "poison: dead letters keep the raw record" "N/A" \
    "$(sql "$DB" "SELECT record ->> 'ListPrice' FROM stocktech_sync.inbound_dead_letter WHERE connector = 'poison' AND record ->> 'VIN' = '$bad_price_vin'")"
check_eq "poison: rejected vehicles are not in vin_master" 0 \
    "$(sql "$DB" "SELECT count(*) FROM stocktech_sync.vin_master WHERE vin IN ('$bad_vin', '$bad_status_vin', '$bad_price_vin')")"
check_eq "only poison records were dead-lettered" 3 \
    "$(sql "$DB" "SELECT count(*) FROM stocktech_sync.inbound_dead_letter")"

# ---------------------------------------------------------------------------
# Cancel and terminate a running sync_now
# ---------------------------------------------------------------------------

# interrupt_sync CONNECTOR FUNCTION DELAY: starts sync_now in a background
# psql named after the connector and calls FUNCTION (pg_cancel_backend or
# pg_terminate_backend) on it after DELAY seconds. Sets INTERRUPT_MS (time
# from the call until psql exited), INTERRUPT_OUTPUT, INTERRUPT_PID and
# INTERRUPT_WAS_RUNNING (t when the backend was still active at the call).
interrupt_sync() {
    local connector=$1 function=$2 delay=$3
    local out=$CLUSTER_DIR/interrupt-$connector-$function.out
    # The second command shows whether the session outlived the first.
    PGAPPNAME="interrupt_$connector" psql -X -At -d "$DB" \
        -c "SELECT stocktech_sync.sync_now('$connector')" -c "SELECT 'session alive'" >"$out" 2>&1 &
    local psql_pid=$!
    sleep "$delay"
    INTERRUPT_PID=$(sql "$DB" "SELECT pid FROM pg_stat_activity WHERE application_name = 'interrupt_$connector'")
    INTERRUPT_WAS_RUNNING=$(sql "$DB" "SELECT state = 'active' FROM pg_stat_activity WHERE pid = ${INTERRUPT_PID:-0}")
    local sent
    sent=$(date +%s%N)
    sql "$DB" "SELECT $function(${INTERRUPT_PID:-0})" >/dev/null
    # Give up after 10 s so that a hung backend fails the check, not the suite.
    local waited=0
    while kill -0 "$psql_pid" 2>/dev/null && [ "$waited" -lt 100 ]; do
        sleep 0.02
        waited=$((waited + 1))
    done
    INTERRUPT_MS=$((($(date +%s%N) - sent) / 1000000))
    kill "$psql_pid" 2>/dev/null
    wait "$psql_pid" 2>/dev/null
    INTERRUPT_OUTPUT=$(cat "$out")
    echo "# $function on $connector after ${delay}s: ended in ${INTERRUPT_MS} ms: $INTERRUPT_OUTPUT"
}

reset_fault_server
runs_before=$(sql "$DB" "SELECT count(*) FROM stocktech_sync.sync_runs WHERE connector = 'slow'")
interrupt_sync slow pg_cancel_backend 1
check_eq "cancel during a request: sync_now was running" t "$INTERRUPT_WAS_RUNNING"
check_true "cancel during a request: ends within 1.5 s (${INTERRUPT_MS} ms)" test "$INTERRUPT_MS" -le 1500
check_true "cancel during a request: reports the cancel" \
    grep -q 'canceling statement due to user request\|sync run interrupted' <<<"$INTERRUPT_OUTPUT"
check_true "cancel during a request: the session survives" grep -q 'session alive' <<<"$INTERRUPT_OUTPUT"
check_eq "cancel during a request: the run rolled back" "$runs_before" \
    "$(sql "$DB" "SELECT count(*) FROM stocktech_sync.sync_runs WHERE connector = 'slow'")"
check_true "cancel during a request: the HTTP request was aborted" closed_by_client slow

reset_fault_server
interrupt_sync slow pg_terminate_backend 1
check_eq "terminate during a request: sync_now was running" t "$INTERRUPT_WAS_RUNNING"
check_true "terminate during a request: ends within 1.5 s (${INTERRUPT_MS} ms)" test "$INTERRUPT_MS" -le 1500
check_true "terminate during a request: reports the termination" \
    grep -q 'terminating connection due to administrator command' <<<"$INTERRUPT_OUTPUT"
check_true "terminate during a request: the session ended" bash -c "! grep -q 'session alive' <<<\"\$1\"" _ "$INTERRUPT_OUTPUT"
check_true "terminate during a request: the HTTP request was aborted" closed_by_client slow
check_true "terminate during a request: the backend is gone" \
    wait_for 5 "$DB" "SELECT count(*) FROM pg_stat_activity WHERE pid = ${INTERRUPT_PID:-0}" 0
check_eq "terminate during a request: the run rolled back" "$runs_before" \
    "$(sql "$DB" "SELECT count(*) FROM stocktech_sync.sync_runs WHERE connector = 'slow'")"

# The first ratelimit response sets Retry-After: 1; cancel in the middle of that wait.
reset_fault_server
interrupt_sync ratelimit pg_cancel_backend 0.5
check_eq "cancel during a Retry-After wait: sync_now was running" t "$INTERRUPT_WAS_RUNNING"
check_true "cancel during a Retry-After wait: ends within 0.8 s (${INTERRUPT_MS} ms)" test "$INTERRUPT_MS" -le 800
check_true "cancel during a Retry-After wait: reports the cancel" \
    grep -q 'canceling statement due to user request\|sync run interrupted' <<<"$INTERRUPT_OUTPUT"
check_eq "cancel during a Retry-After wait: no request after the cancel" 1 "$(requests_to ratelimit)"

# ---------------------------------------------------------------------------
# The same faults through the inbound background worker, where every step
# commits on its own
# ---------------------------------------------------------------------------

# worker_runs_finished NAME...: succeeds when each connector has a finished worker run.
worker_runs_finished() {
    local name
    for name in "$@"; do
        [ "$(sql "$DB" "SELECT count(*) FROM stocktech_sync.sync_runs
                        WHERE connector = '$name' AND trigger = 'worker' AND status <> 'running'")" -ge 1 ] || return 1
    done
}

# worker_fetching NAME: succeeds when the inbound worker is fetching for NAME.
worker_fetching() {
    [ "$(sql "$DB" "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'stocktech_sync inbound'
                    AND query LIKE 'stocktech_sync: fetching page % of connector $1'")" -eq 1 ]
}

# wait_until SECONDS COMMAND...: polls COMMAND every 0.2 s until it succeeds.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.2
    done
}

reset_fault_server
# An hour between polls, so that each connector runs once.
hourly='{"poll_interval_seconds": 3600}'
create_scenario_connector worker_flaky 10 "$hourly" flaky
create_scenario_connector worker_samepage 10 "$hourly" samepage
create_scenario_connector worker_poison 50 "$hourly" poison
create_scenario_connector worker_truncated 50 "$hourly" truncated
seed_watermark worker_samepage
seed_watermark worker_truncated
check_true "worker is running" wait_for 30 "$DB" "SELECT stocktech_sync.worker_running()" t
worker_pid=$(sql "$DB" "SELECT pid FROM pg_stat_activity WHERE backend_type = 'stocktech_sync inbound'")
for name in worker_flaky worker_samepage worker_poison worker_truncated; do
    sql "$DB" "SELECT stocktech_sync.enable_connector('$name', true)" >/dev/null
done
check_true "worker ran the four connectors" \
    wait_until 30 worker_runs_finished worker_flaky worker_samepage worker_poison worker_truncated
for name in worker_flaky worker_samepage worker_poison worker_truncated; do
    sql "$DB" "SELECT stocktech_sync.enable_connector('$name', false)" >/dev/null
done

check_eq "worker flaky: run succeeded" succeeded "$(run_column worker_flaky status)"
check_eq "worker flaky: read all 40 vehicles" 40 "$(run_column worker_flaky records)"
check_eq "worker flaky: five retries logged" 5 "$(retry_lines worker_flaky)"
check_eq "worker samepage: run failed" failed "$(run_column worker_samepage status)"
check_true "worker samepage: error says same page twice" \
    contains "$(run_column worker_samepage error)" "the ERP returned the same page twice"
check_eq "worker samepage: watermark unchanged" \
    "$(sql "$DB" "SELECT '$SEED_WATERMARK'::timestamptz") $SEED_WATERMARK_KEY" "$(watermark worker_samepage)"
check_eq "worker samepage: both pages applied, none pending" "2 0" \
    "$(sql "$DB" "SELECT count(*) FILTER (WHERE status = 'applied') || ' ' || count(*) FILTER (WHERE status = 'pending')
                  FROM stocktech_sync.inbound_queue WHERE connector = 'worker_samepage'")"
check_eq "worker poison: run succeeded" succeeded "$(run_column worker_poison status)"
check_eq "worker poison: three dead letters" 3 "$(dead_letters worker_poison)"
check_eq "worker truncated: run failed" failed "$(run_column worker_truncated status)"
check_true "worker truncated: error says invalid page" contains "$(run_column worker_truncated error)" "invalid page"
check_eq "worker truncated: watermark unchanged" \
    "$(sql "$DB" "SELECT '$SEED_WATERMARK'::timestamptz") $SEED_WATERMARK_KEY" "$(watermark worker_truncated)"
check_eq "worker truncated: status shows disconnected" f "$(status_column worker_truncated connected)"
check_eq "worker survived the failed runs" "$worker_pid" \
    "$(sql "$DB" "SELECT pid FROM pg_stat_activity WHERE backend_type = 'stocktech_sync inbound'")"

# pg_terminate_backend on the worker in the middle of a slow request.  The
# connector is disabled first, so that the restarted worker leaves it alone.
create_scenario_connector worker_slow 50 "$hourly" slow
sql "$DB" "SELECT stocktech_sync.enable_connector('worker_slow', true)" >/dev/null
check_true "worker started fetching from slow" wait_until 15 worker_fetching worker_slow
sql "$DB" "SELECT stocktech_sync.enable_connector('worker_slow', false)" >/dev/null
worker_pid=$(sql "$DB" "SELECT pid FROM pg_stat_activity WHERE backend_type = 'stocktech_sync inbound'")
sent=$(date +%s%N)
sql "$DB" "SELECT pg_terminate_backend(${worker_pid:-0})" >/dev/null
wait_until 10 test "$(sql "$DB" "SELECT count(*) FROM pg_stat_activity WHERE pid = ${worker_pid:-0}")" -eq 0
elapsed_ms=$((($(date +%s%N) - sent) / 1000000))
check_true "terminated worker exits within 1.5 s (${elapsed_ms} ms)" test "$elapsed_ms" -le 1500
check_true "terminated worker aborted its HTTP request" closed_by_client slow
check_true "worker comes back after pg_terminate_backend" \
    wait_for 30 "$DB" "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'stocktech_sync inbound' AND pid <> ${worker_pid:-0}" 1
echo "# worker_slow runs: $(sql "$DB" "SELECT string_agg(id || ' ' || status, ', ') FROM stocktech_sync.sync_runs WHERE connector = 'worker_slow'")"
check_eq "terminated worker run is not left running" 0 \
    "$(sql "$DB" "SELECT count(*) FROM stocktech_sync.sync_runs WHERE connector = 'worker_slow' AND status = 'running'")"

check_eq "server log has no crash" 0 "$(grep -c 'terminated by signal\|PANIC' "$SERVER_LOG")"

finish
