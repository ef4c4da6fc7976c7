"""A real ``redis-server`` for the rate-limiter tests: on a free 127.0.0.1 port, in a temporary
directory, persisting nothing (``--save "" --appendonly no``), stopped by its pid.

``kill``, ``restart`` (the same port, so clients reconnect where they were), ``pause`` and
``resume`` (SIGSTOP/SIGCONT: a Redis that accepts connections and never answers) are how the
tests make it fail. Debian's ``redis-server`` is installed by ``make redis`` (which ``make test``
runs); ``REDIS_SERVER`` names another binary.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import pytest

from tests.support.ports import free_port


def redis_binary() -> str:
    found = os.environ.get("REDIS_SERVER") or shutil.which("redis-server")
    if not found:
        raise RuntimeError(
            "no redis-server on PATH: `make redis` installs Debian's (make test runs it)"
        )
    return found


class RedisServer:
    def __init__(self, binary: str | None = None, *, startup_timeout: float = 10.0) -> None:
        self._binary = binary or redis_binary()
        self._dir = tempfile.TemporaryDirectory(prefix="meshgate-redis-")
        self.port = free_port()
        self.log_path = Path(self._dir.name) / "redis.log"
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        return [
            self._binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            self._dir.name,
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ]

    def start(self) -> None:
        if self.running:
            raise RuntimeError(f"redis-server on port {self.port} is already running")
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                self.stop()
                raise RuntimeError(f"redis-server exited with {code}:\n{self.log()}")
            if self.ping():
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not answer:\n{self.log()}")

    def ping(self, timeout: float = 0.5) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def command_line(self, *words: str) -> bytes:
        """One command over a raw connection (tests' own looks at Redis), its raw reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            parts = [f"*{len(words)}\r\n".encode()]
            for word in words:
                data = word.encode()
                parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
            sock.sendall(b"".join(parts))
            return sock.recv(65536)

    def kill(self) -> None:
        """Gone at once (SIGKILL), as a crashed Redis is: connections reset, the port closed."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(5)
        self._close_log()
        self._process = None

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a paused server can't act on SIGTERM
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self._close_log()

    def restart(self) -> None:
        """Back on the same port (and empty: nothing is persisted)."""
        self.stop()
        self.start()

    def pause(self) -> None:
        """SIGSTOP: the kernel still accepts connections, nothing answers."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh, empty Redis per test (it starts in a few milliseconds). A missing binary fails
    the test instead of skipping it: skipped Redis tests would read as green."""
    try:
        server = RedisServer()
        server.start()
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield server
    finally:
        server.close()
