"""SetRequestUri and RequestHeaderToRequestUri on their own: the URL each names for a request,
judged as SCG 5.0.4 judges it (``java.net.URI``, and ``java.net.URL`` for the header), and the
located errors for templates that could never work. The cases marked "jshell" were checked
against Java 17's URI/URL; the others against the running SCG 5.0.4 jar."""

from __future__ import annotations

import pytest

from gateway.errors import ConfigError
from gateway.filters.catalog import builtin_filters
from gateway.filters.request_uri import (
    ChangeRequestUri,
    RequestUrl,
    SetRequestUri,
    parse_request_url,
)
from gateway.filters.template import compile_template
from gateway.predicates.catalog import builtin_predicates
from gateway.routing.validate import validate_text
from tests.unit.filters.conftest import MakeExchange, build_filter


def retarget(name: str, shortcut: str) -> ChangeRequestUri:
    built = build_filter(name, shortcut)
    assert isinstance(built, ChangeRequestUri)
    return built


# -- java.net.URI's reading --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "scheme", "host", "port", "target"),
    [
        ("http://h", "http", "h", 0, "/"),
        ("http://h:8080/a/b?x=1&y=%20", "http", "h", 8080, "/a/b?x=1&y=%20"),
        ("HTTP://H/x", "http", "H", 0, "/x"),  # the scheme folds, the host keeps its case
        ("https://h/f#frag", "https", "h", 0, "/f"),  # the fragment is not sent
        ("http://[::1]:81/x", "http", "::1", 81, "/x"),
        ("http://h/é", "http", "h", 0, "/%C3%A9"),  # URI.toASCIIString
        ("http://h/a?b[1]", "http", "h", 0, "/a?b[1]"),  # brackets: legal in a query
        ("http://h:/x", "http", "h", 0, "/x"),
        ("lb://Orders-Svc/x", "lb", "Orders-Svc", 0, "/x"),
        ("http:///nohost", "http", "", 0, "/nohost"),
        ("mailto:a@b", "mailto", "", 0, ""),  # opaque
    ],
)
def test_a_uri_java_takes(text: str, scheme: str, host: str, port: int, target: str) -> None:
    url = parse_request_url(text)
    assert url is not None
    assert (url.scheme, url.host, url.port, url.target) == (scheme, host, port, target)


@pytest.mark.parametrize(
    "text",
    [
        "invalid_uri",  # not absolute (jar: "URI is not absolute")
        "/foo",
        "//h/x",
        "http://h/a b",  # jshell: Illegal character in path
        "http://h/a|b",
        "http://h/a{b",
        "http://h/[x]",
        "http://h/a%2",  # Malformed escape pair
        "http://h/a%zz",
        "http://h/a#b#c",
        "http://h h/",  # Illegal character in authority
        "http://h/\x01",
        "http://h/\u00a0",  # a space character is no "other" character
        "http://h/a?b c",
        "http:",  # Expected scheme-specific part
        "http://",  # Expected authority
        "http://[::1/x",  # Expected closing bracket
        "1http://h",  # Illegal character in scheme name
        "http://h:abc/",  # no server authority: no host, URL refuses the port
        "http://h:80:9/",
    ],
)
def test_a_uri_java_refuses(text: str) -> None:
    assert parse_request_url(text) is None


def test_user_info_and_a_port_no_socket_takes_are_flagged() -> None:
    with_user = parse_request_url("http://u:p@h/ui")
    assert with_user is not None and with_user.userinfo and with_user.host == "h"
    far = parse_request_url("http://h:99999/x")
    assert far is not None and not far.port_valid


# -- SetRequestUri -----------------------------------------------------------------------------


def test_set_request_uri_constant_is_parsed_once(exchange_for: MakeExchange) -> None:
    change = retarget("SetRequestUri", "http://127.0.0.1:9/fixed?x=1")
    url = change.request_url(exchange_for("/a", "q=1"))
    assert url is not None and url is change.constant
    assert (url.host, url.port, url.target) == ("127.0.0.1", 9, "/fixed?x=1")


def test_set_request_uri_expands_decoded_variables(exchange_for: MakeExchange) -> None:
    change = retarget("SetRequestUri", "http://{app}.example.com/t/{seg}")
    assert change.constant is None
    url = change.request_url(exchange_for(uri_variables={"app": "red", "seg": "a/b"}))
    assert url == RequestUrl("http://red.example.com/t/a/b", "http", "red.example.com", 0, "/t/a/b")


def test_set_request_uri_ignores_an_expansion_uri_refuses(exchange_for: MakeExchange) -> None:
    # SCG logs "Request url is invalid" and leaves the request URL as it was.
    change = retarget("SetRequestUri", "http://h/t/{seg}")
    assert change.request_url(exchange_for(uri_variables={"seg": "a b"})) is None
    assert change.request_url(exchange_for(uri_variables={"seg": "a\r\nX: y"})) is None


def test_set_request_uri_ignores_a_variable_nothing_captured(exchange_for: MakeExchange) -> None:
    # Spring's expand throws "Map has no value", which the factory catches.
    change = retarget("SetRequestUri", "http://h/t/{seg}")
    assert change.request_url(exchange_for()) is None


def test_set_request_uri_with_the_scheme_in_a_variable(exchange_for: MakeExchange) -> None:
    change = retarget("SetRequestUri", "{scheme}://h/x")
    url = change.request_url(exchange_for(uri_variables={"scheme": "https"}))
    assert url is not None and url.scheme == "https"


def test_describe_is_scgs_text() -> None:
    assert retarget("SetRequestUri", "http://{app}.x").describe() == (
        "[SetRequestUri template = 'http://{app}.x']"
    )
    assert retarget("RequestHeaderToRequestUri", "X-CF-Forwarded-Url").describe() == (
        "[RequestHeaderToRequestUri name = 'X-CF-Forwarded-Url']"
    )


def test_both_have_scgs_order() -> None:
    assert retarget("SetRequestUri", "http://h").order == 10001
    assert retarget("RequestHeaderToRequestUri", "X-T").order == 10001


def test_the_filters_have_no_pre_or_post_of_their_own() -> None:
    # The stack asks them at order 10001; folded into a chain they would do nothing.
    change = retarget("SetRequestUri", "http://h")
    assert not change.has_pre and not change.has_post


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("invalid_uri", "'invalid_uri' is not an absolute URI"),
        ("/path/{x}", "'/path/{x}' is not an absolute URI"),
        ("http://h/a b/{x}", "'http://h/a b/{x}' is not an absolute URI"),
        ("forward:/x", "forward: URIs are not supported here"),
        ("ftp://h/x", "nothing sends requests to ftp: URIs"),
        ("no://op", "nothing sends requests to no: URIs"),
        ("http:///x", "'http:///x' names no host"),
        ("http://u:p@h/x", "user info in the URI is not supported"),
        ("http://h:70000", "port 70000 is not a TCP port"),
        ("http://h/{unclosed", "unclosed '{'"),
    ],
)
def test_set_request_uri_refuses_a_template_that_cannot_work(template: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_filter("SetRequestUri", args={"template": template})
    assert caught.value.reason.startswith("argument 'template': ")
    assert reason in caught.value.reason


def test_set_request_uri_needs_a_template() -> None:
    with pytest.raises(ConfigError, match="missing required argument 'template'"):
        build_filter("SetRequestUri", args={})
    with pytest.raises(ConfigError, match="unknown argument"):
        build_filter("SetRequestUri", args={"template": "http://h", "uri": "http://h"})


def test_a_bad_template_is_a_located_error() -> None:
    document = """
routes:
  - id: seturi
    uri: no://op
    predicates: ["Path=/{appId}/**"]
    filters: ["SetRequestUri=forward:/{appId}"]
"""
    with pytest.raises(ConfigError) as caught:
        validate_text(document, "routes.yml", builtin_predicates(), builtin_filters())
    assert str(caught.value).startswith(
        "routes.yml: routes[0] (seturi) filters[0] (SetRequestUri): argument 'template': "
        "forward: URIs are not supported here"
    )


# -- RequestHeaderToRequestUri -------------------------------------------------------------------


def test_header_names_the_url(exchange_for: MakeExchange) -> None:
    change = retarget("RequestHeaderToRequestUri", "X-Target")
    url = change.request_url(exchange_for(headers=[("x-target", "http://h:81/h/x?z=1")]))
    assert url is not None and (url.host, url.port, url.target) == ("h", 81, "/h/x?z=1")


def test_header_first_value_wins(exchange_for: MakeExchange) -> None:
    change = retarget("RequestHeaderToRequestUri", "X-Target")
    headers = [("X-Target", "http://a/1"), ("X-Target", "http://b/2")]
    url = change.request_url(exchange_for(headers=headers))
    assert url is not None and url.host == "a"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not a uri",
        "relative/x",
        "lb://svc",  # URL: unknown protocol: lb
        "ws://h/ws",
        "forward:/x",
        "no://op",
        "jar:x",  # URL: no !/ in spec
        "http://h:abc/",
    ],
)
def test_header_value_scg_ignores(value: str, exchange_for: MakeExchange) -> None:
    change = retarget("RequestHeaderToRequestUri", "X-Target")
    assert change.request_url(exchange_for(headers=[("X-Target", value)])) is None


@pytest.mark.parametrize("value", ["ftp://h/x", "mailto:a@b", "file:rel", "http:opaque"])
def test_header_value_java_takes_but_nothing_sends(value: str, exchange_for: MakeExchange) -> None:
    # SCG sets these as the request URL; what then happens is the stack's business.
    change = retarget("RequestHeaderToRequestUri", "X-Target")
    assert change.request_url(exchange_for(headers=[("X-Target", value)])) is not None


def test_header_absent(exchange_for: MakeExchange) -> None:
    assert retarget("RequestHeaderToRequestUri", "X-Target").request_url(exchange_for()) is None


@pytest.mark.parametrize("name", ["", "Bad Name", "X:Y"])
def test_header_name_must_be_a_token(name: str) -> None:
    with pytest.raises(ConfigError, match="argument 'name'"):
        build_filter("RequestHeaderToRequestUri", args={"name": name})


def test_built_directly_a_constant_template_java_refuses_names_nothing(
    exchange_for: MakeExchange,
) -> None:
    # The factory refuses such a template; built by hand, it behaves as SCG's (ignored).
    change = SetRequestUri(compile_template("invalid_uri"))
    assert change.constant is None
    assert change.request_url(exchange_for()) is None


@pytest.mark.parametrize(
    ("template", "services"),
    [
        ("lb://search", ("search",)),
        ("lb://Search/{segment}?q={q}", ("Search",)),  # the host is the same for every request
        ("lb://{segment}", ()),  # the host comes from a variable: not known in advance
        ("lb://svc-{segment}", ()),
        ("http://127.0.0.1:9000/{segment}", ()),
    ],
)
def test_set_request_uri_names_the_service_discovery_must_watch(
    template: str, services: tuple[str, ...]
) -> None:
    assert build_filter("SetRequestUri", args={"template": template}).services == services
