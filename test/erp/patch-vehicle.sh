#!/usr/bin/env bash
# Changes one vehicle in the running test ERP the way an ERP user would:
# reads its current ETag, then sends an OData V4 PATCH with If-Match.
# Prints the HTTP status and the response body, and exits 1 unless the
# status is 2xx.
#
# Usage: patch-vehicle.sh VIN JSON
#   e.g. PORT=4004 ./patch-vehicle.sh 1FA6P8TH4RF282956 '{"SalesStatus":"S2"}'
# Environment: PORT   the port the test ERP listens on (default 4004)
set -euo pipefail

if (($# != 2)); then
  echo "usage: $0 VIN JSON" >&2
  exit 2
fi
vin=$1
body=$2
if ! [[ $vin =~ ^[0-9A-Za-z]+$ ]]; then
  echo "patch-vehicle.sh: invalid VIN '$vin': expected letters and digits only" >&2
  exit 2
fi

url="http://127.0.0.1:${PORT:-4004}/odata/v4/vehicle/Vehicles('$vin')"

etag=$(curl -sS -f -D - -o /dev/null "$url" | sed -n 's/^[Ee][Tt][Aa][Gg]: *//p' | tr -d '\r') || {
  echo "patch-vehicle.sh: reading $url failed (is the VIN in the ERP and the server running?)" >&2
  exit 1
}

response=$(curl -sS -w '\n%{http_code}' -X PATCH "$url" \
  -H 'Content-Type: application/json' -H "If-Match: $etag" --data-binary "$body")
status=${response##*$'\n'}
echo "HTTP $status"
echo "${response%$'\n'*}"
[[ $status == 2* ]]
