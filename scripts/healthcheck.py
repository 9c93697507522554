"""The container's HEALTHCHECK: exit 0 when Parley's ``GET /healthz`` answers 200, 1 otherwise.

Stdlib only, because slim images have no curl. It asks the port ``parley run`` listens on
(PARLEY_HTTP_PORT), on loopback when the server listens on every interface.
"""

import os
import sys
import urllib.request

host = os.environ.get("PARLEY_HTTP_HOST", "127.0.0.1")
if host in ("", "0.0.0.0", "::"):
    host = "127.0.0.1"
if ":" in host:
    host = f"[{host}]"
url = f"http://{host}:{os.environ.get('PARLEY_HTTP_PORT', '8080')}/healthz"

# No proxies: an HTTP(S)_PROXY in the container's environment must not catch a loopback probe.
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open(url, timeout=4) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as exc:  # 503 (HTTPError), refused, timeout: all mean unhealthy
    print(f"healthcheck: {url}: {exc}", file=sys.stderr)
    sys.exit(1)
