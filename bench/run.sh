#!/usr/bin/env bash
# run.sh
#    Runs the stocktech_sync benchmarks on a throwaway PostgreSQL cluster and
#    prints the results as a table.  Benchmarks are not tests: `make test`
#    never runs them.  docs/benchmarks.md describes each one and the last
#    recorded results.
#
# Usage: bench/run.sh [apply] [local] [import]    (no argument: all three)
#
#   apply   100,000 ERP records, about 30% of the field values changed,
#           through stocktech_sync.apply_erp_batch(), against a raw upsert
#           into an untriggered copy of vin_master and against the PL/pgSQL
#           engine in bench/plpgsql_engine.sql
#   local   single-row UPDATEs through the guard trigger against the same
#           UPDATEs on untriggered copies, with pgbench
#   import  stocktech_sync.import_csv() of 1,000,000 CSV rows against COPY
#           into a staging table plus the raw upsert, with the backend's
#           peak memory
#
# Every figure is a ratio against a baseline measured in the same run.  Each
# measurement runs REPETITIONS times, interleaved across variants, and the
# median is reported with the spread.
#
# Settings (environment variables):
#   BENCH_PORT       port of the throwaway cluster on 127.0.0.1 (54500).  A
#                    port from 32768 to 60999 can be briefly taken by an
#                    outgoing connection; pick another one if the start fails
#                    with "Address already in use".
#   VEHICLES         vehicles of the apply and local benchmarks (100000)
#   BATCH_SIZE       records per apply_erp_batch() call (1000)
#   REPETITIONS      runs of each measurement (3)
#   IMPORT_ROWS      CSV rows of the import benchmark (1000000)
#   PGBENCH_SECONDS  duration of each pgbench run in seconds (20)
#   PGBENCH_CLIENTS  pgbench clients and threads (2)
#   FSYNC            fsync setting of the cluster: off, as in `make test`, or on (off)
#   PROFILE          1: record a perf profile of one extra extension run of
#                    each benchmark into BENCH_OUT (0)
#   BENCH_OUT        directory for logs, profiles and the result table
#                    (a new directory under /tmp)
#
# Needs what `make test` installs: PostgreSQL 15 with pgbench and the
# extension built and installed (make install).  Runs as root like
# scripts/test.sh, and the cluster runs as the postgres user.  perf is
# needed only with PROFILE=1.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
BENCH_DIR=$REPO_ROOT/bench

BENCH_PORT=${BENCH_PORT:-54500}
VEHICLES=${VEHICLES:-100000}
BATCH_SIZE=${BATCH_SIZE:-1000}
REPETITIONS=${REPETITIONS:-3}
IMPORT_ROWS=${IMPORT_ROWS:-1000000}
PGBENCH_SECONDS=${PGBENCH_SECONDS:-20}
PGBENCH_CLIENTS=${PGBENCH_CLIENTS:-2}
FSYNC=${FSYNC:-off}
PROFILE=${PROFILE:-0}
BENCH_OUT=${BENCH_OUT:-$(mktemp -d /tmp/stocktech_bench.XXXXXX)}
DB=stocktech_bench

BENCHMARKS=("$@")
if [ ${#BENCHMARKS[@]} -eq 0 ]; then
    BENCHMARKS=(apply local import)
fi
for name in "${BENCHMARKS[@]}"; do
    case $name in
        apply | local | import) ;;
        *)
            echo "unknown benchmark \"$name\"; expected apply, local or import" >&2
            exit 2
            ;;
    esac
done
case $FSYNC in
    on | off) ;;
    *)
        echo "invalid FSYNC \"$FSYNC\"; expected on or off" >&2
        exit 2
        ;;
esac
mkdir -p "$BENCH_OUT"

selected() {
    local name
    for name in "${BENCHMARKS[@]}"; do
        [ "$name" = "$1" ] && return 0
    done
    return 1
}

psql_db() {
    psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"
}

# One value from a query, unaligned.
query() {
    psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" -c "$1"
}

# Write the machine, PostgreSQL and settings behind every figure.
describe_machine() {
    {
        echo "date:            $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "nproc:           $(nproc)"
        echo "memory:          $(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
        echo "cpu:             $(sed -n 's/^model name\t*: //p' /proc/cpuinfo | head -1)"
        echo "kernel:          $(uname -r)"
        echo "postgresql:      $(query 'SELECT version()')"
        echo "shared_buffers:  $(query 'SHOW shared_buffers'), fsync $(query 'SHOW fsync'), autovacuum $(query 'SHOW autovacuum')"
        echo "extension:       stocktech_sync $(query "SELECT extversion FROM pg_extension WHERE extname = 'stocktech_sync'"), $(stat -c '%y' "$($PG_BIN/pg_config --pkglibdir)/stocktech_sync.so" | cut -d. -f1) build"
        echo "git:             $(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$REPO_ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' with uncommitted changes in src/')"
        echo "settings:        VEHICLES=$VEHICLES BATCH_SIZE=$BATCH_SIZE REPETITIONS=$REPETITIONS IMPORT_ROWS=$IMPORT_ROWS PGBENCH_SECONDS=$PGBENCH_SECONDS PGBENCH_CLIENTS=$PGBENCH_CLIENTS FSYNC=$FSYNC"
        echo "load average:    $(cut -d' ' -f1-3 /proc/loadavg) at start"
    } | tee "$BENCH_OUT/machine.txt"
}

# Start the cluster and create the benchmark database with the extension
# and the bench schema.
prepare_database() {
    # Set first, so a cluster that fails to start is removed too.  The
    # empty CLUSTER_DIR keeps the trap away from a caller's cluster.
    CLUSTER_DIR=
    trap stop_cluster EXIT
    start_cluster "$BENCH_PORT"
    if [ "$PROFILE" = 1 ]; then
        # Keep the library the server loaded, so perf names its functions
        # even after a `make install` replaces the file during the run.
        perf buildid-cache -a "$($PG_BIN/pg_config --pkglibdir)/stocktech_sync.so"
    fi
    # The runs vacuum their tables explicitly, because a background
    # autovacuum would land in some runs and not in others.
    psql -X -q -d postgres -c "ALTER SYSTEM SET autovacuum = off" \
        -c "ALTER SYSTEM SET fsync = $FSYNC" -c "SELECT pg_reload_conf()" >/dev/null
    psql -X -q -d postgres -c "CREATE DATABASE $DB"
    psql_db -c 'CREATE EXTENSION stocktech_sync'
    psql_db -f "$BENCH_DIR/data.sql"
    psql_db -f "$BENCH_DIR/plpgsql_engine.sql"
    psql_db -f "$BENCH_DIR/harness.sql"
}

# Run sql in one session and store its server-side duration, the backend's
# peak resident memory (VmHWM, shared buffers included) and its peak private
# memory (RssAnon, sampled every 0.1 s) as one measurement.  With a fourth
# argument, perf records a profile of the backend into that file.
measure() {
    local benchmark=$1 variant=$2 repetition=$3 sql=$4 profile=${5:-}
    local pid_file=$BENCH_OUT/backend.pid
    local result_file=$BENCH_OUT/$benchmark-$variant-$repetition.out
    local load client backend peak_anon=0 anon perf_pid=""

    rm -f "$pid_file"
    load=$(cut -d' ' -f1 /proc/loadavg)
    psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" >"$result_file" 2>&1 <<SQL &
\o $pid_file
SELECT pg_backend_pid();
\o
SELECT clock_timestamp() AS started \gset
$sql
SELECT round(extract(epoch FROM clock_timestamp() - :'started'::timestamptz)::numeric, 3)
           AS seconds,
       (regexp_match(pg_read_file('/proc/self/status'), 'VmHWM:\s+(\d+)'))[1] AS peak_rss_kb
\gset
\echo RESULT :seconds :peak_rss_kb
SQL
    client=$!
    for _ in $(seq 100); do
        [ -s "$pid_file" ] && break
        sleep 0.1
    done
    backend=$(tr -dc '0-9' <"$pid_file" 2>/dev/null || true)
    if [ -n "$profile" ] && [ -n "$backend" ]; then
        perf record -q --buildid-mmap -F 199 --call-graph dwarf,16384 -p "$backend" -o "$profile" \
            >/dev/null 2>&1 &
        perf_pid=$!
    fi
    while kill -0 "$client" 2>/dev/null; do
        anon=$(awk '/^RssAnon:/ {print $2}' "/proc/$backend/status" 2>/dev/null || true)
        if [ -n "$anon" ] && [ "$anon" -gt "$peak_anon" ]; then
            peak_anon=$anon
        fi
        sleep 0.1
    done
    if ! wait "$client"; then
        cat "$result_file" >&2
        echo "$benchmark $variant run $repetition failed; output in $result_file" >&2
        exit 1
    fi
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" || true
    fi

    local seconds peak_rss
    read -r seconds peak_rss < <(sed -n 's/^RESULT //p' "$result_file")
    query "INSERT INTO bench.measurements VALUES ('$benchmark', '$variant', $repetition,
           $seconds, NULL, NULL, $peak_rss, $peak_anon, $load)
           ON CONFLICT (benchmark, variant, repetition) DO UPDATE
           SET seconds = excluded.seconds, peak_rss_kb = excluded.peak_rss_kb,
               peak_anon_kb = excluded.peak_anon_kb, load_average = excluded.load_average" \
        >/dev/null
    printf '   %-7s %-12s run %s: %8.2f s, peak RSS %s MB, peak private %s MB, load %s\n' \
        "$benchmark" "$variant" "$repetition" "$seconds" "$((peak_rss / 1024))" \
        "$((peak_anon / 1024))" "$load" >&2
}

# Write a text report of a perf profile: functions by inclusive share.
summarize_profile() {
    local data=$1
    perf report -i "$data" --children --stdio --percent-limit 1.5 -g none 2>/dev/null \
        | grep '%' | cut -c1-220 >"${data%.data}.txt" || true
    log "profile: ${data%.data}.txt (perf report -i $data for the call graph)"
}

# The tables each apply engine writes, for VACUUM and the size report.
engine_tables() {
    case $1 in
        extension) echo "stocktech_sync.vin_master, stocktech_sync.audit_log, stocktech_sync.deferred_changes, stocktech_sync.inbound_dead_letter" ;;
        plpgsql) echo "bench.vin_plpgsql, bench.audit_plpgsql, bench.deferred_plpgsql, bench.dead_letter_plpgsql" ;;
        raw | raw_audit | raw_full_audit) echo "bench.vin_raw, bench.audit_raw" ;;
        raw_checked) echo "bench.vin_checked" ;;
    esac
}

# Put engine's tables into the starting state and checkpoint.  With the
# snapshot loaded the tables are vacuumed and analyzed.  Emptied tables are
# left as TRUNCATE leaves them, never analyzed, like the tables of a new
# installation.  A VACUUM of the empty vin_master would make the planner
# choose a sequential scan for the engine's cached row look-up, so an import
# into it would slow down with every row (see docs/benchmarks.md).
reset_engine() {
    local engine=$1 with_snapshot=${2:-true}
    query "CALL bench.reset_target('$engine', $with_snapshot)" >/dev/null
    if [ "$with_snapshot" = true ]; then
        query "VACUUM (ANALYZE) $(engine_tables "$engine")" >/dev/null
    fi
    query "CHECKPOINT" >/dev/null
}

# The starting state of the apply and local benchmarks (bench/setup_apply.sql).
setup_vehicles() {
    log "setup: $VEHICLES vehicles created through apply_erp_batch, local values, transit"
    psql_db -v vehicles="$VEHICLES" -v batch_size="$BATCH_SIZE" \
        -f "$BENCH_DIR/setup_apply.sql" >/dev/null
    psql_db -c 'TABLE bench.data_set_facts' | tee "$BENCH_OUT/data_set.txt"
}

run_apply() {
    local engines=(extension raw raw_audit raw_full_audit plpgsql) repetition engine
    log "apply: $VEHICLES changed records in batches of $BATCH_SIZE, $REPETITIONS runs per engine"
    for repetition in $(seq "$REPETITIONS"); do
        for engine in "${engines[@]}"; do
            reset_engine "$engine"
            measure apply "$engine" "$repetition" \
                "CALL bench.apply_batches('$engine', 'changed');"
            if [ "$engine" = extension ] && [ "$repetition" = 1 ]; then
                # raw_full_audit writes the audit rows of this run.
                query "CALL bench.save_audit_payload($BATCH_SIZE)" >/dev/null
            fi
        done
    done

    # The last run of each engine is still in its tables.
    psql_db -c "SELECT * FROM bench.compare_engines()" | tee "$BENCH_OUT/apply_compare.txt"
    psql_db -f - <<'SQL' | tee "$BENCH_OUT/apply_counts.txt"
SELECT c.engine,
       sum((c.counts ->> 'updated')::bigint) AS updated,
       sum((c.counts ->> 'unchanged')::bigint) AS unchanged,
       sum((c.counts ->> 'applied')::bigint) AS applied,
       sum((c.counts ->> 'ignored')::bigint) AS ignored,
       sum((c.counts ->> 'conflicts')::bigint) AS conflicts,
       sum((c.counts ->> 'deferred')::bigint) AS deferred,
       sum((c.counts ->> 'rejected')::bigint) AS rejected,
       sum((c.counts ->> 'dead_lettered')::bigint) AS dead_lettered
FROM bench.batch_counts AS c
WHERE c.data_set = 'changed' AND c.counts IS NOT NULL
GROUP BY c.engine ORDER BY c.engine;
SELECT t.engine, t.audit_rows, t.deferred_rows,
       pg_size_pretty(t.vin_bytes) AS vin_table, pg_size_pretty(t.audit_bytes) AS audit_table,
       pg_size_pretty(t.audit_bytes / nullif(t.audit_rows, 0)) AS per_audit_row,
       pg_size_pretty(t.decisions_text) AS decisions_as_text
FROM (SELECT 'extension' AS engine,
             (SELECT avg(octet_length(decisions::text))::bigint
              FROM stocktech_sync.audit_log) AS decisions_text,
             (SELECT count(*) FROM stocktech_sync.audit_log) AS audit_rows,
             (SELECT count(*) FROM stocktech_sync.deferred_changes) AS deferred_rows,
             pg_total_relation_size('stocktech_sync.vin_master') AS vin_bytes,
             pg_total_relation_size('stocktech_sync.audit_log') AS audit_bytes
      UNION ALL
      SELECT 'plpgsql',
             (SELECT avg(octet_length(decisions::text))::bigint FROM bench.audit_plpgsql),
             (SELECT count(*) FROM bench.audit_plpgsql),
             (SELECT count(*) FROM bench.deferred_plpgsql),
             pg_total_relation_size('bench.vin_plpgsql'),
             pg_total_relation_size('bench.audit_plpgsql')
      UNION ALL
      SELECT 'raw_full_audit',
             (SELECT avg(octet_length(decisions::text))::bigint FROM bench.audit_raw),
             (SELECT count(*) FROM bench.audit_raw), 0,
             pg_total_relation_size('bench.vin_raw'), pg_total_relation_size('bench.audit_raw'))
     AS t;
SQL

    if [ "$PROFILE" = 1 ]; then
        reset_engine extension
        measure apply extension-profiled 1 "CALL bench.apply_batches('extension', 'changed');" \
            "$BENCH_OUT/apply-extension.perf.data"
        summarize_profile "$BENCH_OUT/apply-extension.perf.data"
        reset_engine plpgsql
        measure apply plpgsql-profiled 1 "CALL bench.apply_batches('plpgsql', 'changed');" \
            "$BENCH_OUT/apply-plpgsql.perf.data"
        summarize_profile "$BENCH_OUT/apply-plpgsql.perf.data"
    fi
}

# One pgbench run; stores tps and average latency.
run_pgbench() {
    local variant=$1 repetition=$2 script=$3 vehicles=$4
    local out=$BENCH_OUT/local-$variant-$repetition.out load tps latency
    load=$(cut -d' ' -f1 /proc/loadavg)
    pgbench -n -M prepared -D vehicles="$vehicles" -f "$script" -T "$PGBENCH_SECONDS" \
        -c "$PGBENCH_CLIENTS" -j "$PGBENCH_CLIENTS" "$DB" >"$out" 2>&1 || {
        cat "$out" >&2
        exit 1
    }
    tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$out")
    latency=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$out")
    query "INSERT INTO bench.measurements VALUES ('local', '$variant', $repetition,
           NULL, $tps, $latency, NULL, NULL, $load)
           ON CONFLICT (benchmark, variant, repetition) DO UPDATE
           SET tps = excluded.tps, latency_ms = excluded.latency_ms,
               load_average = excluded.load_average" >/dev/null
    printf '   %-7s %-22s run %s: %10.1f tps, %.3f ms, load %s\n' local "$variant" \
        "$repetition" "$tps" "$latency" "$load" >&2
}

run_local() {
    local vehicles repetition field target
    vehicles=$(query 'SELECT count(*) FROM bench.local_vins')
    log "local: pgbench -T $PGBENCH_SECONDS -c $PGBENCH_CLIENTS over $vehicles vehicles, $REPETITIONS runs"
    for repetition in $(seq "$REPETITIONS"); do
        reset_engine extension
        reset_engine raw
        reset_engine raw_checked
        for field in pdi location; do
            for target in extension raw raw_checked raw_audit; do
                run_pgbench "$field-$target" "$repetition" \
                    "$BENCH_DIR/pgbench/${field}_$target.sql" "$vehicles"
            done
        done
    done
    if [ "$PROFILE" = 1 ]; then
        local backend
        pgbench -n -M prepared -D vehicles="$vehicles" -f "$BENCH_DIR/pgbench/pdi_extension.sql" \
            -T 8 -c 1 -j 1 "$DB" >/dev/null 2>&1 &
        local client=$!
        sleep 2
        backend=$(query "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench' LIMIT 1")
        perf record -q --buildid-mmap -F 299 --call-graph dwarf,16384 -p "$backend" \
            -o "$BENCH_OUT/local-pdi-extension.perf.data" -- sleep 4 >/dev/null 2>&1 || true
        wait "$client" || true
        summarize_profile "$BENCH_OUT/local-pdi-extension.perf.data"
    fi
}

run_import() {
    local csv=$CLUSTER_DIR/import.csv repetition variant
    if [ -z "$(query "SELECT to_regprocedure('stocktech_sync.import_csv(text, text, jsonb)')")" ]; then
        log "import: stocktech_sync.import_csv(text, text, jsonb) is not installed; skipped"
        return 0
    fi
    log "import: writing $IMPORT_ROWS CSV rows to $csv"
    # OFFSET 0 keeps the subquery, so the values are computed once per row
    # and not once per column.
    query "COPY (SELECT i.vin, (i.v).model_code, (i.v).model_year, (i.v).version_code,
                        (i.v).color_code, (i.v).engine_number, (i.v).dealer_code,
                        (i.v).commercial_status, (i.v).financial_status, (i.v).list_price,
                        (i.v).sales_order, (i.v).customer_ref, (i.v).warehouse_location,
                        (i.v).maint_status, (i.v).pdi_status,
                        CASE WHEN (i.v).vitw_in_transit THEN 'true' ELSE 'false' END
                            AS vitw_in_transit,
                        (i.v).customs_evidence, (i.v).arrival_date, (i.v).odometer_km
                 FROM (SELECT * FROM bench.initial_vehicles($IMPORT_ROWS) OFFSET 0) AS i)
           TO '$csv' WITH (FORMAT csv, HEADER true)" >/dev/null
    query "SELECT stocktech_sync.set_mode('manual')" >/dev/null
    log "import: $(du -h "$csv" | cut -f1) file, $REPETITIONS runs per variant"

    for repetition in $(seq "$REPETITIONS"); do
        for variant in extension copy_upsert; do
            if [ "$variant" = extension ]; then
                reset_engine extension false
                measure import extension "$repetition" \
                    "SELECT stocktech_sync.import_csv('$csv', 'manual') AS counts \\gset
\\echo COUNTS :counts"
            else
                reset_engine raw false
                query "TRUNCATE bench.csv_staging" >/dev/null
                measure import copy_upsert "$repetition" \
                    "COPY bench.csv_staging FROM '$csv' WITH (FORMAT csv, HEADER true);
CALL bench.upsert_staging();"
            fi
        done
    done
    sed -n 's/^COUNTS //p' "$BENCH_OUT/import-extension-1.out" | tee "$BENCH_OUT/import_counts.txt"
    psql_db -c "SELECT (SELECT count(*) FROM stocktech_sync.vin_master) AS vehicles,
                       (SELECT count(*) FROM stocktech_sync.audit_log) AS audit_rows,
                       (SELECT count(*) FROM stocktech_sync.inbound_dead_letter) AS dead_letters,
                       pg_size_pretty(pg_total_relation_size('stocktech_sync.vin_master')) AS vin_table,
                       pg_size_pretty(pg_total_relation_size('stocktech_sync.audit_log')) AS audit_table,
                       pg_size_pretty(pg_total_relation_size('bench.vin_raw')) AS raw_table" \
        | tee -a "$BENCH_OUT/import_counts.txt"

    if [ "$PROFILE" = 1 ]; then
        # The profile covers the first 100,000 rows only, to keep it short.
        local head_csv=$CLUSTER_DIR/import_head.csv
        head -n 100001 "$csv" >"$head_csv"
        chown postgres:postgres "$head_csv"
        reset_engine extension false
        measure import extension-profiled 1 \
            "SELECT stocktech_sync.import_csv('$head_csv', 'manual');" \
            "$BENCH_OUT/import-extension.perf.data"
        summarize_profile "$BENCH_OUT/import-extension.perf.data"
    fi
}

# The result table: medians, spread, ratios and targets.
report() {
    psql_db -f "$BENCH_DIR/report.sql" | tee "$BENCH_OUT/results.txt"
}

prepare_database
describe_machine
log "logs and results in $BENCH_OUT"
if selected apply || selected local; then
    setup_vehicles
fi
selected apply && run_apply
selected local && run_local
selected import && run_import
report
