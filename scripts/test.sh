#!/usr/bin/env bash
# test.sh
#    `make test`: installs what the tests need, builds and installs the
#    extension, runs every suite and prints one closing line
#    "N passed, N failed".  Exits non-zero when any test failed or a suite
#    could not run.
#
# Suites: GoogleTest through CTest, pg_regress, isolation specs, pgTAP, and
# the shell suites under test/integration/ (each prints "N passed, N failed"
# as its last line).  A suite that cannot run counts as one failure.
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

PASSED=0
FAILED=0
RESULTS_DIR=$REPO_ROOT/build/test-results
mkdir -p "$RESULTS_DIR"

count() { PASSED=$((PASSED + $1)); FAILED=$((FAILED + $2)); log "$3: $1 passed, $2 failed"; }

install_packages || { echo "0 passed, 1 failed"; exit 1; }
build_and_install || { echo "0 passed, 1 failed"; exit 1; }

# GoogleTest through CTest.
run_unit_tests() {
    local out=$RESULTS_DIR/ctest.log
    if ! { cmake -S . -B build/core -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$out" 2>&1 &&
           cmake --build build/core -j2 >>"$out" 2>&1; }; then
        tail -40 "$out"
        count 0 1 "unit tests (build failed)"
        return
    fi
    (cd build/core && ctest --output-on-failure -j2) >>"$out" 2>&1
    local line total failed
    line=$(grep -E 'tests passed, [0-9]+ tests? failed out of' "$out" | tail -1)
    if [ -z "$line" ]; then
        tail -40 "$out"
        count 0 1 "unit tests (no ctest summary)"
        return
    fi
    failed=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
    total=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
    [ "$failed" -gt 0 ] && grep -E '\*\*\*Failed|Failed  ' "$out" | head -40
    count $((total - failed)) "$failed" "unit tests (CTest)"
}

# pg_regress and isolation specs through PGXS installcheck.
run_installcheck() {
    local out=$RESULTS_DIR/installcheck.log
    make -s installcheck PG_CONFIG="$PG_BIN/pg_config" >"$out" 2>&1
    local status=$?
    local regress_total regress_failed=0 iso_total iso_failed=0
    regress_total=$(grep -c '^test: ' test/regress_schedule)
    iso_total=$(ls specs/*.spec 2>/dev/null | wc -l)
    # pg_regress prints "All N tests passed." or "M of N tests failed."
    local summaries
    summaries=$(grep -E '(All [0-9]+ tests passed|[0-9]+ of [0-9]+ tests failed)' "$out")
    local first second
    first=$(sed -n 1p <<<"$summaries")
    second=$(sed -n 2p <<<"$summaries")
    if [[ $first =~ ([0-9]+)\ of\ [0-9]+\ tests\ failed ]]; then
        regress_failed=${BASH_REMATCH[1]}
    elif [ -z "$first" ]; then
        regress_failed=$regress_total
    fi
    if [ "$iso_total" -gt 0 ]; then
        if [[ $second =~ ([0-9]+)\ of\ [0-9]+\ tests\ failed ]]; then
            iso_failed=${BASH_REMATCH[1]}
        elif [ -z "$second" ]; then
            iso_failed=$iso_total
        fi
    fi
    if [ "$status" -ne 0 ] || [ "$regress_failed" -gt 0 ] || [ "$iso_failed" -gt 0 ]; then
        grep -E 'FAILED|failed|ERROR' "$out" | head -20
        for diff in build/regress/regression.diffs build/isolation/regression.diffs; do
            [ -s "$diff" ] && head -150 "$diff"
        done
        if [ "$status" -ne 0 ] && [ "$regress_failed" -eq 0 ] && [ "$iso_failed" -eq 0 ]; then
            regress_failed=1
        fi
    fi
    count $((regress_total - regress_failed)) "$regress_failed" "pg_regress"
    [ "$iso_total" -gt 0 ] && count $((iso_total - iso_failed)) "$iso_failed" "isolation"
}

# pgTAP files: every "ok" line passes, every "not ok" fails, and a file whose
# plan does not match its results or that stops with an error fails once more.
run_pgtap() {
    local files=(test/pgtap/*.sql)
    [ -e "${files[0]}" ] || return 0
    psql -X -q -d postgres -c 'DROP DATABASE IF EXISTS stocktech_pgtap' \
        -c 'CREATE DATABASE stocktech_pgtap' >/dev/null
    psql -X -q -d stocktech_pgtap -c 'CREATE EXTENSION pgtap' \
        -c 'CREATE EXTENSION stocktech_sync' >/dev/null 2>&1
    local passed=0 failed=0 file out ok notok plan
    for file in "${files[@]}"; do
        out=$RESULTS_DIR/pgtap-$(basename "$file" .sql).log
        psql -X -q -At -v ON_ERROR_STOP=1 -d stocktech_pgtap -f "$file" >"$out" 2>&1
        local status=$?
        ok=$(grep -c '^ok ' "$out")
        notok=$(grep -c '^not ok ' "$out")
        plan=$(sed -nE 's/^1\.\.([0-9]+)$/\1/p' "$out" | head -1)
        passed=$((passed + ok))
        failed=$((failed + notok))
        if [ "$status" -ne 0 ] || [ -z "$plan" ] || [ "$plan" -ne $((ok + notok)) ]; then
            log "pgTAP file $file: exit status $status, plan ${plan:-missing}, ran $((ok + notok))"
            failed=$((failed + 1))
        fi
        [ "$notok" -gt 0 ] || [ "$status" -ne 0 ] && grep -A6 -E '^not ok|ERROR' "$out" | head -60
    done
    count "$passed" "$failed" "pgTAP"
}

# Shell suites that start their own servers.
run_integration() {
    local script out line
    for script in test/integration/*.sh; do
        [ -e "$script" ] || return 0
        [ "$(basename "$script")" = lib.sh ] && continue
        out=$RESULTS_DIR/$(basename "$script" .sh).log
        bash "$script" >"$out" 2>&1
        local status=$?
        line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -1)
        if [ -z "$line" ]; then
            tail -30 "$out"
            count 0 1 "$script (no result line, exit status $status)"
            continue
        fi
        local p f
        p=$(cut -d' ' -f1 <<<"$line")
        f=$(cut -d' ' -f3 <<<"$line")
        if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
            f=1
        fi
        [ "$f" -gt 0 ] && grep -E '^(not ok|FAIL)' "$out" | head -30
        count "$p" "$f" "$script"
    done
}

run_unit_tests
start_cluster "${TEST_PORT:-54329}"
trap stop_cluster EXIT
run_installcheck
run_pgtap
stop_cluster
trap - EXIT
run_integration

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]
