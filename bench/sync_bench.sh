#!/usr/bin/env bash
# sync_bench.sh
#    Benchmarks the inbound sync from the SAP CAP test ERP (test/erp, 3000
#    vehicles over OData V4) against the rate at which a plain curl loop
#    fetches the same pages from the same server, which is the source's own
#    limit.  Benchmarks are not tests: `make test` never runs them.
#    docs/benchmarks-sync.md has the last recorded results.
#
# Usage: bench/sync_bench.sh
#
# Each repetition restarts the test ERP, so that it serves its seed data,
# and measures:
#   initial  stocktech_sync.sync_now() of all 3000 vehicles into a new
#            database, against a bash loop of curl over the same URLs
#   delta    sync_now() after DELTA_VEHICLES vehicles changed in the ERP,
#            against a curl loop over the delta's URLs
#   worker   the initial sync done by the inbound worker after
#            enable_connector(), against a curl loop over its URLs
#   memory   the peak resident memory (VmHWM) of the backend that ran
#            sync_now() and of the inbound worker.  The baselines are a
#            backend that made one trivial extension call and the same
#            worker before enable_connector().
#
# The curl loops need the URLs before they run, so an untimed sync of the
# same data into a scratch database comes first in each repetition.  It
# also warms up the ERP.  The script checks that the timed sync requested
# the same URLs.  The order of sync_now() and the curl loop alternates from
# one repetition to the next.  Every figure is a ratio against a baseline
# measured in the same repetition, and the summary gives the median of
# REPETITIONS runs and their range.
#
# Settings (environment variables):
#   BENCH_PG_PORT   port of the throwaway cluster on 127.0.0.1 (54700)
#   BENCH_ERP_PORT  port of the CAP test ERP on 127.0.0.1 (4700)
#   PAGE_SIZE       ERP_PAGE_SIZE of the ERP and page_size of the profile (500)
#   DELTA_VEHICLES  vehicles changed in the ERP before the delta run (100)
#   REPETITIONS     runs of each measurement (3)
#   DIAGNOSE        1: statement statistics and a perf profile (when perf is
#                   installed) of one more initial sync, and initial syncs
#                   with lz4 in place of pglz TOAST compression (1)
#   BENCH_OUT       directory for logs and results (a new directory under /tmp)
#
# Needs what `make test` installs (PostgreSQL 15 with its contrib modules,
# the extension built and installed, Node.js and the test ERP's packages,
# curl, jq) and runs as root like scripts/test.sh.  It uses the same ports
# as bench/drain_bench.sh, so run one at a time.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

# The system's installation, before snapshot_install points PG_BIN at a copy.
SYSTEM_PG_HOME=$(dirname "$PG_BIN")
SYSTEM_PKGLIBDIR=$("$PG_BIN/pg_config" --pkglibdir)
SYSTEM_SHAREDIR=$("$PG_BIN/pg_config" --sharedir)

BENCH_PG_PORT=${BENCH_PG_PORT:-54700}
BENCH_ERP_PORT=${BENCH_ERP_PORT:-4700}
PAGE_SIZE=${PAGE_SIZE:-500}
DELTA_VEHICLES=${DELTA_VEHICLES:-100}
REPETITIONS=${REPETITIONS:-3}
DIAGNOSE=${DIAGNOSE:-1}
BENCH_OUT=${BENCH_OUT:-$(mktemp -d /tmp/stocktech_sync_bench.XXXXXX)}
ERP_ROOT=http://127.0.0.1:$BENCH_ERP_PORT/odata/v4/vehicle/
ERP_LOG=$REPO_ROOT/test/erp/run/erp-$BENCH_ERP_PORT.log
RESULTS=$BENCH_OUT/results.tsv
export ERP_PAGE_SIZE=$PAGE_SIZE

mkdir -p "$BENCH_OUT"
# The cluster runs as the postgres user and needs to read the snapshot of
# the installation in BENCH_OUT.
chmod 755 "$BENCH_OUT"

cleanup() {
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

# record REPETITION MEASUREMENT SECONDS RECORDS MEMORY: appends one row to
# RESULTS.  MEMORY is "VmHWM RssShmem" in kB, or empty.
record() {
    local memory=${5:-}
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${memory% *}" "${memory#* }" \
        "$(cut -d' ' -f1 /proc/loadavg)" >>"$RESULTS"
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
    {
        echo "date:            $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "nproc:           $(nproc)"
        echo "memory:          $(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
        echo "cpu:             $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
        echo "kernel:          $(uname -r)"
        echo "postgresql:      $(sql postgres 'SELECT version()')"
        echo "settings:        shared_buffers $(sql postgres 'SHOW shared_buffers'), fsync $(sql postgres 'SHOW fsync'), autovacuum $(sql postgres 'SHOW autovacuum')"
        local library
        library=$("$PG_BIN/pg_config" --pkglibdir)/stocktech_sync.so
        echo "extension:       stocktech_sync.so built $(stat -c '%y' "$library" | cut -d. -f1), installation checksum $INSTALL_FINGERPRINT (copied to $BENCH_OUT/install)"
        echo "git:             $(git -C "$REPO_ROOT" --no-optional-locks rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$REPO_ROOT" --no-optional-locks diff --quiet HEAD -- src bgworkers sql 2>/dev/null || echo ' with uncommitted changes in src/, bgworkers/ or sql/')"
        echo "test ERP:        node $(node --version), @sap/cds $(jq -r .version "$REPO_ROOT/test/erp/node_modules/@sap/cds/package.json"), ERP_PAGE_SIZE=$PAGE_SIZE"
        echo "client:          $(curl --version | sed -n 1p | cut -d' ' -f1-3)"
        echo "settings:        PAGE_SIZE=$PAGE_SIZE DELTA_VEHICLES=$DELTA_VEHICLES REPETITIONS=$REPETITIONS"
        echo "load average:    $(cut -d' ' -f1-3 /proc/loadavg) at start"
    } | tee "$BENCH_OUT/machine.txt"
}

# new_database NAME: creates the database NAME, dropping an older one, with
# the extension in hybrid mode and the connector "erp" on the test ERP, not
# enabled.
new_database() {
    local db=$1 profile
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
    sql "$db" 'CREATE EXTENSION stocktech_sync' >/dev/null
    sql "$db" "SELECT stocktech_sync.set_mode('hybrid')" >/dev/null
    profile=$(local_profile s4hana_odata_v4.json "$ERP_ROOT" | jq -c --argjson size "$PAGE_SIZE" '. + {page_size: $size}')
    psql -X -q -At -v ON_ERROR_STOP=1 -v profile="$profile" -d "$db" \
        <<<"SELECT stocktech_sync.create_connector('erp', :'profile'::jsonb);" >/dev/null
}

# erp_log_mark: prints the line count of the ERP log, for erp_urls_since.
erp_log_mark() {
    wc -l <"$ERP_LOG"
}

# erp_urls_since MARK: prints the URLs of the collection reads that the ERP
# logged after line MARK, one per line.  CAP logs the decoded query
# options, so the URLs are rebuilt with spaces encoded as %20, as
# stocktech_sync encodes them (CAP rejects "+").
erp_urls_since() {
    tail -n +"$(($1 + 1))" "$ERP_LOG" | node -e '
        const lines = require("fs").readFileSync(0, "utf8").split("\n")
        const root = process.argv[1]
        let options = null
        for (const line of lines) {
          if (/^\[odata\] - GET \/odata\/v4\/vehicle\/Vehicles \{$/.test(line)) { options = []; continue }
          if (options && line === "}") {
            console.log(root + "Vehicles?" + options.map(([k, v]) => k + "=" + v.replace(/ /g, "%20")).join("&"))
            options = null
            continue
          }
          const option = options && /^\s+.(\$\w+).: ([\x27"])(.*)\2,?$/.exec(line)
          if (option) options.push([option[1], option[3]])
        }' "$ERP_ROOT"
}

# curl_loop URL_FILE [BODY_DIR]: fetches the URLs one after another with
# the headers that stocktech_sync sends, one curl process per URL, and
# prints the elapsed seconds.  With BODY_DIR it keeps the bodies there.
curl_loop() {
    local file=$1 body_dir=${2:-} started n=0 output=/dev/null
    started=$(now_ns)
    while IFS= read -r url; do
        n=$((n + 1))
        [ -n "$body_dir" ] && output=$body_dir/page-$n.json
        curl -sS -f -o "$output" --compressed -A stocktech_sync \
            -H 'Accept: application/json' -H "Prefer: odata.maxpagesize=$PAGE_SIZE" "$url"
    done <"$file"
    seconds_between "$started" "$(now_ns)"
}

# records_in BODY_DIR: prints the number of records in the pages that
# curl_loop kept.
records_in() {
    cat "$1"/page-*.json | jq -s '[.[].value | length] | add // 0'
}

# MEMORY_SQL: a query of the peak resident memory (VmHWM) of the process
# whose pid is in the psql variable "pid", and of its resident shared
# memory now (RssShmem, mostly the shared buffers it touched), in kB.
MEMORY_SQL="SELECT m[1] || ' ' || s[1] FROM
    regexp_match(pg_read_file('/proc/' || :pid || '/status'), 'VmHWM:\s+(\d+)') AS m,
    regexp_match(pg_read_file('/proc/' || :pid || '/status'), 'RssShmem:\s+(\d+)') AS s"

# memory_of DATABASE PID: prints "VmHWM RssShmem" of a server process.
memory_of() {
    psql -X -q -At -v ON_ERROR_STOP=1 -v pid="$2" -d "$1" <<<"$MEMORY_SQL;"
}

# timed_sync_now DATABASE OUTPUT_FILE: runs sync_now('erp') in a new
# session and writes "SECONDS RECORDS VMHWM_KB RSS_SHMEM_KB SUMMARY_JSON" to
# OUTPUT_FILE.  SECONDS is the client's wall clock, connection included.
timed_sync_now() {
    local db=$1 out=$2 started finished summary
    started=$(now_ns)
    summary=$(psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" <<SQL
SELECT stocktech_sync.sync_now('erp');
SELECT pg_backend_pid() AS pid \\gset
$MEMORY_SQL;
SQL
    )
    finished=$(now_ns)
    local json memory
    json=$(head -1 <<<"$summary")
    memory=$(tail -1 <<<"$summary")
    if [ "$(jq -r .status <<<"$json")" != succeeded ]; then
        echo "sync_now in $db failed: $json" >&2
        exit 1
    fi
    echo "$(seconds_between "$started" "$finished") $(jq -r .records <<<"$json") $memory $json" >"$out"
}

# same_urls EXPECTED_FILE ACTUAL_FILE WHAT: stops the benchmark when the
# timed sync requested other URLs than the curl loop fetches.
same_urls() {
    if ! cmp -s "$1" "$2"; then
        echo "the $3 requested other URLs than the scratch sync, so the curl loop would not fetch the same pages:" >&2
        diff "$1" "$2" | head -20 >&2
        exit 1
    fi
}

# change_vehicles DATABASE: changes the first DELTA_VEHICLES available
# vehicles of DATABASE to reserved in the ERP, one OData PATCH with
# If-Match each (test/erp/patch-vehicle.sh).
change_vehicles() {
    local db=$1 vin
    for vin in $(sql "$db" "SELECT vin FROM stocktech_sync.vin_master
                            WHERE commercial_status = 'available' AND NOT vitw_in_transit
                            ORDER BY vin LIMIT $DELTA_VEHICLES"); do
        PORT=$BENCH_ERP_PORT "$REPO_ROOT/test/erp/patch-vehicle.sh" "$vin" '{"SalesStatus":"R1"}' >/dev/null
    done
}

# restart_erp: restarts the test ERP, which then serves its 3000 seed
# vehicles again.
restart_erp() {
    stop_erp "$BENCH_ERP_PORT"
    start_erp "$BENCH_ERP_PORT" || {
        echo "failed to start the test ERP on port $BENCH_ERP_PORT (log: $ERP_LOG)" >&2
        exit 1
    }
}

# measure_initial_and_delta REPETITION: measures the initial and the delta
# sync_now() against curl loops over their URLs.
measure_initial_and_delta() {
    local rep=$1 dir=$BENCH_OUT/rep-$rep mark seconds records peak shmem json
    local scratch=sync_scratch db=sync_now_$rep
    mkdir -p "$dir/pages"

    # Untimed: learn the URLs of the initial sync and warm up the ERP.
    new_database "$scratch"
    mark=$(erp_log_mark)
    sql "$scratch" "SELECT stocktech_sync.sync_now('erp')" >"$dir/scratch-initial.json"
    erp_urls_since "$mark" >"$dir/initial-urls.txt"
    curl_loop "$dir/initial-urls.txt" "$dir/pages" >/dev/null
    local expected
    expected=$(jq -r .records "$dir/scratch-initial.json")
    if [ "$(records_in "$dir/pages")" != "$expected" ]; then
        echo "the curl loop read $(records_in "$dir/pages") records and the scratch sync $expected, so the pages differ" >&2
        exit 1
    fi

    # The backend baseline: a new session that made one extension call.
    new_database "$db"
    local idle_memory
    idle_memory=$(psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" <<SQL | tail -1
SELECT stocktech_sync.current_mode();
SELECT pg_backend_pid() AS pid \\gset
$MEMORY_SQL;
SQL
    )
    record "$rep" idle_backend "" "" "$idle_memory"

    local order=(sync curl)
    [ $((rep % 2)) -eq 0 ] && order=(curl sync)
    for client in "${order[@]}"; do
        if [ "$client" = sync ]; then
            mark=$(erp_log_mark)
            timed_sync_now "$db" "$dir/initial-sync.txt"
            erp_urls_since "$mark" >"$dir/initial-urls-timed.txt"
            same_urls "$dir/initial-urls.txt" "$dir/initial-urls-timed.txt" "initial sync"
            read -r seconds records peak shmem json <"$dir/initial-sync.txt"
            record "$rep" initial_sync_now "$seconds" "$records" "$peak $shmem"
            log "run $rep: initial sync_now: $records records in $seconds s, VmHWM $peak kB"
        else
            seconds=$(curl_loop "$dir/initial-urls.txt")
            record "$rep" initial_curl "$seconds" "$expected" ""
            log "run $rep: initial curl loop: $expected records in $seconds s"
        fi
    done

    change_vehicles "$db"

    # Untimed: the scratch database has the same watermark, so its delta
    # run requests the URLs that the timed delta run will request.
    mark=$(erp_log_mark)
    sql "$scratch" "SELECT stocktech_sync.sync_now('erp')" >"$dir/scratch-delta.json"
    erp_urls_since "$mark" >"$dir/delta-urls.txt"
    expected=$(jq -r .records "$dir/scratch-delta.json")
    for client in "${order[@]}"; do
        if [ "$client" = sync ]; then
            mark=$(erp_log_mark)
            timed_sync_now "$db" "$dir/delta-sync.txt"
            erp_urls_since "$mark" >"$dir/delta-urls-timed.txt"
            same_urls "$dir/delta-urls.txt" "$dir/delta-urls-timed.txt" "delta sync"
            read -r seconds records peak shmem json <"$dir/delta-sync.txt"
            if [ "$(jq -r .counts.updated <<<"$json")" != "$DELTA_VEHICLES" ]; then
                echo "the delta run updated $(jq -r .counts.updated <<<"$json") vehicles, expected $DELTA_VEHICLES: $json" >&2
                exit 1
            fi
            record "$rep" delta_sync_now "$seconds" "$records" "$peak $shmem"
            log "run $rep: delta sync_now: $records records in $seconds s, VmHWM $peak kB"
        else
            seconds=$(curl_loop "$dir/delta-urls.txt")
            record "$rep" delta_curl "$seconds" "$expected" ""
            log "run $rep: delta curl loop: $expected records in $seconds s"
        fi
    done
}

# measure_worker REPETITION: measures the inbound worker's initial sync in
# its own database, which stocktech_sync.database lists, against a curl
# loop over its URLs.
measure_worker() {
    local rep=$1 dir=$BENCH_OUT/rep-$rep db=sync_worker_$rep pid="" mark
    new_database "$db"
    for _ in $(seq 100); do
        pid=$(sql "$db" "SELECT pid FROM pg_stat_activity
                         WHERE backend_type = 'stocktech_sync inbound' AND datname = current_database()")
        [ -n "$pid" ] && break
        sleep 0.2
    done
    if [ -z "$pid" ]; then
        echo "no inbound worker started for database $db within 20 s; check stocktech_sync.database and $CLUSTER_DIR/server.log" >&2
        exit 1
    fi
    # Let the worker poll at least once with the extension installed.
    sleep 2
    record "$rep" idle_worker "" "" "$(memory_of "$db" "$pid")"

    mark=$(erp_log_mark)
    sql "$db" "SELECT stocktech_sync.enable_connector('erp', true)" >/dev/null
    local status=""
    for _ in $(seq 600); do
        status=$(sql "$db" "SELECT status FROM stocktech_sync.sync_runs WHERE trigger = 'worker' ORDER BY id LIMIT 1")
        [ -n "$status" ] && [ "$status" != running ] && break
        sleep 0.2
    done
    if [ "$status" != succeeded ]; then
        echo "the inbound worker's sync run in $db ended with status '$status' (empty: no run ended within 120 s)" >&2
        exit 1
    fi
    local run seconds records memory
    run=$(sql "$db" "SELECT round(extract(epoch FROM finished_at - started_at)::numeric, 4) || ' ' || records
                     FROM stocktech_sync.sync_runs WHERE trigger = 'worker' ORDER BY id LIMIT 1")
    read -r seconds records <<<"$run"
    memory=$(memory_of "$db" "$pid")
    record "$rep" initial_worker "$seconds" "$records" "$memory"
    log "run $rep: initial sync by the inbound worker: $records records in $seconds s, VmHWM ${memory% *} kB"

    erp_urls_since "$mark" >"$dir/worker-urls.txt"
    seconds=$(curl_loop "$dir/worker-urls.txt")
    record "$rep" worker_curl "$seconds" "$records" ""
    log "run $rep: curl loop over the worker's URLs: $records records in $seconds s"
}

# diagnose: runs one more initial sync with pg_stat_statements tracking the
# statements that the extension runs through SPI, and reports the size of
# the audit rows it wrote.  Then profiles another with perf, and times
# initial syncs with default_toast_compression pglz (the default) and lz4,
# alternating, REPETITIONS times each.
diagnose() {
    local db=sync_diagnose out=$BENCH_OUT/statements.txt
    restart_erp
    new_database "$db"
    sql "$db" 'CREATE EXTENSION pg_stat_statements' >/dev/null
    psql -X -q -v ON_ERROR_STOP=1 -d "$db" >"$out" <<'SQL'
SET pg_stat_statements.track = 'all';
SET pg_stat_statements.track_planning = on;
SELECT pg_stat_statements_reset() \gset
SELECT clock_timestamp() AS started \gset
SELECT stocktech_sync.sync_now('erp') \gset
SELECT round(extract(epoch FROM clock_timestamp() - :'started'::timestamptz)::numeric * 1000) AS run_ms \gset
SET pg_stat_statements.track = 'none';
\echo initial sync_now with pg_stat_statements.track = all (tracking slows it down): :run_ms ms
SELECT calls, round(total_exec_time::numeric, 1) AS exec_ms, round(total_plan_time::numeric, 1) AS plan_ms,
       rows, left(regexp_replace(query, '\s+', ' ', 'g'), 100) AS query
FROM pg_stat_statements
WHERE query NOT LIKE 'SELECT stocktech_sync.sync_now%' AND query NOT LIKE 'SELECT pg_stat_statements_reset%'
ORDER BY total_exec_time + total_plan_time DESC LIMIT 8;
SELECT count(*) AS statements, sum(calls) AS calls, round(sum(total_exec_time)::numeric, 1) AS exec_ms,
       round(sum(total_plan_time)::numeric, 1) AS plan_ms
FROM pg_stat_statements
WHERE query NOT LIKE 'SELECT stocktech_sync.sync_now%' AND query NOT LIKE 'SELECT pg_stat_statements_reset%';
\echo audit rows of the sync: decisions as text and as stored (after TOAST compression)
SELECT count(*) AS audit_rows, round(avg(octet_length(decisions::text))) AS decisions_text_bytes,
       round(avg(pg_column_size(decisions))) AS decisions_stored_bytes
FROM stocktech_sync.audit_log WHERE event = 'erp_record';
SQL

    local rep compression seconds records peak shmem json
    for rep in $(seq "$REPETITIONS"); do
        for compression in pglz lz4; do
            new_database sync_compression
            PGOPTIONS="-c default_toast_compression=$compression" \
                timed_sync_now sync_compression "$BENCH_OUT/compression.txt"
            read -r seconds records peak shmem json <"$BENCH_OUT/compression.txt"
            printf '%s\t%s\n' "$compression" "$seconds" >>"$BENCH_OUT/compression.tsv"
        done
    done
    new_database sync_profile
    profile_session sync_profile "SELECT stocktech_sync.sync_now('erp')" "$BENCH_OUT/profile.txt"
    {
        echo
        echo "initial sync_now under perf:"
        cat "$BENCH_OUT/profile.txt"
        echo
        for compression in pglz lz4; do
            echo "initial sync_now with default_toast_compression = $compression:" \
                "$(awk -F'\t' -v c=$compression '$1 == c { print $2 }' "$BENCH_OUT/compression.tsv" | median_range |
                    awk '{ printf "%s s (%s-%s)", $1, $2, $3 }') in $REPETITIONS runs"
        done
    } >>"$out"
    log "diagnostics in $out"
    cat "$out" >&2
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

# column_of MEASUREMENT FIELD: prints one field of every row of a
# measurement (3 seconds, 4 records, 5 VmHWM kB, 6 RssShmem kB).
column_of() {
    awk -F'\t' -v m="$1" -v f="$2" '$2 == m { print $f }' "$RESULTS"
}

# rates_of MEASUREMENT: prints "REPETITION RECORDS_PER_SECOND" per run.
rates_of() {
    awk -F'\t' -v m="$1" '$2 == m { printf "%s\t%.1f\n", $1, $4 / $3 }' "$RESULTS"
}

# ratios_of MEASURED BASELINE KIND: prints the per-repetition ratios of two
# measurements, of their rates with KIND rate and of their VmHWM with KIND
# memory.
ratios_of() {
    awk -F'\t' -v a="$1" -v b="$2" -v kind="$3" '
        $2 == a { x[$1] = (kind == "rate") ? $4 / $3 : $5 }
        $2 == b { y[$1] = (kind == "rate") ? $4 / $3 : $5 }
        END { for (r in x) if (r in y && y[r] > 0) printf "%.3f\n", x[r] / y[r] }' "$RESULTS"
}

# shmem_mb MEASUREMENT: prints the median RssShmem of a measurement in MB.
shmem_mb() {
    column_of "$1" 6 | awk '{ printf "%.1f\n", $1 / 1024 }' | median_range | cut -d' ' -f1
}

# summary_row LABEL MEASURED BASELINE KIND: prints one row of the result
# table.
summary_row() {
    local what=$1 measured=$2 baseline=$3 kind=$4 unit
    local m b r m_med m_min m_max b_med b_min b_max r_med r_min r_max
    if [ "$kind" = rate ]; then
        m=$(rates_of "$measured" | cut -f2 | median_range)
        b=$(rates_of "$baseline" | cut -f2 | median_range)
        unit="records/s"
    else
        m=$(column_of "$measured" 5 | awk '{ printf "%.1f\n", $1 / 1024 }' | median_range)
        b=$(column_of "$baseline" 5 | awk '{ printf "%.1f\n", $1 / 1024 }' | median_range)
        unit="MB"
    fi
    r=$(ratios_of "$measured" "$baseline" "$kind" | median_range)
    read -r m_med m_min m_max <<<"$m"
    read -r b_med b_min b_max <<<"$b"
    read -r r_med r_min r_max <<<"$r"
    printf '| %s | %s %s (%s–%s) | %s %s (%s–%s) | %s (%s–%s) |\n' "$what" \
        "$m_med" "$unit" "$m_min" "$m_max" "$b_med" "$unit" "$b_min" "$b_max" "$r_med" "$r_min" "$r_max"
}

# print_summary: prints the result table and writes it to results.md.
print_summary() {
    local records_initial records_delta
    records_initial=$(column_of initial_sync_now 4 | sed -n 1p)
    records_delta=$(column_of delta_sync_now 4 | median_range | cut -d' ' -f1)
    {
        echo
        echo "Median of $REPETITIONS runs (range in brackets); the ratio is the median of the per-run ratios."
        echo
        echo "| measurement | stocktech_sync | baseline | ratio |"
        echo "|---|---|---|---|"
        summary_row "initial sync, sync_now(), $records_initial records" initial_sync_now initial_curl rate
        summary_row "delta sync, sync_now(), $records_delta records" delta_sync_now delta_curl rate
        summary_row "initial sync, inbound worker" initial_worker worker_curl rate
        summary_row "peak RSS, backend after the initial sync_now()" initial_sync_now idle_backend memory
        summary_row "peak RSS, backend after the delta sync_now()" delta_sync_now idle_backend memory
        summary_row "peak RSS, inbound worker after its initial sync" initial_worker idle_worker memory
        echo
        echo "Baselines: the rate of a bash loop of curl over the same URLs; the peak RSS of a"
        echo "backend after one extension call, and of the same worker before enable_connector()."
        echo "Peak RSS is VmHWM, shared memory included.  Shared memory resident at the end"
        echo "(RssShmem, median): $(shmem_mb initial_sync_now) MB after the initial sync_now(),"
        echo "$(shmem_mb idle_backend) MB in the baseline backend, $(shmem_mb initial_worker) MB in the worker after its sync."
        echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) at the end"
    } | tee "$BENCH_OUT/results.md"
}

main() {
    local worker_databases=""
    snapshot_install
    for rep in $(seq "$REPETITIONS"); do
        worker_databases="${worker_databases:+$worker_databases,}sync_worker_$rep"
    done
    # Autovacuum is off so that it cannot land in some runs and not in
    # others, and every run works on a new database.  pg_stat_statements is
    # loaded for diagnose() and tracks nothing until diagnose() sets
    # pg_stat_statements.track in its session.
    EXTRA_PG_CONF="shared_preload_libraries = 'stocktech_sync,pg_stat_statements'
pg_stat_statements.track = 'none'
autovacuum = off
stocktech_sync.database = '$worker_databases'
stocktech_sync.launcher_naptime = 1" start_cluster "$BENCH_PG_PORT"
    describe_machine
    printf 'repetition\tmeasurement\tseconds\trecords\tvmhwm_kb\trss_shmem_kb\tload\n' >"$RESULTS"

    for rep in $(seq "$REPETITIONS"); do
        restart_erp
        measure_initial_and_delta "$rep"
        measure_worker "$rep"
    done
    [ "$DIAGNOSE" = 1 ] && diagnose
    print_summary
    log "results in $BENCH_OUT"
}

main "$@"
