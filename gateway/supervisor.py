"""``GATEWAY_WORKERS=N``: N forked worker processes, each with its own event loop, sharing the
proxy port through SO_REUSEPORT (the kernel spreads connections across them).

The supervisor owns no sockets and no loop. It forwards SIGTERM/SIGINT/SIGHUP to every worker,
restarts a worker that dies unexpectedly (with backoff, so a crash loop doesn't spin), and exits
once all workers have exited after a stop signal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable

from gateway import plugins
from gateway.errors import ConfigError
from gateway.observability import multiprocess
from gateway.plugins import Factories
from gateway.routing.validate import validate_file
from gateway.settings import Settings

log = logging.getLogger("meshgate.supervisor")


def _spawn(index: int, worker: Callable[[int], int]) -> int:
    pid = os.fork()
    if pid == 0:  # child
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        code = 1
        try:
            code = worker(index)
        except BaseException:
            logging.getLogger("meshgate").exception("worker %d crashed", index)
        finally:
            os._exit(code)
    return pid


def supervise(
    settings: Settings, worker: Callable[[int], int], *, factories: Factories | None = None
) -> int:
    """``factories``: the ones the workers run with (discovered here when not given)."""
    if settings.port == 0:
        print("meshgate: GATEWAY_WORKERS > 1 needs a fixed GATEWAY_PORT", file=sys.stderr)
        return 2
    try:  # fail fast in one place instead of N workers failing at once
        if factories is None:
            factories = plugins.factories()
        if settings.config:
            validate_file(settings.config, factories.predicates, factories.filters)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    stopping = False
    pending: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        if signum in (signal.SIGTERM, signal.SIGINT):
            stopping = True
        pending.append(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    workers: dict[int, int] = {}  # pid -> index
    restarts: dict[int, list[float]] = {}
    for index in range(settings.workers):
        workers[_spawn(index, worker)] = index
    log.info("supervisor %d started %d workers", os.getpid(), settings.workers)
    exit_code = 0
    while workers:
        while pending:
            signum = pending.pop(0)
            for pid in list(workers):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signum)
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            time.sleep(0.05)
            continue
        if pid not in workers:
            continue
        index = workers.pop(pid)
        multiprocess.worker_exited(pid)
        code = os.waitstatus_to_exitcode(status)
        if stopping:
            continue
        if code == 2:
            # Configuration error (e.g. a reload broke the file): restarting won't help.
            log.error("worker %d exited with a configuration error; stopping", index)
            exit_code = 2
            stopping = True
            pending.append(signal.SIGTERM)
            continue
        recent = [t for t in restarts.get(index, []) if time.monotonic() - t < 60]
        delay = min(0.1 * 2 ** len(recent), 5.0)
        log.error("worker %d (pid %d) exited with %d; restarting in %.1fs", index, pid, code, delay)
        time.sleep(delay)
        restarts[index] = [*recent, time.monotonic()]
        workers[_spawn(index, worker)] = index
    multiprocess.cleanup()
    return exit_code
