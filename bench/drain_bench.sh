#!/usr/bin/env bash
# drain_bench.sh
#    Benchmarks the outbound drain of stocktech_sync (bidirectional mode)
#    against a plain curl client that sends the same PATCH requests to the
#    same server at the same concurrency.  Benchmarks are not tests: `make
#    test` never runs them.  docs/benchmarks-sync.md has the last recorded
#    results.
#
# Usage: bench/drain_bench.sh [SCENARIO...]    (no argument: all five)
#
#   sink_0ms          the fault server's /sink, which returns 204 and a new
#                     ETag to every write at once
#   sink_50ms         /sink, which sends each response after 50 ms
#                     (?delay_ms=50)
#   cap               the SAP CAP test ERP, which checks If-Match
#   sink_0ms_stale    /sink, with the planner statistics of outbound_queue
#                     taken while it held only done changes, as autovacuum
#                     leaves them before a burst of new changes
#   sink_0ms_history  /sink, with HISTORY_ROWS done changes in
#                     outbound_queue before the new ones
#
# Every repetition of a scenario queues CHANGES changes (one UPDATE of
# odometer_km on CHANGES vehicles that were synced from the CAP test ERP,
# so that each has an ETag) and times two clients:
#   drain  `SELECT stocktech_sync.drain_outbound(100000)` in a new session,
#          which sends up to 8 requests at once (kParallelRequests in
#          src/pg/outbound.cpp)
#   curl   `curl --parallel --parallel-max 8` with a config file of the same
#          PATCH requests: URL, headers and body as the drain sends them
# Both times are the client's wall clock, process start included.  The
# order of the two alternates from one repetition to the next, except in
# cap, where the drain goes first and curl then sends the ETags that the
# ERP returned to the drain.
#
# Latency is measured per change: for the drain from outbound_queue
# created_at (the start of the enqueueing transaction) and from the start
# of the drain to done_at, for curl from its start to the arrival of the
# response.  The summary gives the median of REPETITIONS runs, their
# range, and the ratio of the drain's rate to curl's (the median of the
# per-run ratios).  The target is a ratio of at least 0.90.
#
# Settings (environment variables):
#   BENCH_PG_PORT     port of the throwaway cluster on 127.0.0.1 (54700)
#   BENCH_ERP_PORT    port of the CAP test ERP on 127.0.0.1 (4700)
#   BENCH_FAULT_PORT  port of the fault server on 127.0.0.1 (4701)
#   CHANGES           changes queued per run (2000, at most 2841: the
#                     vehicles of the test ERP that are not in transit)
#   HISTORY_ROWS      done changes in the queue in sink_0ms_history (50000)
#   REPETITIONS       runs of each measurement (3)
#   DIAGNOSE          1: statement statistics of one drain per queue state,
#                     the claim query's plans, the connections of one drain
#                     (with strace) and a perf profile of one drain (with
#                     perf), when those tools are installed (1)
#   BENCH_OUT         directory for logs and results (a new directory under /tmp)
#
# Needs what `make test` installs (PostgreSQL 15 with its contrib modules,
# the extension built and installed, Node.js and the test ERP's packages,
# curl 7.66 or later for --parallel, jq, perl) and runs as root like
# scripts/test.sh.  It uses the same ports as bench/sync_bench.sh, so run
# one at a time.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

# The system's installation, before snapshot_install points PG_BIN at a copy.
SYSTEM_PG_HOME=$(dirname "$PG_BIN")
SYSTEM_PKGLIBDIR=$("$PG_BIN/pg_config" --pkglibdir)
SYSTEM_SHAREDIR=$("$PG_BIN/pg_config" --sharedir)

BENCH_PG_PORT=${BENCH_PG_PORT:-54700}
BENCH_ERP_PORT=${BENCH_ERP_PORT:-4700}
BENCH_FAULT_PORT=${BENCH_FAULT_PORT:-4701}
CHANGES=${CHANGES:-2000}
HISTORY_ROWS=${HISTORY_ROWS:-50000}
REPETITIONS=${REPETITIONS:-3}
DIAGNOSE=${DIAGNOSE:-1}
BENCH_OUT=${BENCH_OUT:-$(mktemp -d /tmp/stocktech_drain_bench.XXXXXX)}
ERP_ROOT=http://127.0.0.1:$BENCH_ERP_PORT/odata/v4/vehicle/
FAULT_BASE=http://127.0.0.1:$BENCH_FAULT_PORT
SINK_ROOT=$FAULT_BASE/sink/odata/v4/vehicle/
RESULTS=$BENCH_OUT/results.tsv
ROUNDS=$BENCH_OUT/rounds.tsv
ALL_SCENARIOS=(sink_0ms sink_50ms cap sink_0ms_stale sink_0ms_history)
export ERP_PAGE_SIZE=500

SCENARIOS=("$@")
if [ ${#SCENARIOS[@]} -eq 0 ]; then
    SCENARIOS=("${ALL_SCENARIOS[@]}")
fi
for name in "${SCENARIOS[@]}"; do
    case $name in
        sink_0ms | sink_50ms | cap | sink_0ms_stale | sink_0ms_history) ;;
        *)
            echo "unknown scenario \"$name\"; expected one of: ${ALL_SCENARIOS[*]}" >&2
            exit 2
            ;;
    esac
done
mkdir -p "$BENCH_OUT"
# The cluster runs as the postgres user and needs to read the snapshot of
# the installation in BENCH_OUT.
chmod 755 "$BENCH_OUT"

cleanup() {
    "$REPO_ROOT/test/erp/fault-stop.sh" "$BENCH_FAULT_PORT" >/dev/null 2>&1 || true
    stop_erp "$BENCH_ERP_PORT"
    stop_cluster
    rm -rf "$BENCH_OUT/install"
}
trap cleanup EXIT

# sql DATABASE QUERY: runs QUERY and prints its result unaligned.
sql() {
    psql -X -q -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}

now_ns() {
    date +%s%N
}

# seconds_between START_NS END_NS: prints the seconds between two
# `date +%s%N` times.
seconds_between() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", (b - a) / 1e9 }'
}

# percentiles: prints "P50 P99" in milliseconds of the seconds on stdin,
# interpolated linearly between the closest ranks as percentile_cont does.
percentiles() {
    sort -g | awk '{ v[NR] = $1 * 1000 } END {
        if (NR == 0) { print "- -"; exit }
        split("0.5 0.99", p, " ")
        for (i = 1; i <= 2; i++) {
            pos = 1 + p[i] * (NR - 1); lo = int(pos); frac = pos - lo
            x = (lo < NR) ? v[lo] + frac * (v[lo + 1] - v[lo]) : v[NR]
            printf "%s%.0f", (i > 1 ? " " : ""), x
        }
        print "" }'
}

# install_fingerprint [ROOT]: prints a checksum of the extension installed
# in the PostgreSQL installation under ROOT (default: the system's): its
# library, control file and SQL scripts.
install_fingerprint() {
    local root=${1:-}
    cat "$root$SYSTEM_PKGLIBDIR/stocktech_sync.so" "$root$SYSTEM_SHAREDIR"/extension/stocktech_sync* | md5sum | cut -c1-12
}

# snapshot_install: copies the PostgreSQL installation with the extension
# as installed now into BENCH_OUT/install and points PG_BIN at the copy,
# which finds its files relative to its own location.  A `make install`
# during the run then cannot change the library or the SQL scripts that
# the cluster uses.  Copies again when an installation ran during the copy.
snapshot_install() {
    local root=$BENCH_OUT/install before=""
    for _ in 1 2 3 4 5; do
        before=$(install_fingerprint)
        rm -rf "$root"
        mkdir -p "$root$(dirname "$SYSTEM_PG_HOME")" "$root$(dirname "$SYSTEM_SHAREDIR")"
        cp -a "$SYSTEM_PG_HOME" "$root$(dirname "$SYSTEM_PG_HOME")/"
        cp -a "$SYSTEM_SHAREDIR" "$root$(dirname "$SYSTEM_SHAREDIR")/"
        if [ "$(install_fingerprint "$root")" = "$before" ] && [ "$(install_fingerprint)" = "$before" ]; then
            PG_BIN=$root$SYSTEM_PG_HOME/bin
            INSTALL_FINGERPRINT=$before
            return 0
        fi
        sleep 5
    done
    echo "the installed extension kept changing while it was copied to $root; run the benchmark again" >&2
    exit 1
}

# describe_machine: writes the machine, software and settings behind the
# figures to machine.txt and stdout.
describe_machine() {
    local library
    library=$("$PG_BIN/pg_config" --pkglibdir)/stocktech_sync.so
    {
        echo "date:            $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "nproc:           $(nproc)"
        echo "memory:          $(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
        echo "cpu:             $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
        echo "kernel:          $(uname -r)"
        echo "postgresql:      $(sql postgres 'SELECT version()')"
        echo "settings:        shared_buffers $(sql postgres 'SHOW shared_buffers'), fsync $(sql postgres 'SHOW fsync'), autovacuum $(sql postgres 'SHOW autovacuum')"
        echo "extension:       stocktech_sync.so built $(stat -c '%y' "$library" | cut -d. -f1), installation checksum $INSTALL_FINGERPRINT (copied to $BENCH_OUT/install)"
        echo "git:             $(git -C "$REPO_ROOT" --no-optional-locks rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$REPO_ROOT" --no-optional-locks diff --quiet HEAD -- src bgworkers sql 2>/dev/null || echo ' with uncommitted changes in src/, bgworkers/ or sql/')"
        echo "servers:         node $(node --version), @sap/cds $(jq -r .version "$REPO_ROOT/test/erp/node_modules/@sap/cds/package.json"), test/erp/fault-server.js"
        echo "client:          $(curl --version | sed -n 1p | cut -d' ' -f1-3)"
        echo "settings:        CHANGES=$CHANGES HISTORY_ROWS=$HISTORY_ROWS REPETITIONS=$REPETITIONS scenarios: ${SCENARIOS[*]}"
        echo "load average:    $(cut -d' ' -f1-3 /proc/loadavg) at start"
    } | tee "$BENCH_OUT/machine.txt"
}

# save_profile DATABASE PROFILE_JSON: creates the connector "erp" with this
# profile, or saves the profile as its next version.
save_profile() {
    psql -X -q -At -v ON_ERROR_STOP=1 -v profile="$2" -d "$1" \
        <<<"SELECT stocktech_sync.create_connector('erp', :'profile'::jsonb);" >/dev/null
}

# cap_profile: prints the shipped profile pointed at the CAP test ERP.  CAP
# hands out no CSRF token, so the connector fetches none.
cap_profile() {
    local_profile s4hana_odata_v4.json "$ERP_ROOT" | jq -c '. + {page_size: 500} | .write_back.csrf.fetch = false'
}

# sink_profile DELAY_MS: prints the shipped profile pointed at /sink, which
# hands out the CSRF token "sink-token".  A delay goes into the write URL.
sink_profile() {
    local url="Vehicles('{key}')"
    [ "$1" -gt 0 ] && url="$url?delay_ms=$1"
    local_profile s4hana_odata_v4.json "$SINK_ROOT" | jq -c --arg url "$url" '. + {page_size: 500} | .write_back.url = $url'
}

# new_database NAME: creates a database in bidirectional mode with every
# vehicle of the CAP test ERP, synced through the connector "erp".
new_database() {
    local db=$1 run
    psql -X -q -d postgres -c "CREATE DATABASE $db"
    sql "$db" 'CREATE EXTENSION stocktech_sync' >/dev/null
    sql "$db" "SELECT stocktech_sync.set_mode('hybrid')" >/dev/null
    save_profile "$db" "$(cap_profile)"
    run=$(sql "$db" "SELECT stocktech_sync.sync_now('erp')")
    if [ "$(jq -r .status <<<"$run")" != succeeded ]; then
        echo "the initial sync of $db from the test ERP failed: $run" >&2
        exit 1
    fi
    sql "$db" "SELECT stocktech_sync.set_mode('bidirectional')" >/dev/null
}

# add_done_rows DATABASE COUNT: inserts COUNT done changes into
# outbound_queue, as the drain leaves them.
add_done_rows() {
    sql "$1" "INSERT INTO stocktech_sync.outbound_queue
                  (vin, connector, fields, etag, policy_version, status, attempts,
                   first_sent_at, done_at, last_http_status, outcome)
              SELECT vin, 'erp', '{\"odometer_km\": 1}', 'W/\"2025-01-06T06:00:00.000Z\"', '3.2', 'done', 1,
                     now(), now(), 204, 'sent'
              FROM (SELECT vin FROM stocktech_sync.vin_master ORDER BY vin) AS v,
                   generate_series(1, ($2 + 2999) / 3000)
              LIMIT $2" >/dev/null
}

# queue_changes DATABASE STATE: empties outbound_queue, prepares its planner
# statistics, and queues CHANGES changes in one UPDATE.  Prints "FIRST_ID
# ENQUEUE_SECONDS".  STATE is one of:
#   analyzed  ANALYZE after queueing, so the statistics include the changes
#   stale     the statistics describe CHANGES done rows and no open one
#   history   HISTORY_ROWS done rows, ANALYZE after queueing
queue_changes() {
    local db=$1 state=$2 first started finished
    sql "$db" 'DELETE FROM stocktech_sync.outbound_queue' >/dev/null
    case $state in
        stale) add_done_rows "$db" "$CHANGES" ;;
        history) add_done_rows "$db" "$HISTORY_ROWS" ;;
    esac
    sql "$db" 'VACUUM ANALYZE stocktech_sync.vin_master, stocktech_sync.outbound_queue' >/dev/null
    first=$(sql "$db" "SELECT coalesce(max(id), 0) + 1 FROM stocktech_sync.outbound_queue")
    started=$(now_ns)
    sql "$db" "UPDATE stocktech_sync.vin_master SET odometer_km = coalesce(odometer_km, 0) + 1
               WHERE vin IN ($VEHICLES_SQL)" >/dev/null
    finished=$(now_ns)
    local queued
    queued=$(sql "$db" "SELECT count(*) FROM stocktech_sync.outbound_queue WHERE id >= $first AND status = 'pending'")
    if [ "$queued" != "$CHANGES" ]; then
        echo "$queued changes queued in $db, expected $CHANGES; is the mode bidirectional?" >&2
        exit 1
    fi
    [ "$state" != stale ] && sql "$db" 'ANALYZE stocktech_sync.outbound_queue' >/dev/null
    echo "$first $(seconds_between "$started" "$finished")"
}

# VEHICLES_SQL: the vehicles that every run changes, in VIN order.
VEHICLES_SQL="SELECT vin FROM stocktech_sync.vin_master WHERE NOT vitw_in_transit ORDER BY vin LIMIT $CHANGES"

# write_curl_config DATABASE ROOT SUFFIX CSRF FILE: writes a curl config
# with the PATCH that the drain sends for the next change of each vehicle
# that queue_changes changes.  Each carries odometer_km + 1 as the ERP's
# Mileage, the vehicle's current ETag in If-Match and a new idempotency
# key.  With CSRF=1 the sink's token and session cookie go along.
write_curl_config() {
    local db=$1 root=$2 suffix=$3 csrf=$4 file=$5
    psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" -v root="$root" -v suffix="$suffix" \
        -v csrf="$csrf" >"$file" <<SQL
SELECT concat_ws(E'\\n',
    CASE WHEN row_number() OVER (ORDER BY m.vin) > 1 THEN 'next' END,
    format('url = "%sVehicles(''%s'')%s"', :'root', m.vin, :'suffix'),
    'request = "PATCH"',
    'output = "/dev/null"',
    'header = "Content-Type: application/json"',
    'header = "Accept: application/json"',
    format('header = "If-Match: %s"', replace(m.erp_etag, '"', '\\"')),
    format('header = "Repeatability-Request-ID: %s"', gen_random_uuid()),
    format('header = "Repeatability-First-Sent: %s"',
           to_char(now() AT TIME ZONE 'UTC', 'Dy, DD Mon YYYY HH24:MI:SS "GMT"')),
    CASE WHEN :csrf = 1 THEN 'header = "X-CSRF-Token: sink-token"' END,
    CASE WHEN :csrf = 1 THEN 'header = "Cookie: SAP_SESSIONID_STK_100=sink"' END,
    format('data-binary = "{\\"Mileage\\":%s}"', coalesce(m.odometer_km, 0) + 1),
    'write-out = "%{http_code} %{num_connects}\\n"')
FROM stocktech_sync.vin_master AS m
WHERE m.vin IN ($VEHICLES_SQL)
ORDER BY m.vin;
SQL
}

# run_curl CONFIG OUT_PREFIX: sends the requests of CONFIG, 8 at once, and
# prints the elapsed seconds.  It writes one "STATUS CONNECTIONS TIME" line
# per response to OUT_PREFIX.status, where CONNECTIONS is the number of
# connections that the transfer opened and TIME is when the line came out
# of curl, and the start time to OUT_PREFIX.started.
run_curl() {
    local config=$1 prefix=$2 started finished
    started=$(now_ns)
    stdbuf -oL curl -s --no-progress-meter --parallel --parallel-max 8 -A stocktech_sync --compressed -K "$config" |
        perl -MTime::HiRes=time -ne 'chomp; printf "%s %.6f\n", $_, time' >"$prefix.status"
    finished=$(now_ns)
    echo "$started" >"$prefix.started"
    seconds_between "$started" "$finished"
}

# run_drain DATABASE OUT_PREFIX: runs drain_outbound(100000) in a new
# session and prints the elapsed seconds.  It writes the result to
# OUT_PREFIX.json and the start time to OUT_PREFIX.started.
run_drain() {
    local db=$1 prefix=$2 started finished
    started=$(now_ns)
    sql "$db" 'SELECT stocktech_sync.drain_outbound(100000)' >"$prefix.json"
    finished=$(now_ns)
    echo "$started" >"$prefix.started"
    seconds_between "$started" "$finished"
}

# check_drain RESULT_FILE: stops the benchmark unless every change was sent
# at the first attempt.
check_drain() {
    local result
    result=$(cat "$1")
    if [ "$(jq -r '.sent' <<<"$result")" != "$CHANGES" ] || [ "$(jq -r '.resent + .rescheduled + .dead_lettered + .dropped' <<<"$result")" != 0 ]; then
        echo "the drain did not send each of the $CHANGES changes at the first attempt: $result" >&2
        exit 1
    fi
}

# check_curl STATUS_FILE: stops the benchmark unless every request got a
# 2xx response.
check_curl() {
    local good
    good=$(awk '$1 ~ /^2/' "$1" | wc -l)
    if [ "$good" != "$CHANGES" ]; then
        echo "curl got $good 2xx responses to $CHANGES requests; count per status (000: no response):" >&2
        cut -d' ' -f1 "$1" | sort | uniq -c >&2
        exit 1
    fi
}

# record SCENARIO REPETITION CLIENT SECONDS P50 P99 [QUEUED_P50 QUEUED_P99
# ENQUEUE_SECONDS]: appends one row to RESULTS.
record() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "${7:--}" "${8:--}" "${9:--}" \
        "$(cut -d' ' -f1 /proc/loadavg)" >>"$RESULTS"
}

# record_rounds SCENARIO REPETITION DATABASE FIRST_ID: appends the number
# of drain rounds, the mean changes per round and the mean times of a round
# to ROUNDS.  A round claims changes, sends them and records the results,
# so a change claimed after the previous change was acknowledged starts a
# new round (claims go in id order).  Claiming runs from the previous
# round's last acknowledgement to this round's last claimed row.  Building
# and sending run from there to the first acknowledgement, and recording
# the results from there to the last one.
record_rounds() {
    local scenario=$1 rep=$2 db=$3 first=$4
    sql "$db" "
        WITH q AS (
            SELECT id, first_sent_at, done_at,
                   coalesce(first_sent_at > lag(done_at) OVER (ORDER BY id), true) AS starts_round
            FROM stocktech_sync.outbound_queue WHERE id >= $first),
        n AS (SELECT *, count(*) FILTER (WHERE starts_round) OVER (ORDER BY id) AS round FROM q),
        r AS (
            SELECT round, count(*) AS changes, max(first_sent_at) AS claimed, min(done_at) AS first_done,
                   max(done_at) AS last_done
            FROM n GROUP BY round),
        g AS (SELECT *, lag(last_done) OVER (ORDER BY round) AS previous_done FROM r)
        SELECT concat_ws(E'\t', '$scenario', $rep, count(*), round(avg(changes), 1),
            round(avg(extract(epoch FROM claimed - previous_done)) * 1000, 1),
            round(avg(extract(epoch FROM first_done - claimed)) * 1000, 1),
            round(avg(extract(epoch FROM last_done - first_done)) * 1000, 1))
        FROM g" >>"$ROUNDS"
}

# measure SCENARIO REPETITION: queues CHANGES changes and times the drain
# and curl sending them.
measure() {
    local scenario=$1 rep=$2 db=drain_sink state=analyzed delay=0 root=$SINK_ROOT csrf=1
    local dir=$BENCH_OUT/$scenario-$rep
    mkdir -p "$dir"
    case $scenario in
        sink_50ms) delay=50 ;;
        cap) db=drain_cap root=$ERP_ROOT csrf=0 ;;
        sink_0ms_stale) state=stale ;;
        sink_0ms_history) state=history ;;
    esac
    local suffix=""
    [ "$delay" -gt 0 ] && suffix="?delay_ms=$delay"

    if [ "$scenario" = cap ]; then
        # curl changed the vehicles in the ERP in the previous run, and a
        # sync brings their new ETags.
        sql "$db" "SELECT stocktech_sync.sync_now('erp')" >"$dir/resync.json"
    else
        save_profile "$db" "$(sink_profile "$delay")"
    fi

    # curl runs before the changes are queued or after they are drained,
    # so that no change waits in the queue while curl runs.
    local order=(drain curl)
    [ $((rep % 2)) -eq 0 ] && [ "$scenario" != cap ] && order=(curl drain)
    local client seconds
    for client in "${order[@]}"; do
        if [ "$client" = drain ]; then
            local queued_info first enqueue
            queued_info=$(queue_changes "$db" "$state")
            read -r first enqueue <<<"$queued_info"
            seconds=$(run_drain "$db" "$dir/drain")
            check_drain "$dir/drain.json"
            sql "$db" "SELECT extract(epoch FROM done_at - created_at),
                              extract(epoch FROM done_at) - $(cat "$dir/drain.started") / 1e9
                       FROM stocktech_sync.outbound_queue WHERE id >= $first" | tr '|' ' ' >"$dir/drain.latency"
            local queued from_start
            queued=$(cut -d' ' -f1 "$dir/drain.latency" | percentiles)
            from_start=$(cut -d' ' -f2 "$dir/drain.latency" | percentiles)
            record "$scenario" "$rep" drain "$seconds" ${from_start} ${queued} "$enqueue"
            record_rounds "$scenario" "$rep" "$db" "$first"
            log "$scenario run $rep: drain_outbound: $CHANGES changes in $seconds s; latency p50/p99 from the drain's start $from_start ms, from queueing $queued ms"
        else
            write_curl_config "$db" "$root" "$suffix" "$csrf" "$dir/curl.config"
            seconds=$(run_curl "$dir/curl.config" "$dir/curl")
            check_curl "$dir/curl.status"
            local latency
            latency=$(awk -v s="$(cat "$dir/curl.started")" '{ printf "%.6f\n", $3 - s / 1e9 }' "$dir/curl.status" | percentiles)
            record "$scenario" "$rep" curl "$seconds" ${latency}
            log "$scenario run $rep: curl: $CHANGES requests in $seconds s over $(awk '{ n += $2 } END { print n }' "$dir/curl.status") connections; latency p50/p99 from its start $latency ms"
        fi
    done
}

# check_same_request: sends one change through the drain to /sink with the
# request log on, and compares the logged request with the first one that
# write_curl_config describes, which is for the same vehicle.  Stops the benchmark when the
# method, URL, body or header names differ.
check_same_request() {
    local db=drain_sink logged expected
    save_profile "$db" "$(sink_profile 0)"
    curl -sf -X POST "$FAULT_BASE/_config" -H 'Content-Type: application/json' -d '{"record_sink": true}' >/dev/null
    curl -sf -X DELETE "$FAULT_BASE/_requests" >/dev/null
    sql "$db" 'DELETE FROM stocktech_sync.outbound_queue' >/dev/null
    write_curl_config "$db" "$SINK_ROOT" "" 1 "$BENCH_OUT/check.config"
    sql "$db" "UPDATE stocktech_sync.vin_master SET odometer_km = coalesce(odometer_km, 0) + 1
               WHERE vin = (SELECT min(vin) FROM stocktech_sync.vin_master WHERE NOT vitw_in_transit)" >/dev/null
    sql "$db" 'SELECT stocktech_sync.drain_outbound(10)' >/dev/null
    curl -sf -X POST "$FAULT_BASE/_config" -H 'Content-Type: application/json' -d '{"record_sink": false}' >/dev/null
    logged=$(curl -sf "$FAULT_BASE/_requests?scenario=sink" | jq -c '[.[] | select(.method == "PATCH")][0]
        | {method, url, body, headers: (.headers | del(.host, ."content-length") | keys)}')
    expected=$(jq -cn --rawfile config "$BENCH_OUT/check.config" '
        ($config | split("\nnext\n")[0] | split("\n")) as $lines
        | {method: ($lines[] | select(startswith("request")) | capture("\"(?<m>[A-Z]+)\"").m),
           url: ($lines[] | select(startswith("url")) | capture("\"(?<u>.*)\"").u | sub("^http://[^/]+"; "")),
           body: ($lines[] | select(startswith("data-binary")) | capture("\"(?<b>.*)\"").b | gsub("\\\\\""; "\"")),
           headers: ([$lines[] | select(startswith("header")) | capture("\"(?<h>[^:]+):").h | ascii_downcase]
                     + ["user-agent", "accept-encoding"] | sort)}')
    echo "request of the drain: $logged" >"$BENCH_OUT/same_request.txt"
    echo "request of curl:      $expected" >>"$BENCH_OUT/same_request.txt"
    if [ "$logged" != "$expected" ]; then
        echo "the curl config does not describe the request that the drain sent; fix write_curl_config:" >&2
        cat "$BENCH_OUT/same_request.txt" >&2
        exit 1
    fi
    log "curl sends the drain's request: $logged"
}

# diagnose: writes the statement statistics of one sink_0ms drain per
# queue state, the plans of the claim query's selection under stale
# statistics, as the drain runs it and rewritten, and its plan after
# HISTORY_ROWS done changes.  Then counts the connections of one sink_0ms
# drain with strace and profiles another with perf.
diagnose() {
    local db=drain_sink out=$BENCH_OUT/diagnose.txt state
    sql "$db" 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements' >/dev/null
    save_profile "$db" "$(sink_profile 0)"
    : >"$out"
    for state in analyzed stale; do
        queue_changes "$db" "$state" >/dev/null
        {
            echo "== drain_outbound($CHANGES changes) to /sink, 0 ms, statistics $state, pg_stat_statements.track = all"
            psql -X -q -v ON_ERROR_STOP=1 -d "$db" <<'SQL'
SET pg_stat_statements.track = 'all';
SET pg_stat_statements.track_planning = on;
SELECT pg_stat_statements_reset() \gset
SELECT clock_timestamp() AS started \gset
SELECT stocktech_sync.drain_outbound(100000) AS result \gset
SELECT round(extract(epoch FROM clock_timestamp() - :'started'::timestamptz)::numeric * 1000) AS run_ms \gset
SET pg_stat_statements.track = 'none';
\echo drain: :result in :run_ms ms (tracking slows it down)
SELECT calls, round(total_exec_time::numeric, 1) AS exec_ms, round(total_plan_time::numeric, 1) AS plan_ms,
       left(regexp_replace(query, '\s+', ' ', 'g'), 90) AS query
FROM pg_stat_statements
WHERE query NOT LIKE 'SELECT stocktech_sync.drain_outbound%' AND query NOT LIKE 'SELECT pg_stat_statements_reset%'
ORDER BY total_exec_time + total_plan_time DESC LIMIT 8;
SELECT count(*) AS statements, sum(calls) AS calls, round(sum(total_exec_time)::numeric, 1) AS exec_ms,
       round(sum(total_plan_time)::numeric, 1) AS plan_ms
FROM pg_stat_statements
WHERE query NOT LIKE 'SELECT stocktech_sync.drain_outbound%' AND query NOT LIKE 'SELECT pg_stat_statements_reset%';
SQL
        } >>"$out"
    done

    # The claim's selection with CHANGES changes pending and the statistics
    # of a queue of done rows, first as written in src/pg/outbound.cpp,
    # with the limit of 8 changes per round that drain_outbound() used when
    # this was written (kParallelRequests).
    # The rewrite walks the open changes in id order through a partial
    # index and tests "oldest open change of its vehicle" with a correlated
    # min(), which the planner runs per candidate row and cannot turn into a
    # join over every pending change.  Both run in a transaction that is
    # rolled back, so the queue and its indexes stay as they were.
    queue_changes "$db" stale >/dev/null
    {
        echo "== the claim's selection, $CHANGES changes pending, statistics stale"
        psql -X -q -v ON_ERROR_STOP=1 -d "$db" <<'SQL'
BEGIN;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON)
SELECT q.id FROM stocktech_sync.outbound_queue q
WHERE ((q.status = 'pending' AND q.next_attempt_at <= pg_catalog.clock_timestamp())
    OR (q.status = 'in_flight' AND q.lease_until < pg_catalog.clock_timestamp()))
  AND NOT EXISTS (SELECT FROM stocktech_sync.outbound_queue e
                  WHERE e.vin = q.vin AND e.id < q.id AND e.status <> 'done')
ORDER BY q.id LIMIT 8 FOR UPDATE OF q SKIP LOCKED;
ROLLBACK;
\echo == rewritten, with an index on id of the open changes
BEGIN;
CREATE INDEX outbound_queue_open_id ON stocktech_sync.outbound_queue (id) WHERE status <> 'done';
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON)
SELECT q.id FROM stocktech_sync.outbound_queue q
WHERE q.status <> 'done'
  AND ((q.status = 'pending' AND q.next_attempt_at <= pg_catalog.clock_timestamp())
    OR (q.status = 'in_flight' AND q.lease_until < pg_catalog.clock_timestamp()))
  AND q.id = (SELECT min(e.id) FROM stocktech_sync.outbound_queue e
              WHERE e.vin = q.vin AND e.status <> 'done')
ORDER BY q.id LIMIT 8 FOR UPDATE OF q SKIP LOCKED;
ROLLBACK;
SQL
    } >>"$out"
    # The same selection as written, with HISTORY_ROWS done changes before
    # the pending ones and statistics that include both.
    queue_changes "$db" history >/dev/null
    {
        echo "== the claim's selection, $CHANGES changes pending after $HISTORY_ROWS done ones, statistics analyzed"
        psql -X -q -v ON_ERROR_STOP=1 -d "$db" <<'SQL'
BEGIN;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON)
SELECT q.id FROM stocktech_sync.outbound_queue q
WHERE ((q.status = 'pending' AND q.next_attempt_at <= pg_catalog.clock_timestamp())
    OR (q.status = 'in_flight' AND q.lease_until < pg_catalog.clock_timestamp()))
  AND NOT EXISTS (SELECT FROM stocktech_sync.outbound_queue e
                  WHERE e.vin = q.vin AND e.id < q.id AND e.status <> 'done')
ORDER BY q.id LIMIT 8 FOR UPDATE OF q SKIP LOCKED;
ROLLBACK;
SQL
    } >>"$out"
    count_connections "$db" >>"$out"
    queue_changes "$db" analyzed >/dev/null
    profile_session "$db" 'SELECT stocktech_sync.drain_outbound(100000)' "$BENCH_OUT/profile.txt"
    {
        echo "== drain_outbound($CHANGES changes) to /sink, 0 ms, statistics analyzed"
        cat "$BENCH_OUT/profile.txt"
    } >>"$out"
    sql "$db" 'DELETE FROM stocktech_sync.outbound_queue' >/dev/null
    log "diagnostics in $out"
    cat "$out" >&2
}

# count_connections DATABASE: counts the TCP connections that one sink_0ms
# drain of CHANGES changes opens to the fault server, with strace on its
# backend, and prints the count.  Prints only a note without strace.
count_connections() {
    local db=$1 pid_file=$BENCH_OUT/strace.pid trace=$BENCH_OUT/drain.strace
    if ! command -v strace >/dev/null; then
        echo "strace is not installed; connections not counted"
        return 0
    fi
    queue_changes "$db" analyzed >/dev/null
    rm -f "$pid_file"
    psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<SQL &
\\o $pid_file
SELECT pg_backend_pid();
\\o
SELECT pg_sleep(0.5);
SELECT stocktech_sync.drain_outbound(100000);
SQL
    local client=$! backend tracer
    for _ in $(seq 50); do
        [ -s "$pid_file" ] && break
        sleep 0.1
    done
    backend=$(tr -dc '0-9' <"$pid_file")
    strace -f -e trace=connect -o "$trace" -p "$backend" 2>/dev/null &
    tracer=$!
    wait "$client"
    kill "$tracer" 2>/dev/null || true
    wait "$tracer" || true
    echo "== connections of one drain of $CHANGES changes to /sink (strace): $(grep -c "sin_port=htons($BENCH_FAULT_PORT)" "$trace") connect() calls"
}

# profile_session DATABASE SQL OUT: runs SQL in a new session while perf
# samples its backend, and writes the shares of the libraries, the busiest
# functions and the inclusive shares of the extension's functions to OUT.
# Writes only a note without perf.
profile_session() {
    local db=$1 statement=$2 out=$3 pid_file=$BENCH_OUT/profile.pid data=$BENCH_OUT/profile.data
    if ! command -v perf >/dev/null; then
        echo "perf is not installed; no profile" >"$out"
        return 0
    fi
    rm -f "$pid_file"
    psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<SQL &
\\o $pid_file
SELECT pg_backend_pid();
\\o
SELECT pg_sleep(0.5);
$statement;
SQL
    local client=$! backend="" perf_pid
    for _ in $(seq 50); do
        [ -s "$pid_file" ] && break
        sleep 0.1
    done
    backend=$(tr -dc '0-9' <"$pid_file")
    perf record -q -F 499 --call-graph dwarf,16384 -p "$backend" -o "$data" >/dev/null 2>&1 &
    perf_pid=$!
    wait "$client"
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" || true
    {
        echo "perf, share of samples by library:"
        perf report -i "$data" --no-children --sort dso -g none --stdio 2>/dev/null | grep '%' | sed -n 1,8p
        echo "perf, busiest functions:"
        perf report -i "$data" --no-children --sort dso,sym -g none --stdio 2>/dev/null | grep '%' | sed -n 1,25p | cut -c1-150
        echo "perf, functions of stocktech_sync.so with their callees (inclusive share):"
        perf report -i "$data" --children --dsos stocktech_sync.so --sort sym -g none --stdio 2>/dev/null |
            grep '%' | sed -n 1,25p | cut -c1-150
    } >"$out"
}

# median_range: prints "MEDIAN MIN MAX" of the numbers on stdin.
median_range() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "- - -"; exit }
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        print m, v[1], v[NR] }'
}

# field_of SCENARIO CLIENT FIELD: prints one field of every run (4 seconds,
# 5 p50, 6 p99, 7 queued p50, 8 queued p99, 9 enqueue seconds).
field_of() {
    awk -F'\t' -v s="$1" -v c="$2" -v f="$3" '$1 == s && $3 == c { print $f }' "$RESULTS"
}

# rate_of SCENARIO CLIENT: prints "MEDIAN MIN MAX" of the changes per second.
rate_of() {
    field_of "$1" "$2" 4 | awk -v n="$CHANGES" '{ printf "%.1f\n", n / $1 }' | median_range
}

# ratio_of SCENARIO: prints "MEDIAN MIN MAX" of the per-repetition ratios of
# the drain's rate to curl's.
ratio_of() {
    awk -F'\t' -v s="$1" '
        $1 == s && $3 == "drain" { d[$2] = $4 }
        $1 == s && $3 == "curl" { c[$2] = $4 }
        END { for (r in d) if (r in c) printf "%.3f\n", c[r] / d[r] }' "$RESULTS" | median_range
}

# median_of SCENARIO CLIENT FIELD: prints the median of one field.
median_of() {
    field_of "$1" "$2" "$3" | median_range | cut -d' ' -f1
}

# print_summary: prints the result tables and writes them to results.md.
print_summary() {
    local scenario field
    {
        echo
        echo "$CHANGES changes per run.  Median of $REPETITIONS runs (range in brackets); the ratio"
        echo "is the median of the per-run ratios of the drain's rate to curl's (target: 0.90)."
        echo
        echo "| scenario | drain_outbound() | curl, 8 at once | ratio | latency p50 / p99, drain: from queueing; from its start | curl: from its start |"
        echo "|---|---|---|---|---|---|"
        for scenario in "${SCENARIOS[@]}"; do
            local d_med d_min d_max c_med c_min c_max r_med r_min r_max
            read -r d_med d_min d_max <<<"$(rate_of "$scenario" drain)"
            read -r c_med c_min c_max <<<"$(rate_of "$scenario" curl)"
            read -r r_med r_min r_max <<<"$(ratio_of "$scenario")"
            printf '| %s | %s/s (%s–%s) | %s/s (%s–%s) | %s (%s–%s) | %s / %s ms; %s / %s ms | %s / %s ms |\n' \
                "$scenario" "$d_med" "$d_min" "$d_max" "$c_med" "$c_min" "$c_max" "$r_med" "$r_min" "$r_max" \
                "$(median_of "$scenario" drain 7)" "$(median_of "$scenario" drain 8)" \
                "$(median_of "$scenario" drain 5)" "$(median_of "$scenario" drain 6)" \
                "$(median_of "$scenario" curl 5)" "$(median_of "$scenario" curl 6)"
        done
        echo
        echo "curl opened a median of $(for status in "$BENCH_OUT"/*-*/curl.status; do awk '{ n += $2 } END { print n }' "$status"; done | median_range | cut -d' ' -f1) connections per run (%{num_connects})."
        echo
        echo "Enqueueing $CHANGES changes (one UPDATE, its transaction start is created_at): median $(awk -F'\t' '$3 == "drain" { print $9 }' "$RESULTS" | median_range | cut -d' ' -f1) s."
        echo
        echo "Drain rounds, mean per round (median of the runs):"
        echo
        echo "| scenario | rounds | changes per round | claim ms | build and send ms | record ms |"
        echo "|---|---|---|---|---|---|"
        for scenario in "${SCENARIOS[@]}"; do
            printf '| %s |' "$scenario"
            for field in 3 4 5 6 7; do
                printf ' %s |' "$(awk -F'\t' -v s="$scenario" -v f="$field" '$1 == s { print $f }' "$ROUNDS" | median_range | cut -d' ' -f1)"
            done
            echo
        done
        echo
        echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) at the end"
    } | tee "$BENCH_OUT/results.md"
}

main() {
    snapshot_install
    # No outbound worker serves the benchmark databases, because the
    # launcher only watches "postgres", which has no extension.  Autovacuum
    # is off because the runs set the planner statistics of outbound_queue
    # themselves.
    EXTRA_PG_CONF="shared_preload_libraries = 'stocktech_sync,pg_stat_statements'
pg_stat_statements.track = 'none'
autovacuum = off
stocktech_sync.database = 'postgres'" start_cluster "$BENCH_PG_PORT"
    start_erp "$BENCH_ERP_PORT" || {
        echo "failed to start the test ERP on port $BENCH_ERP_PORT (log: test/erp/run/erp-$BENCH_ERP_PORT.log)" >&2
        exit 1
    }
    "$REPO_ROOT/test/erp/fault-start.sh" "$BENCH_FAULT_PORT" >/dev/null || {
        echo "failed to start the fault server on port $BENCH_FAULT_PORT (log: test/erp/run/fault-$BENCH_FAULT_PORT.log)" >&2
        exit 1
    }
    describe_machine
    printf 'scenario\trepetition\tclient\tseconds\tp50_ms\tp99_ms\tqueued_p50_ms\tqueued_p99_ms\tenqueue_seconds\tload\n' >"$RESULTS"
    printf 'scenario\trepetition\trounds\tchanges_per_round\tclaim_ms\tbuild_send_ms\trecord_ms\n' >"$ROUNDS"

    new_database drain_sink
    new_database drain_cap
    check_same_request

    local rep scenario
    for rep in $(seq "$REPETITIONS"); do
        for scenario in "${SCENARIOS[@]}"; do
            measure "$scenario" "$rep"
        done
    done
    [ "$DIAGNOSE" = 1 ] && diagnose
    print_summary
    log "results in $BENCH_OUT"
}

main
