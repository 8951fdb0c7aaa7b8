#!/usr/bin/env bash
# Stops a fault server that fault-start.sh started, by the pid in
# run/fault-PORT.pid. Without a port, stops every fault server that has a
# pid file.
#
# Usage: fault-stop.sh [PORT]
set -euo pipefail

cd "$(dirname "$0")"

if (($# > 0)); then
  pid_files=("run/fault-$1.pid")
  if [[ ! -f ${pid_files[0]} ]]; then
    echo "fault-stop.sh: no fault server started on port $1 (${pid_files[0]} not found)" >&2
    exit 1
  fi
else
  shopt -s nullglob
  pid_files=(run/fault-*.pid)
fi

for pid_file in "${pid_files[@]}"; do
  pid=$(cat "$pid_file")
  # Check the command line so that a pid reused by another program is left alone.
  if [[ $(ps -o args= -p "$pid" 2>/dev/null) == *fault-server.js* ]] && kill "$pid" 2>/dev/null; then
    # The server closes its connections on SIGTERM; wait up to 5 s before SIGKILL.
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "fault-stop.sh: pid $pid did not exit after SIGTERM; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    echo "stopped pid $pid ($pid_file)"
  else
    echo "fault-stop.sh: pid $pid from $pid_file is not a running fault server; removing the pid file" >&2
  fi
  rm -f "$pid_file"
done
