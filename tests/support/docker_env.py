"""The machine set-up ``make test-docker`` runs before tests/docker: a Docker engine and a local
base image, with no container registry.

    python -m tests.support.docker_env up     # packages, engine, base image
    python -m tests.support.docker_env down   # stop the engine if ``up`` started it

``up`` installs Debian's docker.io, docker-compose and debootstrap when missing; starts
``dockerd --bridge=none --iptables=false`` when no engine answers (overlay2 first, vfs when
that fails), logging to build/dockerd.log and keeping its pid in build/dockerd.pid; and builds
the base image ``meshgate-base:bookworm`` (debootstrap's minbase with python3 and
python3-venv, imported) once, reusing it while present. Containers of the tests run with
``--network host`` only: this engine has no bridge network.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent.parent
BUILD = ROOT / "build"
PID_FILE = BUILD / "dockerd.pid"
LOG_FILE = BUILD / "dockerd.log"
ROOTFS = BUILD / "base-rootfs"
BASE_IMAGE = "meshgate-base:bookworm"
PACKAGES = {
    "dockerd": "docker.io",
    "docker-compose": "docker-compose",
    "debootstrap": "debootstrap",
}
# Trimmed from the base's root before import: nothing in the image reads them.
TRIM = ("var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info")


def docker() -> str:
    """The client: ``DOCKER`` if set, else the first ``docker`` on PATH."""
    return os.environ.get("DOCKER") or shutil.which("docker") or "docker"


def _run(
    command: list[str],
    *,
    env: dict[str, str] | None = None,
    stdin: IO[bytes] | None = None,
    stdout: int | None = None,
) -> None:
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True, env=env, stdin=stdin, stdout=stdout)


def ensure_packages() -> None:
    missing = [package for tool, package in PACKAGES.items() if shutil.which(tool) is None]
    if not missing:
        return
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "update", "-qq"], env=env)
    _run(["apt-get", "install", "-y", "-qq", *missing], env=env)


def engine_answers() -> bool:
    result = subprocess.run(
        [docker(), "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True
    )
    return result.returncode == 0


def ensure_engine(timeout: float = 60.0) -> None:
    """An engine that answers: the one running, or dockerd started here (pid in PID_FILE)."""
    if engine_answers():
        return
    BUILD.mkdir(exist_ok=True)
    for driver in (None, "vfs"):
        command = ["dockerd", "--bridge=none", "--iptables=false"]
        command += [f"--storage-driver={driver}"] if driver else []
        with LOG_FILE.open("ab") as log:
            log.write(f"--- {' '.join(command)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        PID_FILE.write_text(f"{process.pid}\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            if engine_answers():
                print(f"dockerd {process.pid} running (log: {LOG_FILE})", flush=True)
                return
            time.sleep(0.5)
        _stop(process.pid)
        PID_FILE.unlink(missing_ok=True)
        print(f"dockerd {' '.join(command[1:])} did not come up; see {LOG_FILE}", flush=True)
    tail = "\n".join(LOG_FILE.read_text(errors="replace").splitlines()[-20:])
    raise SystemExit(f"no Docker engine could start here:\n{tail}")


def ensure_base_image() -> None:
    """``meshgate-base:bookworm``: Debian's python3 (3.11) with venv, no pip, from debootstrap."""
    found = subprocess.run([docker(), "image", "inspect", BASE_IMAGE], capture_output=True)
    if found.returncode == 0:
        return
    if ROOTFS.exists():
        shutil.rmtree(ROOTFS)
    _run(
        [
            "debootstrap",
            "--variant=minbase",
            "--include=python3,python3-venv,ca-certificates",
            "bookworm",
            str(ROOTFS),
        ],
        stdout=subprocess.DEVNULL,
    )
    for relative in TRIM:
        target = ROOTFS / relative
        if target.is_dir():
            for child in target.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    tar = subprocess.Popen(["tar", "-C", str(ROOTFS), "-c", "."], stdout=subprocess.PIPE)
    _run([docker(), "import", "-", BASE_IMAGE], stdin=tar.stdout, stdout=subprocess.DEVNULL)
    if tar.wait() != 0:
        raise SystemExit("tar of the base root file system failed")
    shutil.rmtree(ROOTFS)


def _stop(pid: int, timeout: float = 30.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # our child when `up` failed over to another driver
        if not _alive(pid):
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Running: not gone, and not a zombie waiting for a parent (``down`` is not its parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def stop_engine() -> None:
    """Stop the dockerd ``up`` started (none started: nothing to do)."""
    if not PID_FILE.exists():
        return
    pid = int(PID_FILE.read_text())
    _stop(pid)
    PID_FILE.unlink()
    print(f"dockerd {pid} stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.docker_env")
    parser.add_argument("action", choices=["up", "down"])
    args = parser.parse_args(argv)
    if args.action == "down":
        stop_engine()
        return 0
    ensure_packages()
    ensure_engine()
    ensure_base_image()
    return 0


if __name__ == "__main__":
    sys.exit(main())
