"""The process runner: settings and plugins loaded once, the event loop, signals, GC tuning,
and one worker or a supervisor of several. ``app.Gateway`` only wires; this runs it."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from gateway.app import Gateway, format_config_error
from gateway.config.loader import load_config
from gateway.errors import ConfigError
from gateway.observability.logs import configure_logging
from gateway.plugins import Factories, factories
from gateway.settings import Settings, load_settings, with_document

log = logging.getLogger("meshgate")


async def serve(
    settings: Settings, found: Factories, *, worker: int = 0, reuse_port: bool = False
) -> int:
    """Run one worker until SIGTERM/SIGINT; SIGHUP reloads its routes and TLS files. Exit
    code 2 when the configuration is invalid."""
    on_refresh: Callable[[], None] | None = None
    if reuse_port and settings.workers > 1:
        # Tell the supervisor, which tells every worker, so all of them reload together.
        def on_refresh() -> None:
            os.kill(os.getppid(), signal.SIGHUP)

    try:
        gateway = Gateway(settings, found, worker=worker, on_refresh=on_refresh)
        gateway.load()
    except ConfigError as exc:
        print(format_config_error(exc), file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    # A SIGHUP is the supervisor's (or the operator's) own reload: no echo back to it. It
    # re-reads the TLS files too (certificates are rotated without a restart).
    def reload() -> None:
        gateway.reload_tls()
        gateway.refresh(notify=False)

    loop.add_signal_handler(signal.SIGHUP, reload)
    await gateway.start(reuse_port=reuse_port, management=worker == 0)
    tune_gc()
    await stop.wait()
    log.info("shutting down worker %d", worker)
    await gateway.stop()
    return 0


def with_document_settings(settings: Settings, found: Factories) -> Settings:
    """The route file's Spring start-up settings (server.port, httpclient timeouts...) under
    the environment's; read before anything binds a port. An invalid file stops here, with
    every error, as it would a moment later in ``Gateway.load``."""
    if settings.config is None:
        return settings
    config = load_config(settings.config, found.predicates, found.filters)
    return with_document(settings, config.spring)


def raise_open_files_limit() -> None:
    """A gateway holds two sockets per proxied connection: take the hard limit on open files
    as the soft one (as nginx's worker_rlimit_nofile would), instead of the shell's 1024."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on this platform
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def tune_gc() -> None:
    """Everything loaded at start-up (modules, route tables) moves to the permanent
    generation, and young collections run every 50,000 allocations instead of 700: the
    request path allocates many short-lived objects and almost no cycles, so default GC
    spent ~20 % of a busy worker's CPU re-scanning live connections for nothing."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _run_loop(settings: Settings, main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    if settings.event_loop == "uvloop":
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is a dependency on supported platforms
            log.warning("uvloop is not installed; using the asyncio event loop")
        else:
            return int(uvloop.run(main()))
    return int(asyncio.run(main()))


def main_run(*, mode: str | None = None) -> int:
    """``mode``: the command line's choice (``meshgate sidecar``), over GATEWAY_MODE."""
    try:
        settings = load_settings(**({"mode": mode} if mode is not None else {}))
    except ConfigError as exc:
        print(f"meshgate: invalid settings: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        found = factories()
        settings = with_document_settings(settings, found)
    except ConfigError as exc:
        print(format_config_error(exc), file=sys.stderr)
        return 2
    raise_open_files_limit()
    if settings.workers == 1:
        return _run_loop(settings, lambda: serve(settings, found))
    from gateway.supervisor import supervise

    return supervise(
        settings,
        lambda index: _run_loop(
            settings, lambda: serve(settings, found, worker=index, reuse_port=True)
        ),
        factories=found,
    )
