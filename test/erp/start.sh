#!/usr/bin/env bash
# Starts the test ERP in the background on 127.0.0.1:PORT and waits until its
# OData V4 $metadata returns 200. Installs the npm packages first if node_modules
# is missing. The pid and the server log go to run/erp-PORT.pid and .log.
#
# Usage: start.sh [PORT]    (default: $PORT, else 4004)
# Environment: ERP_PAGE_SIZE        server-driven page size (rows per page)
#              ERP_START_TIMEOUT    seconds to wait for $metadata (default 60)
set -euo pipefail

cd "$(dirname "$0")"
erp_dir=$(pwd)

port=${1:-${PORT:-4004}}
if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
  echo "start.sh: invalid port '$port': expected a number from 1 to 65535" >&2
  exit 2
fi

run_dir=$erp_dir/run
pid_file=$run_dir/erp-$port.pid
log_file=$run_dir/erp-$port.log
mkdir -p "$run_dir"

if [[ -f $pid_file ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
  echo "start.sh: the test ERP is already running on port $port (pid $(cat "$pid_file"))" >&2
  exit 1
fi

if [[ ! -d node_modules ]]; then
  echo "start.sh: installing npm packages with npm ci" >&2
  npm ci --no-audit --no-fund >&2
fi

PORT=$port nohup node node_modules/@sap/cds/bin/serve.js \
  </dev/null >"$log_file" 2>&1 &
pid=$!
echo "$pid" >"$pid_file"

v4_root=http://127.0.0.1:$port/odata/v4/vehicle
v2_root=http://127.0.0.1:$port/odata/v2/vehicle
timeout=${ERP_START_TIMEOUT:-60}
deadline=$((SECONDS + timeout))
# The log line proves that this process bound the port, and not another
# server that was already listening there.
until grep -qs 'server listening' "$log_file" && curl -sf -o /dev/null "$v4_root/\$metadata"; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "start.sh: the test ERP exited during startup; last lines of $log_file:" >&2
    tail -n 20 "$log_file" >&2
    rm -f "$pid_file"
    exit 1
  fi
  if ((SECONDS >= deadline)); then
    echo "start.sh: \$metadata did not answer within ${timeout}s; stopping pid $pid (log: $log_file)" >&2
    kill "$pid" 2>/dev/null || true
    rm -f "$pid_file"
    exit 1
  fi
  sleep 0.2
done

echo "pid $pid"
echo "V4 $v4_root/"
echo "V2 $v2_root/"
