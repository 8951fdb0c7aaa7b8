#!/usr/bin/env bash
# demo.sh
#    `make demo`: from a fresh Debian machine to a running sync.  Installs
#    the packages, builds and installs the extension, starts a throwaway
#    PostgreSQL cluster with the extension preloaded and the SAP CAP test
#    ERP, creates a connector from the shipped S/4HANA OData V4 profile,
#    lets the background worker sync, then changes one vehicle in the ERP
#    and at the floor to show a resolved conflict, and prints the status and
#    the vehicle's history.
#
# KEEP_CLUSTER=1 leaves PostgreSQL and the test ERP running and prints how
# to reach them.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

DEMO_PG_PORT=${DEMO_PG_PORT:-54339}
DEMO_ERP_PORT=${DEMO_ERP_PORT:-4339}
ERP_ROOT=http://127.0.0.1:$DEMO_ERP_PORT/odata/v4/vehicle/

install_packages
build_and_install

cleanup() {
    stop_erp "$DEMO_ERP_PORT"
    stop_cluster
}
trap cleanup EXIT

EXTRA_PG_CONF="stocktech_sync.database = 'stocktech_demo'
stocktech_sync.launcher_naptime = 1" start_cluster "$DEMO_PG_PORT"
log "starting the SAP CAP test ERP on 127.0.0.1:$DEMO_ERP_PORT (first start runs npm ci)"
ERP_PAGE_SIZE=500 start_erp "$DEMO_ERP_PORT"

export PGDATABASE=stocktech_demo
psql -X -q -d postgres -c 'CREATE DATABASE stocktech_demo'
psql -X -q -c 'CREATE EXTENSION stocktech_sync' -c "SELECT stocktech_sync.set_mode('hybrid')" >/dev/null

# The shipped S/4HANA profile, pointed at the local test ERP without its
# production authentication and client number.
profile=$(local_profile s4hana_odata_v4.json "$ERP_ROOT" | jq -c '. + {poll_interval_seconds: 10}')
psql -X -q -v profile="$profile" <<'SQL' >/dev/null
SELECT stocktech_sync.create_connector('s4', :'profile'::jsonb);
SELECT stocktech_sync.enable_connector('s4', true);
SQL

log "waiting for the inbound worker's first sync"
for _ in $(seq 1 120); do
    synced=$(psql -X -At -c "SELECT last_sync_at IS NOT NULL FROM stocktech_sync.status WHERE connector = 's4'")
    [ "$synced" = t ] && break
    sleep 1
done

vin=$(psql -X -At -c "SELECT vin FROM stocktech_sync.vin_master WHERE commercial_status = 'available' ORDER BY vin LIMIT 1")
log "the floor puts $vin into maintenance; the ERP sells it"
psql -X -q -c "UPDATE stocktech_sync.vin_master SET maint_status = 'in_service' WHERE vin = '$vin'"
PORT=$DEMO_ERP_PORT test/erp/patch-vehicle.sh "$vin" '{"SalesStatus":"S2","MaintStatus":"0"}' >/dev/null

log "waiting for the worker's next poll"
for _ in $(seq 1 60); do
    status=$(psql -X -At -c "SELECT commercial_status FROM stocktech_sync.vin_master WHERE vin = '$vin'")
    [ "$status" = sold ] && break
    sleep 1
done

psql -X -v vin="$vin" -f demo/demo.sql

if [ "${KEEP_CLUSTER:-0}" = 1 ]; then
    trap - EXIT
    log "left running: psql -h $PGHOST -p $PGPORT -U postgres stocktech_demo"
    log "test ERP: $ERP_ROOT"
    log "stop with: test/erp/stop.sh $DEMO_ERP_PORT; runuser -u postgres -- $PG_BIN/pg_ctl -D $CLUSTER_DIR/data stop"
fi
