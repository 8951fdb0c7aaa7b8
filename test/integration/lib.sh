# lib.sh
#    Assertions for the integration suites.  Each check prints "ok N - what"
#    or "not ok N - what" with the expected and actual values; finish()
#    prints the closing line "N passed, N failed" and sets the exit status.

CHECKS_PASSED=0
CHECKS_FAILED=0

# check_eq WHAT EXPECTED ACTUAL
check_eq() {
    local what=$1 expected=$2 actual=$3
    local n=$((CHECKS_PASSED + CHECKS_FAILED + 1))
    if [ "$expected" == "$actual" ]; then
        CHECKS_PASSED=$((CHECKS_PASSED + 1))
        echo "ok $n - $what"
    else
        CHECKS_FAILED=$((CHECKS_FAILED + 1))
        echo "not ok $n - $what"
        echo "#   expected: $expected"
        echo "#   actual:   $actual"
    fi
}

# check_true WHAT COMMAND...: passes when the command succeeds
check_true() {
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then
        check_eq "$what" ok ok
    else
        check_eq "$what" "command succeeds: $*" "it failed"
    fi
}

# sql DATABASE QUERY: one value, unaligned
sql() {
    psql -X -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}

# wait_for SECONDS DATABASE QUERY EXPECTED: polls until the query returns EXPECTED
wait_for() {
    local seconds=$1 db=$2 query=$3 expected=$4
    local deadline=$((SECONDS + seconds))
    while [ $SECONDS -lt $deadline ]; do
        [ "$(sql "$db" "$query" 2>/dev/null)" == "$expected" ] && return 0
        sleep 0.5
    done
    return 1
}

# create_connector DATABASE NAME PROFILE_JSON: prints the profile version
create_connector() {
    psql -X -At -v ON_ERROR_STOP=1 -v name="$2" -v profile="$3" -d "$1" \
        <<<"SELECT stocktech_sync.create_connector(:'name', :'profile'::jsonb);"
}

finish() {
    echo "$CHECKS_PASSED passed, $CHECKS_FAILED failed"
    [ "$CHECKS_FAILED" -eq 0 ]
}
