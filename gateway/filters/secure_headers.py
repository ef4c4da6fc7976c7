"""SecureHeaders: add SCG's recommended security headers to responses that lack them.

Route arguments follow SCG: ``disable``/``enable`` list lower-case header names (``enable`` is
how ``permissions-policy`` is opted into), ``permissions-policy`` sets that header's value, and
each header's value may be overridden under its ``SecureHeadersProperties`` name
(``frame-options``/``frameOptions``) or the filter Config name (``frameOptionsHeaderValue``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from gateway.config.args import Args
from gateway.errors import ConfigError
from gateway.exchange import Exchange, Response
from gateway.extension import BuildContext, FilterFactory, GatewayFilter, SyncFilter
from gateway.filters.describe import filter_text
from gateway.filters.header_args import check_header_value


@dataclass(frozen=True, slots=True)
class _Header:
    name: str
    default: str
    # argument names that override the value: kebab property, camel property, Config field
    keys: tuple[str, ...]
    on_by_default: bool = True


_PERMISSIONS_POLICY_DEFAULT = (
    "accelerometer=(), ambient-light-sensor=(), autoplay=(), battery=(), camera=(), "
    "cross-origin-isolated=(), display-capture=(), document-domain=(), encrypted-media=(), "
    "execution-while-not-rendered=(), execution-while-out-of-viewport=(), fullscreen=(), "
    "geolocation=(), gyroscope=(), keyboard-map=(), magnetometer=(), microphone=(), midi=(), "
    "navigation-override=(), payment=(), picture-in-picture=(), publickey-credentials-get=(), "
    "screen-wake-lock=(), sync-xhr=(), usb=(), web-share=(), xr-spatial-tracking=()"
)
_CSP_DEFAULT = (
    "default-src 'self' https:; font-src 'self' https: data:; img-src 'self' https: data:; "
    "object-src 'none'; script-src https:; style-src 'self' https: 'unsafe-inline'"
)

HEADERS: tuple[_Header, ...] = (
    _Header(
        "X-Xss-Protection",
        "1 ; mode=block",
        ("xss-protection-header", "xssProtectionHeader", "xssProtectionHeaderValue"),
    ),
    _Header(
        "Strict-Transport-Security",
        "max-age=631138519",
        (
            "strict-transport-security",
            "strictTransportSecurity",
            "strictTransportSecurityHeaderValue",
        ),
    ),
    _Header(
        "X-Frame-Options", "DENY", ("frame-options", "frameOptions", "frameOptionsHeaderValue")
    ),
    _Header(
        "X-Content-Type-Options",
        "nosniff",
        ("content-type-options", "contentTypeOptions", "contentTypeOptionsHeaderValue"),
    ),
    _Header(
        "Referrer-Policy",
        "no-referrer",
        ("referrer-policy", "referrerPolicy", "referrerPolicyHeaderValue"),
    ),
    _Header(
        "Content-Security-Policy",
        _CSP_DEFAULT,
        ("content-security-policy", "contentSecurityPolicy", "contentSecurityPolicyHeaderValue"),
    ),
    _Header(
        "X-Download-Options",
        "noopen",
        ("download-options", "downloadOptions", "downloadOptionsHeaderValue"),
    ),
    _Header(
        "X-Permitted-Cross-Domain-Policies",
        "none",
        (
            "permitted-cross-domain-policies",
            "permittedCrossDomainPolicies",
            "permittedCrossDomainPoliciesHeaderValue",
        ),
    ),
    _Header(
        "Permissions-Policy",
        _PERMISSIONS_POLICY_DEFAULT,
        ("permissions-policy", "permissionsPolicy", "permissionPolicyHeaderValue"),
        on_by_default=False,
    ),
)
_KNOWN = {header.name.lower() for header in HEADERS}


class SecureHeaders(SyncFilter):
    name = "SecureHeaders"

    def __init__(self, headers: list[tuple[str, str]]) -> None:
        self._headers = tuple(headers)

    def post(self, exchange: Exchange, response: Response) -> None:
        out = response.headers
        for name, value in self._headers:
            # the upstream's own choice wins, as in SCG
            if name not in out:
                out.add(name, value)

    def describe(self) -> str:
        return filter_text(self.name)


def _check_names(names: set[str], fail: Callable[[str], NoReturn]) -> set[str]:
    unknown = sorted(names - _KNOWN)
    if unknown:
        fail(f"unknown header(s) {', '.join(unknown)} (use {', '.join(sorted(_KNOWN))})")
    return names


def _names(args: Args, key: str) -> set[str] | None:
    if not args.has(key):
        return None
    names: list[str] = args.str_list(key, [])
    return _check_names({name.lower() for name in names}, lambda reason: args.fail(key, reason))


def _global(names: tuple[str, ...], which: str) -> set[str]:
    def fail(reason: str) -> NoReturn:
        raise ConfigError(
            f"spring.cloud.gateway.server.webflux.filter.secure-headers.{which}: {reason}"
        )

    return _check_names(set(names), fail)


def _build(args: Args, ctx: BuildContext) -> GatewayFilter:
    settings = ctx.filter_settings
    disabled, enabled = _names(args, "disable"), _names(args, "enable")
    # As SCG: a route that says which headers (enable, disable or permissions-policy) decides
    # alone; otherwise the global filter.secure-headers.enable/disable apply.
    if disabled is None and enabled is None and not args.has("permissions-policy"):
        disabled = _global(settings.secure_headers_disabled, "disable")
        enabled = _global(settings.secure_headers_enabled, "enable")
    disabled, enabled = disabled or set(), enabled or set()
    chosen: list[tuple[str, str]] = []
    for header in HEADERS:
        # The route's value, else the global filter.secure-headers.<property>, else SCG's.
        value = settings.secure_headers.get(header.keys[0], header.default)
        for key in header.keys:
            override: str | None = args.str(key, None)
            if override is not None:
                value = check_header_value(args, key, override)
        lowered = header.name.lower()
        if (header.on_by_default or lowered in enabled) and lowered not in disabled:
            chosen.append((header.name, value))
    args.finish()
    return SecureHeaders(chosen)


FACTORIES: tuple[FilterFactory, ...] = (FilterFactory("SecureHeaders", (), _build),)
