# lib.sh
#    Shell functions shared by scripts/test.sh and scripts/demo.sh: package
#    installation, build and install, and a throwaway PostgreSQL cluster.
#
# The cluster runs as the postgres operating system user (PostgreSQL refuses
# to run as root) in a fresh directory under /tmp, listens on a Unix socket
# in that directory and on 127.0.0.1 only, and preloads the extension.

PG_MAJOR=${PG_MAJOR:-15}
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '== %s\n' "$*" >&2; }

# Install the Debian packages the build and the tests need, as root.
install_packages() {
    local packages="postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR \
        postgresql-$PG_MAJOR-pgtap libtap-parser-sourcehandler-pgtap-perl \
        libcurl4-openssl-dev nlohmann-json3-dev libgtest-dev cmake g++ make \
        libipc-run-perl curl ca-certificates jq"
    local missing=""
    for p in $packages; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
    done
    # Node.js may come from another source than Debian (with npm bundled),
    # so look for the commands, not the packages.
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        missing="$missing nodejs npm"
    fi
    if [ -z "$missing" ]; then
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        log "missing packages:$missing (run as root to install them)"
        return 1
    fi
    log "installing packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

# Build the extension and install it into the PostgreSQL installation.
build_and_install() {
    log "building and installing the extension"
    make -C "$REPO_ROOT" -s -j2 PG_CONFIG="$PG_BIN/pg_config" >/dev/null
    make -C "$REPO_ROOT" -s install PG_CONFIG="$PG_BIN/pg_config" >/dev/null
}

# Start a throwaway cluster; sets PGHOST, PGPORT, PGUSER and CLUSTER_DIR.
# EXTRA_PG_CONF, if set, is appended to postgresql.conf.
start_cluster() {
    local port=${1:-54329}
    # A port taken by another server on this machine: use the next free one.
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        log "port $port is in use, trying $((port + 1))"
        port=$((port + 1))
    done
    CLUSTER_DIR=$(mktemp -d /tmp/stocktech_sync_pg.XXXXXX)
    chown postgres:postgres "$CLUSTER_DIR"
    chmod 700 "$CLUSTER_DIR"
    local run_as=()
    if [ "$(id -u)" = 0 ]; then
        run_as=(runuser -u postgres --)
    fi
    "${run_as[@]}" "$PG_BIN/initdb" -D "$CLUSTER_DIR/data" -U postgres -A trust \
        --no-sync -E UTF8 --locale=C >"$CLUSTER_DIR/initdb.log" 2>&1
    cat >>"$CLUSTER_DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$CLUSTER_DIR'
shared_preload_libraries = 'stocktech_sync'
max_worker_processes = 16
fsync = off
log_line_prefix = '%m [%p] %q%a '
max_prepared_transactions = 10
CONF
    if [ -n "${EXTRA_PG_CONF:-}" ]; then
        printf '%s\n' "$EXTRA_PG_CONF" >>"$CLUSTER_DIR/data/postgresql.conf"
    fi
    "${run_as[@]}" "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" \
        -w -t 60 start >/dev/null
    export PGHOST=$CLUSTER_DIR PGPORT=$port PGUSER=postgres
    log "PostgreSQL $PG_MAJOR running on port $port (socket and log in $CLUSTER_DIR)"
}

# Stop the throwaway cluster and remove its directory.
stop_cluster() {
    [ -n "${CLUSTER_DIR:-}" ] && [ -d "$CLUSTER_DIR/data" ] || return 0
    local run_as=()
    if [ "$(id -u)" = 0 ]; then
        run_as=(runuser -u postgres --)
    fi
    "${run_as[@]}" "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    if [ "${KEEP_CLUSTER:-0}" != 1 ]; then
        rm -rf "$CLUSTER_DIR"
    fi
}

# Start the CAP test ERP on a port; ERP_PAGE_SIZE sets its page size.
start_erp() {
    local port=$1
    "$REPO_ROOT/test/erp/start.sh" "$port" >/dev/null
}

# Stop the CAP test ERP started on a port.
stop_erp() {
    local port=$1
    "$REPO_ROOT/test/erp/stop.sh" "$port" >/dev/null 2>&1 || true
}

# A connector profile from connectors/ pointed at a local service root, with
# authentication off and without the custom query options of a real system.
local_profile() {
    local file=$1 service_root=$2
    jq -c --arg root "$service_root" \
        '. + {service_root: $root, auth: {type: "none"}} | del(.query)' \
        "$REPO_ROOT/connectors/$file"
}
