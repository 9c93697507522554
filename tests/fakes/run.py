"""``parley run`` as a child process, for the tests and the benchmark that need a real one.

::

    with ParleyProcess(tmp_path, env, name="first") as parley:   # starts it
        parley.wait_ready()               # its log says where it listens and "Parley is running"
        parley.wait_socket(fs)            # or: Socket Mode connected to the fake Slack
        status, body, ctype = parley.get("/healthz")
        parley.kill()                     # SIGKILL: no clean-up at all
        assert parley.stop() == 0         # SIGTERM, then SIGKILL if it will not go
    parley.logs                           # everything it wrote (stdout and stderr)

``ParleyProcess(...).start()`` starts one outside a ``with`` (then ``close()`` it in a
``finally``). The environment is the test's ``env`` on top of a minimal one (``PATH``, ``HOME``, locale…): no
proxy, no secret from the outer shell. ``PARLEY_HTTP_HOST`` is 127.0.0.1 and
``PARLEY_HTTP_PORT`` 0 (a free port, read back from the log) unless ``env`` says otherwise. The
process is always ended when the block leaves (or at interpreter exit, for one left running).
"""

from __future__ import annotations

import atexit
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self, TypeVar

if TYPE_CHECKING:
    from tests.fakes.slack import FakeSlack

T = TypeVar("T")

#: What a child inherits from the test's own environment; everything else comes from ``env``.
KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR", "USER")
READY_LINE = "Parley is running"
_LISTENING = re.compile(r"HTTP server on http://[^:\s]+:(\d+)")
# Loopback only, and no proxy from the environment in the way.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_LIVE: set[ParleyProcess] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(predicate: Callable[[], T], within: float = 10.0, what: str = "condition") -> T:
    """Poll ``predicate`` until it is truthy; its value, or ``TimeoutError`` naming ``what``."""
    end = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise TimeoutError(f"{what} not met within {within}s")
        time.sleep(0.02)


class ParleyProcess:
    """One ``python -m bot run`` in ``cwd``; its output goes to ``cwd / f"{name}.log"``."""

    def __init__(self, cwd: Path, env: Mapping[str, str], name: str = "parley") -> None:
        self.cwd = cwd
        self.name = name
        self.env = {k: v for k, v in os.environ.items() if k in KEEP}
        self.env.update({"PARLEY_HTTP_HOST": "127.0.0.1", "PARLEY_HTTP_PORT": "0"})
        self.env.update(env)
        self.log_path = cwd / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Start it (again, after it ended: a restart appends to the same log)."""
        if self.alive():
            raise RuntimeError(f"{self.name} is already running")
        self._port = None
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "run"],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _LIVE.add(self)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL and reap: what a crash or ``kill -9`` leaves behind."""
        if self.alive():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (like ``docker stop``) and its exit status; SIGKILL and an error if it hangs."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not stop within {timeout} s:\n{self.logs}") from None

    def terminate(self, within: float = 30.0) -> int:
        """:meth:`stop` under the name ``subprocess`` uses."""
        return self.stop(within)

    def wait(self, timeout: float = 30.0) -> int:
        """Its exit status, once it ends by itself (after a signal already sent)."""
        assert self.proc is not None
        return self.proc.wait(timeout)

    def close(self) -> None:
        """End it if it still runs (SIGKILL): the clean-up every test needs whatever happened."""
        self.kill()
        _LIVE.discard(self)

    def __enter__(self) -> Self:
        return self if self.proc is not None else self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ what it says

    @property
    def logs(self) -> str:
        """Everything it wrote so far (``parley run`` writes only its log lines)."""
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    stderr = logs

    def _check_alive(self) -> None:
        if not self.alive():
            code = self.proc.returncode if self.proc is not None else None
            raise AssertionError(f"{self.name} exited early ({code}):\n{self.logs}")

    def wait_for_log(self, text: str, within: float = 10.0) -> None:
        deadline = time.monotonic() + within
        while text not in self.logs:
            self._check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not logged by {self.name} within {within} s:\n{self.logs}")
            time.sleep(0.05)

    def wait_ready(self, within: float = 30.0) -> int:
        """Until its log says where it listens and that it runs; the HTTP port."""
        self.wait_for_log(READY_LINE, within)
        found = _LISTENING.findall(self.logs)
        if not found:
            raise AssertionError(f"{self.name} never said where it listens:\n{self.logs}")
        self._port = int(found[-1])
        return self._port

    @property
    def port(self) -> int:
        """The HTTP port: the one ``env`` fixed, else the one it logged (waits for it)."""
        if self._port is None:
            fixed = self.env.get("PARLEY_HTTP_PORT", "0")
            self._port = int(fixed) if fixed != "0" else self.wait_ready()
        return self._port

    def wait_healthy(self, within: float = 30.0) -> None:
        """Until ``GET /healthz`` answers 200 (database and every adapter connected)."""
        self.wait_for_status("/healthz", 200, within)

    def wait_socket(self, fs: FakeSlack, connects: int = 1, within: float = 20.0) -> None:
        """Until the fake Slack has accepted ``connects`` Socket Mode connections, one open."""

        def ready() -> bool:
            self._check_alive()
            return fs.socket_connect_count >= connects and fs.socket_connections > 0

        wait_until(ready, within, "Socket Mode connection")
        # Recovery and the listeners are set up right after the connection.
        time.sleep(0.2)

    def wait_http(self, port: int | None = None, within: float = 20.0) -> None:
        """Until ``/healthz`` answers 200 (``port``: the one ``env`` gave, for older callers)."""
        if port is not None:
            self._port = port
        self.wait_healthy(within)

    # ------------------------------------------------------------------ HTTP

    def get(self, path: str, timeout: float = 10.0) -> tuple[int, bytes, str]:
        """(status, body, content type) of ``GET path``; error statuses are returned, not raised."""
        url = f"http://127.0.0.1:{self.port}{path}"
        try:
            with _OPENER.open(url, timeout=timeout) as response:
                return response.status, response.read(), response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), exc.headers.get("Content-Type", "")

    def wait_for_status(self, path: str, status: int, within: float = 15.0) -> bytes:
        deadline = time.monotonic() + within
        last: tuple[int, bytes, str] | None = None
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                last = self.get(path, timeout=2)
            except OSError:  # not listening yet
                last = None
            if last is not None and last[0] == status:
                return last[1]
            time.sleep(0.1)
        raise AssertionError(f"GET {path} on {self.name}: wanted {status} within {within} s, last {last}")


@atexit.register
def _end_the_forgotten() -> None:
    for process in list(_LIVE):
        process.close()
