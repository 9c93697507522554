# Sourced by .ci/run: start a throwaway PostgreSQL on loopback and set PARLEY_TEST_POSTGRES_URL.
# Installs Debian's package when the server binaries are missing. Returns non-zero on failure.
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
  echo "CI: installing PostgreSQL (Debian package)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq postgresql >/dev/null || return 1
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi
pg_dir=$(mktemp -d /tmp/parley-pg.XXXXXX)
pg_port=${PARLEY_PG_PORT:-54329}
as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$1"; else sh -c "$1"; fi; }
[ "$(id -u)" = 0 ] && chown postgres:postgres "$pg_dir"
as_pg "$pg_bin/initdb -D $pg_dir/data -U postgres --auth=trust -E UTF8 >$pg_dir/initdb.log 2>&1" || return 1
as_pg "$pg_bin/pg_ctl -D $pg_dir/data -l $pg_dir/pg.log -o '-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_dir -c fsync=off' -w start >/dev/null" || return 1
# Stop the server when CI ends, pass or fail.
trap 'as_pg "$pg_bin/pg_ctl -D $pg_dir/data -m fast stop >/dev/null 2>&1"; rm -rf "$pg_dir"' EXIT
PARLEY_TEST_POSTGRES_URL="postgresql+asyncpg://postgres@127.0.0.1:$pg_port/postgres"
echo "CI: PostgreSQL on 127.0.0.1:$pg_port" >&2
