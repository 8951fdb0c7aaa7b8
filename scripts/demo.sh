#!/usr/bin/env bash
# demo.sh
#    `make demo`: from a fresh Debian machine to a running stocktech_sync.
#    Installs the packages, builds and installs the extension, starts a
#    throwaway PostgreSQL cluster with the extension preloaded, creates the
#    extension, loads a few vehicles and shows the policy matrix and the mode.
#
# KEEP_CLUSTER=1 leaves the cluster running and prints how to connect.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

install_packages
build_and_install
start_cluster "${DEMO_PORT:-54339}"
trap stop_cluster EXIT

psql -X -q -d postgres -c 'CREATE DATABASE stocktech_demo'
export PGDATABASE=stocktech_demo
psql -X -q -v ON_ERROR_STOP=1 -f demo/demo.sql

if [ "${KEEP_CLUSTER:-0}" = 1 ]; then
    trap - EXIT
    log "cluster left running: psql -h $PGHOST -p $PGPORT -U postgres stocktech_demo"
    log "stop it with: runuser -u postgres -- $PG_BIN/pg_ctl -D $CLUSTER_DIR/data stop"
fi
