"""``parley run`` as a subprocess, and a TCP proxy that can cut a database off.

::

    with RunningParley(env, cwd=tmp_path) as bot:       # waits until "Parley is running"
        status, body = bot.get("/healthz")
        assert bot.stop() == 0                           # SIGTERM, like `docker stop`
    bot.stderr                                           # everything it logged

The server listens on a free port (PARLEY_HTTP_PORT=0); the port is read from its log line.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from tests.cli_harness import _KEEP
from tests.fakes.loopback import LoopThread

_LISTENING = re.compile(r"HTTP server on http://[^:\s]+:(\d+)")
# Loopback only, and no proxy from the environment in the way.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class RunningParley:
    def __init__(self, env: dict[str, str], *, cwd: Path, ready_within: float = 30.0) -> None:
        full = {k: v for k, v in os.environ.items() if k in _KEEP}
        full.update({"PARLEY_HTTP_HOST": "127.0.0.1", "PARLEY_HTTP_PORT": "0"}, **env)
        self._log_path = cwd / "parley-run.log"
        self._log = self._log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"],
            cwd=cwd,
            env=full,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.port = self._wait_ready(ready_within)

    def _wait_ready(self, within: float) -> int:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            text = self.stderr
            found = _LISTENING.search(text)
            if found and "Parley is running" in text:
                return int(found.group(1))
            if self.proc.poll() is not None:
                raise AssertionError(f"parley run exited with {self.proc.returncode}:\n{text}")
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"parley run not ready within {within} s:\n{self.stderr}")

    @property
    def stderr(self) -> str:
        """What the process logged so far (stdout and stderr; `run` prints nothing else)."""
        return self._log_path.read_text(encoding="utf-8", errors="replace")

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
            last = self.get(path)
            if last[0] == status:
                return last[1]
            time.sleep(0.1)
        raise AssertionError(f"GET {path}: wanted {status} within {within} s, last {last}")

    def wait_for_log(self, text: str, within: float = 10.0) -> None:
        deadline = time.monotonic() + within
        while text not in self.stderr:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not logged within {within} s:\n{self.stderr}")
            time.sleep(0.05)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"parley run did not stop within {timeout} s:\n{self.stderr}") from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> RunningParley:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.kill()
        self._log.close()


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``target``, in a thread; :meth:`cut` makes the target
    unreachable (connections reset, new ones refused) and :meth:`restore` brings it back."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._thread = LoopThread("tcp-proxy")
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.restore()

    def restore(self) -> None:
        async def listen() -> None:
            self._server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)
            self.port = self._server.sockets[0].getsockname()[1]

        self._thread.run(listen())

    def cut(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()
                self._server = None
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()

        self._thread.run(close())

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.transport.abort()
                self._writers.discard(dst)

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))

    def close(self) -> None:
        self.cut()
        self._thread.close()
