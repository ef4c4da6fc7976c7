"""Mirror: a copy of the route's requests goes to a shadow, whose answer is discarded or, with
``compare: true``, compared with the primary's (meshgate's own; SCG has no such filter —
Envoy's ``request_mirror_policies`` and Twitter's Diffy are the anchors).

    filters:
      - Mirror=lb://orders-v2, 50          # URI[, PERCENT]; PERCENT 0-100, default 100
      - name: Mirror
        args:
          uri: http://orders-shadow:8080
          percent: 100
          compare: true
          ignore-headers: [X-Served-By]
          ignore-json-paths: ["$.timestamp", "$.items[*].id"]

The copy is the request as the primary got it: method, path and query after every one of the
route's filters (the copy is taken once the primary has answered, wherever Mirror is listed),
its header fields (``X-Mirror: true`` added, ``Host`` made a shadow's: ``orders:8080`` ->
``orders-shadow:8080``), its body. The answer compared is the one the filters listed *after*
Mirror hand back (they wrap the rest of the chain inside it): so list Mirror after the filters
that edit responses (their edits then reach the client only, as the shadow's answer gets none)
and before Retry and CircuitBreaker (one copy per client request, compared with the answer
finally chosen; listed after Retry, every attempt is mirrored). The machinery, and every bound
on it, is in ``gateway.mirror``.
"""

from __future__ import annotations

from gateway.config.args import Args
from gateway.exchange import Exchange, Handler, Response
from gateway.extension import BuildContext, FilterFactory, GatewayFilter, WrappingFilter
from gateway.filters.describe import filter_text
from gateway.filters.header_args import check_header_name
from gateway.mirror.compare import CompareSpec
from gateway.mirror.contract import MirrorChannel
from gateway.mirror.jsonpath import JsonPath, parse
from gateway.mirror.spec import MirrorSpec, parse_mirror_uri


class Mirror(WrappingFilter):
    name = "Mirror"

    def __init__(self, spec: MirrorSpec, channel: MirrorChannel | None) -> None:
        """``channel`` None: the file is only being validated (nothing is sent then)."""
        self.spec = spec
        self._channel = channel
        if spec.uri.service is not None:
            self.services = (spec.uri.service,)  # discovery watches the shadow service too

    def describe(self) -> str:
        spec = self.spec
        fields: list[tuple[str, object]] = [
            ("uri", spec.uri.raw),
            ("percent", spec.percent),
            ("compare", spec.compare is not None),
        ]
        if spec.compare is not None:
            fields.append(
                ("ignoreHeaders", sorted(h.decode() for h in spec.compare.ignore_headers))
            )
            fields.append(("ignoreJsonPaths", [p.text for p in spec.compare.ignore_paths]))
        return filter_text(self.name, *fields)

    def wrap(self, inner: Handler) -> Handler:
        channel = self._channel
        if channel is None:
            return inner
        handle = channel.handle

        async def mirror(exchange: Exchange) -> Response:
            return await handle(inner, exchange)

        return mirror


def _percent(args: Args) -> float:
    percent: float = args.float("percent", 100.0)
    if not 0.0 <= percent <= 100.0:  # NaN fails this too
        args.fail("percent", f"must be between 0 and 100, got {args.raw('percent')!r}")
    return percent


def _ignored_headers(args: Args) -> frozenset[bytes]:
    names: list[str] = args.str_list("ignore-headers", [])
    for name in names:
        check_header_name(args, "ignore-headers", name)
    return frozenset(name.lower().encode("latin-1") for name in names)


def _ignored_paths(args: Args) -> tuple[JsonPath, ...]:
    texts: list[str] = args.str_list("ignore-json-paths", [])
    paths: list[JsonPath] = []
    for text in texts:
        try:
            paths.append(parse(text))
        except ValueError as exc:
            args.fail("ignore-json-paths", str(exc))
    return tuple(paths)


def _build(args: Args, ctx: BuildContext) -> GatewayFilter:
    try:
        uri = parse_mirror_uri(args.str("uri"))
    except ValueError as exc:
        args.fail("uri", str(exc))
    percent = _percent(args)
    comparing: bool = args.bool("compare", False)
    headers = _ignored_headers(args)
    paths = _ignored_paths(args)
    if not comparing:
        for name, given in (("ignore-headers", headers), ("ignore-json-paths", paths)):
            if given:
                args.fail(name, "applies only with compare: true")
    spec = MirrorSpec(uri, percent, CompareSpec(headers, paths) if comparing else None)
    channel = ctx.mirror.channel(ctx.route_id, spec, ctx.rng) if ctx.mirror is not None else None
    return Mirror(spec, channel)


FACTORIES: tuple[FilterFactory, ...] = (FilterFactory("Mirror", ("uri", "percent"), _build),)
