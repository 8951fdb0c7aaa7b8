#!/usr/bin/env bash
# Starts the fault-injecting OData server (fault-server.js) in the background
# on 127.0.0.1:PORT and waits until GET /_health returns 200. The pid and the
# server log go to run/fault-PORT.pid and run/fault-PORT.log.
#
# Usage: fault-start.sh [PORT]    (default: $FAULT_PORT, else 4392)
# Environment: FAULT_START_TIMEOUT    seconds to wait for /_health (default 10)
set -euo pipefail

cd "$(dirname "$0")"
erp_dir=$(pwd)

port=${1:-${FAULT_PORT:-4392}}
if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
  echo "fault-start.sh: invalid port '$port': expected a number from 1 to 65535" >&2
  exit 2
fi

run_dir=$erp_dir/run
pid_file=$run_dir/fault-$port.pid
log_file=$run_dir/fault-$port.log
mkdir -p "$run_dir"

if [[ -f $pid_file ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
  echo "fault-start.sh: the fault server is already running on port $port (pid $(cat "$pid_file"))" >&2
  exit 1
fi

nohup node "$erp_dir/fault-server.js" "$port" </dev/null >"$log_file" 2>&1 &
pid=$!
echo "$pid" >"$pid_file"

timeout=${FAULT_START_TIMEOUT:-10}
deadline=$((SECONDS + timeout))
# The log line names this pid, which proves that this process bound the port
# and not another server that was already listening there.
until grep -qs "fault server listening on .*(pid $pid)" "$log_file" &&
  curl -sf -o /dev/null "http://127.0.0.1:$port/_health"; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "fault-start.sh: the fault server exited during startup; last lines of $log_file:" >&2
    tail -n 20 "$log_file" >&2
    rm -f "$pid_file"
    exit 1
  fi
  if ((SECONDS >= deadline)); then
    echo "fault-start.sh: /_health did not answer within ${timeout}s; stopping pid $pid (log: $log_file)" >&2
    kill "$pid" 2>/dev/null || true
    rm -f "$pid_file"
    exit 1
  fi
  sleep 0.1
done

echo "pid $pid"
echo "base http://127.0.0.1:$port/"
