#!/usr/bin/env bash
# inbound_sync.sh
#    The ERP inbound sync against the SAP CAP test ERP (test/erp), over OData
#    V4 and V2: full initial sync, deltas, ties on the watermark timestamp,
#    the background worker and its restart, the ERP going down, and the
#    read_only and hybrid modes.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/../../scripts/lib.sh"
source "$here/lib.sh"

ERP_PORT=${ERP_PORT:-4391}
PG_PORT_IT=${PG_PORT_IT:-54391}
V4_ROOT=http://127.0.0.1:$ERP_PORT/odata/v4/vehicle/
V2_ROOT=http://127.0.0.1:$ERP_PORT/odata/v2/vehicle/
export ERP_PAGE_SIZE=200   # below the 250-row tie of the seed data

cleanup() {
    stop_erp "$ERP_PORT"
    stop_cluster
}
trap cleanup EXIT

EXTRA_PG_CONF="stocktech_sync.database = 'erp_v4'
stocktech_sync.launcher_naptime = 1
stocktech_sync.http_max_attempts = 2
stocktech_sync.http_retry_base_delay = 50
stocktech_sync.http_timeout = 10000" start_cluster "$PG_PORT_IT"
start_erp "$ERP_PORT" || { echo "could not start the test ERP"; echo "0 passed, 1 failed"; exit 1; }

for db in erp_v4 erp_v2; do
    psql -X -q -d postgres -c "CREATE DATABASE $db"
    psql -X -q -d "$db" -c 'CREATE EXTENSION stocktech_sync' -c "SELECT stocktech_sync.set_mode('hybrid')" >/dev/null
done
V4_PROFILE=$(local_profile s4hana_odata_v4.json "$V4_ROOT" | jq -c '. + {poll_interval_seconds: 10, page_size: 200}')
V2_PROFILE=$(local_profile sap_gateway_odata_v2.json "$V2_ROOT" | jq -c '. + {page_size: 200}')
create_connector erp_v4 s4 "$V4_PROFILE" >/dev/null
create_connector erp_v2 gateway "$V2_PROFILE" >/dev/null

# Full initial sync through V4 and V2.
v4=$(sql erp_v4 "SELECT stocktech_sync.sync_now('s4')")
v2=$(sql erp_v2 "SELECT stocktech_sync.sync_now('gateway')")
echo "# V4 run: $v4"
echo "# V2 run: $v2"
erp_count=$(curl -s "${V4_ROOT}Vehicles/\$count")
check_eq "V4 run succeeded" succeeded "$(jq -r .status <<<"$v4")"
check_eq "V4 read every record once" "$erp_count" "$(sql erp_v4 "SELECT '$v4'::jsonb ->> 'records'")"
check_eq "V4 count matches \$count" "$erp_count" "$(sql erp_v4 "SELECT '$v4'::jsonb ->> 'expected_count'")"
check_eq "V4 VIN master has every vehicle" "$erp_count" "$(sql erp_v4 'SELECT count(*) FROM stocktech_sync.vin_master')"
check_eq "V2 run succeeded" succeeded "$(sql erp_v2 "SELECT '$v2'::jsonb ->> 'status'")"
check_eq "V2 count matches __count" "$erp_count" "$(sql erp_v2 "SELECT '$v2'::jsonb ->> 'expected_count'")"
check_eq "V2 VIN master has every vehicle" "$erp_count" "$(sql erp_v2 'SELECT count(*) FROM stocktech_sync.vin_master')"
check_eq "no inbound dead letters" 0 "$(sql erp_v4 'SELECT count(*) FROM stocktech_sync.inbound_dead_letter')"

# V4 and V2 give identical VIN masters.
fingerprint="SELECT md5(string_agg(concat_ws('|', vin, model_code, model_year, version_code,
    color_code, engine_number, dealer_code, commercial_status, financial_status, list_price,
    sales_order, customer_ref, warehouse_location, arrival_date), ',' ORDER BY vin))
    FROM stocktech_sync.vin_master"
check_eq "V4 and V2 VIN masters are identical" "$(sql erp_v4 "$fingerprint")" "$(sql erp_v2 "$fingerprint")"
check_eq "one audit row per created vehicle" "$erp_count" \
    "$(sql erp_v4 "SELECT count(*) FROM stocktech_sync.audit_log WHERE event = 'erp_record'")"

# A second run reads only the overlap window and changes nothing.
again=$(sql erp_v4 "SELECT stocktech_sync.sync_now('s4')")
check_eq "repeat run creates nothing" 0 "$(sql erp_v4 "SELECT '$again'::jsonb #>> '{counts,created}'")"
check_eq "repeat run changes nothing" 0 "$(sql erp_v4 "SELECT '$again'::jsonb #>> '{counts,updated}'")"
check_eq "repeat run writes no audit row" "$erp_count" \
    "$(sql erp_v4 "SELECT count(*) FROM stocktech_sync.audit_log WHERE event = 'erp_record'")"

# An ERP change after the watermark arrives on the next poll, once.
vin=$(sql erp_v4 "SELECT vin FROM stocktech_sync.vin_master WHERE commercial_status = 'available' ORDER BY vin LIMIT 1")
PORT=$ERP_PORT "$REPO_ROOT/test/erp/patch-vehicle.sh" "$vin" '{"SalesStatus":"S2"}' >/dev/null
delta=$(sql erp_v4 "SELECT stocktech_sync.sync_now('s4')")
check_eq "delta run updates one vehicle" 1 "$(sql erp_v4 "SELECT '$delta'::jsonb #>> '{counts,updated}'")"
check_eq "the sale arrived" sold "$(sql erp_v4 "SELECT commercial_status FROM stocktech_sync.vin_master WHERE vin = '$vin'")"
check_eq "the sale was audited once" 1 \
    "$(sql erp_v4 "SELECT count(*) FROM stocktech_sync.audit_decisions WHERE vin = '$vin' AND field = 'commercial_status' AND new_value = 'sold'")"
check_eq "the ETag was stored verbatim" \
    "$(curl -s -D - -o /dev/null "${V4_ROOT}Vehicles('$vin')" | sed -n 's/^[Ee][Tt][Aa][Gg]: *//p' | tr -d '\r')" \
    "$(sql erp_v4 "SELECT erp_etag FROM stocktech_sync.vin_master WHERE vin = '$vin'")"

# Two changes in one ERP transaction share their timestamp; both arrive.
pair=$(sql erp_v4 "SELECT string_agg(vin, ' ' ORDER BY vin) FROM (SELECT vin FROM stocktech_sync.vin_master WHERE commercial_status = 'available' ORDER BY vin OFFSET 1 LIMIT 2) v")
read -r vin_a vin_b <<<"$pair"
etag_a=$(curl -s -D - -o /dev/null "${V4_ROOT}Vehicles('$vin_a')" | sed -n 's/^[Ee][Tt][Aa][Gg]: *//p' | tr -d '\r')
etag_b=$(curl -s -D - -o /dev/null "${V4_ROOT}Vehicles('$vin_b')" | sed -n 's/^[Ee][Tt][Aa][Gg]: *//p' | tr -d '\r')
batch=$(printf '{"requests":[{"id":"1","atomicityGroup":"g","method":"PATCH","url":"Vehicles(%s)","headers":{"content-type":"application/json","if-match":%s},"body":{"SalesStatus":"R1"}},{"id":"2","atomicityGroup":"g","method":"PATCH","url":"Vehicles(%s)","headers":{"content-type":"application/json","if-match":%s},"body":{"SalesStatus":"R1"}}]}' \
    "'$vin_a'" "$(printf '%s' "$etag_a" | sed 's/"/\\"/g; s/^/"/; s/$/"/')" \
    "'$vin_b'" "$(printf '%s' "$etag_b" | sed 's/"/\\"/g; s/^/"/; s/$/"/')")
curl -s -o /dev/null -X POST "${V4_ROOT}\$batch" -H 'Content-Type: application/json' --data-binary "$batch"
same_ts=$(curl -s "${V4_ROOT}Vehicles?\$filter=VIN%20eq%20'$vin_a'%20or%20VIN%20eq%20'$vin_b'&\$select=modifiedAt" | grep -o '"modifiedAt":"[^"]*"' | sort -u | wc -l)
check_eq "the two ERP changes share one timestamp" 1 "$same_ts"
tie=$(sql erp_v4 "SELECT stocktech_sync.sync_now('s4')")
check_eq "both tied changes arrive" "reserved reserved" \
    "$(sql erp_v4 "SELECT string_agg(commercial_status::text, ' ' ORDER BY vin) FROM stocktech_sync.vin_master WHERE vin IN ('$vin_a', '$vin_b')")"
check_eq "tied run updates exactly two vehicles" 2 "$(sql erp_v4 "SELECT '$tie'::jsonb #>> '{counts,updated}'")"

# The ERP is down: the run fails, the status says so, nothing is lost, and
# the watermark stays; the sync resumes when the ERP returns.
watermark_before=$(sql erp_v4 "SELECT watermark_modified || ' ' || watermark_key FROM stocktech_sync.connector_state")
stop_erp "$ERP_PORT"
down=$(sql erp_v4 "SELECT stocktech_sync.sync_now('s4')" 2>/dev/null)
check_eq "run fails while the ERP is down" failed "$(jq -r .status <<<"$down")"
check_eq "status shows the ERP disconnected" f "$(sql erp_v4 "SELECT connected FROM stocktech_sync.status WHERE connector = 's4'")"
check_true "status shows the error" test -n "$(sql erp_v4 "SELECT last_error FROM stocktech_sync.status WHERE connector = 's4'")"
check_eq "watermark unchanged while down" "$watermark_before" "$(sql erp_v4 "SELECT watermark_modified || ' ' || watermark_key FROM stocktech_sync.connector_state")"
check_eq "VIN master intact while down" "$erp_count" "$(sql erp_v4 'SELECT count(*) FROM stocktech_sync.vin_master')"
start_erp "$ERP_PORT"
# The ERP restarted from its seed data, so vehicles changed above are back
# to their seed values with a newer timestamp than nothing else: a resync
# reads them again.
up=$(sql erp_v4 "SELECT stocktech_sync.sync_now('s4')")
check_eq "run succeeds when the ERP is back" succeeded "$(sql erp_v4 "SELECT '$up'::jsonb ->> 'status'")"
check_eq "status shows the ERP connected" t "$(sql erp_v4 "SELECT connected FROM stocktech_sync.status WHERE connector = 's4'")"

# read_only versus hybrid for the same ERP change of a merged field.
mode_vin=$(sql erp_v4 "SELECT vin FROM stocktech_sync.vin_master WHERE arrival_date IS NOT NULL ORDER BY vin DESC LIMIT 1")
sql erp_v4 "UPDATE stocktech_sync.vin_master SET arrival_date = '2030-01-01' WHERE vin = '$mode_vin'" >/dev/null
sleep 1.1
PORT=$ERP_PORT "$REPO_ROOT/test/erp/patch-vehicle.sh" "$mode_vin" '{"ArrivalDate":"2030-02-02"}' >/dev/null
hybrid=$(sql erp_v4 "SELECT stocktech_sync.sync_now('s4')")
check_eq "hybrid: later ERP change wins the merge conflict" 2030-02-02 \
    "$(sql erp_v4 "SELECT arrival_date FROM stocktech_sync.vin_master WHERE vin = '$mode_vin'")"
check_eq "hybrid: decision is conflict_resolved" conflict_resolved \
    "$(sql erp_v4 "SELECT decision FROM stocktech_sync.audit_decisions WHERE vin = '$mode_vin' AND field = 'arrival_date' ORDER BY audit_id DESC LIMIT 1")"
sql erp_v4 "SELECT stocktech_sync.set_mode('read_only')" >/dev/null
check_true "read_only: local write to an ERP-supplied field is rejected" \
    bash -c "! psql -X -q -d erp_v4 -c \"UPDATE stocktech_sync.vin_master SET arrival_date = '2031-01-01' WHERE vin = '$mode_vin'\""
PORT=$ERP_PORT "$REPO_ROOT/test/erp/patch-vehicle.sh" "$mode_vin" '{"ArrivalDate":"2030-03-03","PdiStatus":"P9"}' >/dev/null
readonly_run=$(sql erp_v4 "SELECT stocktech_sync.sync_now('s4')")
check_eq "read_only: ERP value applied" "2030-03-03 applied" \
    "$(sql erp_v4 "SELECT arrival_date || ' ' || (SELECT decision FROM stocktech_sync.audit_decisions WHERE vin = '$mode_vin' AND field = 'arrival_date' ORDER BY audit_id DESC LIMIT 1) FROM stocktech_sync.vin_master WHERE vin = '$mode_vin'")"
check_eq "read_only: StockTech-owned field still ignores the ERP" ignored \
    "$(sql erp_v4 "SELECT decision FROM stocktech_sync.audit_decisions WHERE vin = '$mode_vin' AND field = 'pdi_status' ORDER BY audit_id DESC LIMIT 1")"
sql erp_v4 "SELECT stocktech_sync.set_mode('hybrid')" >/dev/null

# The background worker polls by itself, and comes back after being killed.
check_true "worker is running" wait_for 20 erp_v4 "SELECT stocktech_sync.worker_running()" t
sql erp_v4 "SELECT stocktech_sync.enable_connector('s4', true)" >/dev/null
worker_vin=$(sql erp_v4 "SELECT vin FROM stocktech_sync.vin_master WHERE commercial_status = 'available' ORDER BY vin DESC LIMIT 1")
PORT=$ERP_PORT "$REPO_ROOT/test/erp/patch-vehicle.sh" "$worker_vin" '{"SalesStatus":"BL"}' >/dev/null
check_true "worker picks up an ERP change by itself" \
    wait_for 30 erp_v4 "SELECT commercial_status FROM stocktech_sync.vin_master WHERE vin = '$worker_vin'" blocked
check_eq "worker runs are recorded" t "$(sql erp_v4 "SELECT count(*) > 0 FROM stocktech_sync.sync_runs WHERE trigger = 'worker' AND status = 'succeeded'")"
old_pid=$(sql erp_v4 "SELECT pid FROM pg_stat_activity WHERE backend_type = 'stocktech_sync inbound'")
sql erp_v4 "SELECT pg_terminate_backend($old_pid)" >/dev/null
check_true "worker comes back after pg_terminate_backend" \
    wait_for 30 erp_v4 "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'stocktech_sync inbound' AND pid <> $old_pid" 1
PORT=$ERP_PORT "$REPO_ROOT/test/erp/patch-vehicle.sh" "$worker_vin" '{"SalesStatus":"RT"}' >/dev/null
check_true "restarted worker resumes polling" \
    wait_for 30 erp_v4 "SELECT commercial_status FROM stocktech_sync.vin_master WHERE vin = '$worker_vin'" returned
check_true "worker logged its start" grep -q "stocktech_sync inbound worker started" "$CLUSTER_DIR/server.log"
check_true "no secret in the server log" bash -c "! grep -qi 'password\\|client_secret' '$CLUSTER_DIR/server.log'"

# A backlog larger than max_pages is read over several runs, each moving
# the watermark as far as it got.
psql -X -q -d postgres -c 'CREATE DATABASE erp_capped'
psql -X -q -d erp_capped -c 'CREATE EXTENSION stocktech_sync' >/dev/null 2>&1
create_connector erp_capped capped "$(local_profile s4hana_odata_v4.json "$V4_ROOT" | jq -c '. + {page_size: 200, max_pages: 6}')" >/dev/null
first=$(sql erp_capped "SELECT stocktech_sync.sync_now('capped')")
check_eq "capped run succeeds" succeeded "$(jq -r .status <<<"$first")"
check_eq "capped run reads max_pages pages" 1200 "$(jq -r .records <<<"$first")"
check_true "capped run says the next run continues" grep -q "next run continues" <<<"$first"
for _ in 1 2; do sql erp_capped "SELECT stocktech_sync.sync_now('capped')" >/dev/null; done
check_eq "three capped runs read the whole ERP" "$erp_count" \
    "$(sql erp_capped 'SELECT count(*) FROM stocktech_sync.vin_master')"

finish
