# Throwaway PostgreSQL for tests and benchmarks (issue 16). Source this file, then:
#   pg_start    install Debian's server if absent (root only), initdb + start in a temp dir on
#               127.0.0.1 and a free port, durability off; exports LOYALTYCTL_TEST_PG (a URL)
#   pg_stop     stop it and delete its files (safe to call twice; put it in an EXIT trap)
# As root (CI) the server runs as the `postgres` user via runuser, since initdb refuses root;
# as anyone else it runs as that user. Timings go to stderr as "postgres: initdb 1.8 s".

_pg_bindir() {
  local d
  for d in "$(dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/x)")" \
           $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
    if [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
  done
  return 1
}

_pg_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "postgres: pg_ctl/initdb not found; install PostgreSQL (Debian: apt-get install postgresql)" >&2
    return 1
  fi
  echo "postgres: installing Debian's postgresql package" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
}

_pg_now() { date +%s.%N; }
_pg_secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

pg_start() {
  local bindir port t0 t1 t2
  bindir=$(_pg_bindir) || { _pg_install && bindir=$(_pg_bindir); } || return 1
  PG_AS=()
  if [ "$(id -u)" = 0 ]; then PG_AS=("$(command -v runuser || echo /usr/sbin/runuser)" -u postgres --); fi
  PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/loyaltyctl-pg.XXXXXX")
  PG_BINDIR=$bindir
  [ "$(id -u)" = 0 ] && chown postgres: "$PG_DIR"
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  t0=$(_pg_now)
  # C collation: text sorts by bytes, as SQLite's default BINARY collation does.
  (cd "$PG_DIR" && "${PG_AS[@]}" "$bindir/initdb" -D "$PG_DIR/data" -U postgres -A trust \
      -E UTF8 --locale=C --no-sync >"$PG_DIR/initdb.log" 2>&1) \
    || { cat "$PG_DIR/initdb.log" >&2; return 1; }
  t1=$(_pg_now)
  # A test server: nothing here must survive a crash, so no fsync/WAL safety; small memory.
  (cd "$PG_DIR" && "${PG_AS[@]}" "$bindir/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='$PG_DIR'" \
      -o "-c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      -o "-c shared_buffers=64MB -c max_connections=60" \
      start >/dev/null) \
    || { cat "$PG_DIR/server.log" >&2; return 1; }
  t2=$(_pg_now)
  export LOYALTYCTL_TEST_PG="postgresql://postgres@127.0.0.1:$port/postgres"
  echo "postgres: $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port," \
       "initdb $(_pg_secs "$t0" "$t1") s, start $(_pg_secs "$t1" "$t2") s" >&2
}

pg_stop() {
  [ -n "${PG_DIR:-}" ] || return 0
  if [ -f "$PG_DIR/data/postmaster.pid" ]; then
    # immediate: the data is thrown away anyway, so skip the shutdown checkpoint.
    (cd "$PG_DIR" && "${PG_AS[@]}" "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1) || true
  fi
  rm -rf "$PG_DIR"
  PG_DIR=
}
