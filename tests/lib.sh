# Shell functions shared by tests/run and tests/bench-postgres (sourced,
# not run): installing a Debian package, and a throw-away PostgreSQL cluster.

sudo_cmd=""
if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
apt_updated=""
apt_install() {
    if [ -z "$apt_updated" ]; then
        $sudo_cmd apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "$@" >/dev/null
}

# start_postgres DIR EXTRA_SERVER_OPTIONS: a throw-away cluster under DIR,
# as an unprivileged user (initdb and postgres refuse root: as root, the
# system user `lienthong-test`, made if missing), listening on 127.0.0.1 on a
# free port and on a Unix socket under /tmp, with trust authentication. It
# sets pg_bin, as_pg and pg_port and exports LIENTHONG_TEST_POSTGRES (its
# URL); the cluster is stopped and removed when the calling script ends,
# however it ends. Debian's `postgresql` is installed if no server's
# binaries are under /usr/lib/postgresql.
start_postgres() {
    pg_dir="$1"
    local extra="$2"
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
        echo "== installing postgresql (Debian package)"
        apt_install postgresql
        pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    fi
    as_pg=()
    if [ "$(id -u)" = 0 ]; then
        if ! id lienthong-test >/dev/null 2>&1; then
            useradd --system --no-create-home --shell /usr/sbin/nologin lienthong-test
        fi
        as_pg=(runuser -u lienthong-test --)
    fi
    pg_socket=$(mktemp -d /tmp/lienthong-test-pg.XXXXXX)
    trap stop_postgres EXIT
    stop_postgres
    mkdir -p "$pg_dir" "$pg_socket"
    if [ "$(id -u)" = 0 ]; then chown lienthong-test "$pg_dir" "$pg_socket"; fi
    pg_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    echo "== a throw-away PostgreSQL cluster on 127.0.0.1:$pg_port"
    # --no-sync: only initdb's own files; the server runs with fsync on, as
    # the engine demands.
    "${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U lienthong --auth=trust --no-sync \
        --no-instructions >"$pg_dir/initdb.log" 2>&1 || { cat "$pg_dir/initdb.log"; exit 1; }
    "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -s \
        -o "-c listen_addresses=127.0.0.1 -p $pg_port -c unix_socket_directories=$pg_socket $extra" \
        start || { cat "$pg_dir/server.log"; exit 1; }
    export LIENTHONG_TEST_POSTGRES="postgres://lienthong@127.0.0.1:$pg_port/postgres"
}

stop_postgres() {
    "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$pg_dir" "$pg_socket"
}
