"""A real Spring Cloud Gateway 5.0.4 (tests/peers/scg, built by ``make scg-test-peer``) for the
differential tests: started on free ports with a test's own application.yml, waited for, stopped.

SCG takes ~5 s to start on two cores, so a test module starts one for all of its routes (see
tests/integration/test_scg_differential.py for the module-scoped fixture pattern).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SCG_JAR = ROOT / "tests" / "peers" / "scg" / "target" / "scg-test-peer.jar"

# Read before the test's own file (the later file wins), so a test may turn logging back up.
# The proxy and management ports go on the command line instead: they must win over the file.
_DEFAULTS = """\
spring.main.banner-mode: "off"
logging.level.root: WARN
"""


def scg_unavailable() -> str | None:
    """Why the SCG peer can't run here, or None when it can."""
    if shutil.which("java") is None:
        return "no java on PATH (the SCG differential tests need a JDK 17+)"
    if not SCG_JAR.is_file():
        return f"no SCG test peer at {SCG_JAR.relative_to(ROOT)}: run `make scg-test-peer` (Maven)"
    return None


@dataclass
class ScgPeer:
    process: subprocess.Popen[bytes]
    port: int
    management_port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM (SCG exits in well under a second), then SIGKILL if it lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def start_scg(config: str, work_dir: Path, *, timeout: float = 60.0) -> ScgPeer:
    """Start SCG with ``config`` (an application.yml's text) and wait until its
    ``/actuator/health`` answers 200 on the management port. Raises RuntimeError with SCG's log
    when it exits or does not come up within ``timeout`` seconds."""
    work_dir.mkdir(parents=True, exist_ok=True)
    defaults = work_dir / "scg-defaults.yml"
    defaults.write_text(_DEFAULTS)
    application = work_dir / "application.yml"
    application.write_text(config)
    port, management_port = free_port(), free_port()
    log_path = work_dir / "scg.log"
    command = [
        "java",
        # C1 only: startup in ~4.5 s instead of ~8 s; a test peer never runs long enough for C2.
        "-XX:TieredStopAtLevel=1",
        "-jar",
        str(SCG_JAR),
        f"--spring.config.location=file:{defaults},file:{application}",
        f"--server.port={port}",
        "--server.address=127.0.0.1",
        # A port of its own, so a Path=/** route can neither shadow nor be shadowed by /actuator.
        f"--management.server.port={management_port}",
        "--management.server.address=127.0.0.1",
    ]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=work_dir,
        )
    peer = ScgPeer(process, port, management_port, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"SCG exited with {process.returncode}:\n{peer.log()}")
        if _healthy(peer):
            return peer
        time.sleep(0.1)
    peer.stop()
    raise RuntimeError(f"SCG did not become healthy within {timeout:.0f} s:\n{peer.log()}")


def _healthy(peer: ScgPeer) -> bool:
    try:
        with urllib.request.urlopen(f"{peer.management_url}/actuator/health", timeout=1) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False
