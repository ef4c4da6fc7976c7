"""The ``meshgate`` command: ``run`` the gateway (the default), run it as a ``sidecar`` (as
``GATEWAY_MODE=sidecar`` does), ``validate`` a route file, or ``explain`` offline which route of
a route file a request would take."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gateway import __version__
from gateway.errors import ConfigError

EXIT_OK = 0
EXIT_INVALID = 2  # the same code argparse uses for a bad command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meshgate",
        description="An API gateway that speaks Spring Cloud Gateway's route language.",
    )
    parser.add_argument("--version", action="version", version=f"meshgate {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser(
        "run", help="run the gateway (the default; settings come from GATEWAY_* variables)"
    )
    commands.add_parser(
        "sidecar",
        help="run as a sidecar in front of GATEWAY_SIDECAR_APP (as GATEWAY_MODE=sidecar does)",
    )
    validate = commands.add_parser(
        "validate", help="check a route file: every route built, every mistake listed"
    )
    validate.add_argument("file", metavar="FILE", help="a YAML or JSON route document")
    explain = commands.add_parser(
        "explain",
        help="which route, filters and instance a request would get from a route file "
        "(offline: static services only, nothing is sent)",
    )
    explain.add_argument("file", metavar="FILE", help="a YAML or JSON route document")
    explain.add_argument("method", metavar="METHOD", help="GET, POST, ...")
    explain.add_argument("url", metavar="URL", help="/path?query or http://host/path?query")
    explain.add_argument(
        "-H", "--header", action="append", default=[], metavar="'NAME: VALUE'", help="a header"
    )
    explain.add_argument(
        "-b", "--cookie", action="append", default=[], metavar="NAME=VALUE", help="a cookie"
    )
    explain.add_argument(
        "--remote-address", default="127.0.0.1", metavar="IP", help="the client's address"
    )
    explain.add_argument("--json", action="store_true", help="print the explain API's JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "validate":
        return _validate(args.file)
    if args.command == "explain":
        return _explain(args)
    _prepare_metrics()
    # Imported here: running pulls in the whole server, which validating does not need.
    from gateway.process import main_run

    if args.command == "sidecar":
        return main_run(mode="sidecar")
    return main_run()


def _prepare_metrics() -> None:
    """Several workers share one metrics view through prometheus-client's multiprocess mode,
    which must be chosen before prometheus-client is imported."""
    from gateway.observability import multiprocess
    from gateway.settings import load_settings

    try:
        workers = load_settings().workers
    except ConfigError:
        return  # main_run reports it
    if workers > 1:
        multiprocess.prepare()


def _validate(path: str) -> int:
    from gateway import plugins
    from gateway.config.errors import ConfigErrors
    from gateway.routing.validate import service_warnings, validate_file

    # The same factories the gateway would run with: a route naming a plugin's filter is
    # valid only where that plugin is installed, and a broken plugin fails here as at start-up.
    try:
        factories = plugins.factories()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_INVALID
    try:
        config, routes = validate_file(path, factories.predicates, factories.filters)
    except ConfigErrors as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        print(f"{path}: {len(exc.errors)} error(s)", file=sys.stderr)
        return EXIT_INVALID
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_INVALID
    for warning in service_warnings(config):
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{path}: OK ({len(routes)} routes, {len(config.services)} services)")
    return EXIT_OK


EXIT_NO_ROUTE = 1  # explained, but no route matches (as grep says "not found")


def _explain(args: argparse.Namespace) -> int:
    """The route file's table built as the gateway builds it, with the static services it
    names (no Consul, no listener, no metrics), and one request explained against it."""
    import json

    from gateway import plugins
    from gateway.app import Gateway
    from gateway.config.errors import ConfigErrors
    from gateway.explain import (
        ExplainInputError,
        ExplainRequest,
        explain_text,
        parse_cookie,
        parse_header,
    )
    from gateway.settings import load_settings

    try:
        described = ExplainRequest(
            method=args.method,
            url=args.url,
            headers=tuple(parse_header(text) for text in args.header),
            cookies=tuple(parse_cookie(text, "NAME=VALUE") for text in args.cookie),
            remote_address=args.remote_address,
        )
        settings = load_settings(
            config=args.file, discovery="static", metrics=False, access_log=False
        )
        gateway = Gateway(settings, plugins.factories())
        gateway.load()
        explained = gateway.explainer.explain(described)
    except ConfigErrors as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        return EXIT_INVALID
    except (ConfigError, ExplainInputError) as exc:
        print(exc, file=sys.stderr)
        return EXIT_INVALID
    print(json.dumps(explained, indent=2) if args.json else explain_text(explained))
    return EXIT_OK if explained["route"] is not None else EXIT_NO_ROUTE
