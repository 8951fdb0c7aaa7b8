#!/usr/bin/env bash
# Stops a test ERP that start.sh started, by the pid in run/erp-PORT.pid.
# Without a port, stops every test ERP that has a pid file.
#
# Usage: stop.sh [PORT]
set -euo pipefail

cd "$(dirname "$0")"

if (($# > 0)); then
  pid_files=("run/erp-$1.pid")
  if [[ ! -f ${pid_files[0]} ]]; then
    echo "stop.sh: no test ERP started on port $1 (${pid_files[0]} not found)" >&2
    exit 1
  fi
else
  shopt -s nullglob
  pid_files=(run/erp-*.pid)
fi

for pid_file in "${pid_files[@]}"; do
  pid=$(cat "$pid_file")
  # Check the command line so that a pid reused by another program is left alone.
  if [[ $(ps -o args= -p "$pid" 2>/dev/null) == *@sap/cds/bin/serve.js* ]] && kill "$pid" 2>/dev/null; then
    # CAP shuts down on SIGTERM, so wait up to 10 s before SIGKILL.
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "stop.sh: pid $pid did not exit after SIGTERM; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    echo "stopped pid $pid ($pid_file)"
  else
    echo "stop.sh: pid $pid from $pid_file is not a running test ERP; removing the pid file" >&2
  fi
  rm -f "$pid_file"
done
