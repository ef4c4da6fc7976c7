"""``/dashboard``: the single-page dashboard, its files packaged in the wheel
(``gateway/dashboard/``, uPlot vendored), read once when the management app is built.

The files hold no data, so they are served without the management token: the page asks for
the token when an API answers 401 and sends it as a bearer header from then on. A strict
Content-Security-Policy goes with every file: scripts and styles only from these files (no
inline script or style attribute), data only from this origin, no framing.
"""

from __future__ import annotations

from importlib import resources
from pathlib import PurePosixPath

from aiohttp import web

from gateway.management.responses import error_response

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Small files, read at start: a reload after an upgrade must not show old code.
    "Cache-Control": "no-cache",
}
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".md": "text/plain; charset=utf-8",
    ".LICENSE": "text/plain; charset=utf-8",
}
# The paths the management token does not guard (``security/management.OPEN_PATHS``).
PATHS = ("/dashboard", "/dashboard/", "/dashboard/{name}", "/dashboard/vendor/{name}")


def load_files() -> dict[str, tuple[bytes, str]]:
    """Every dashboard file by its path under ``/dashboard/``, with its content type: an
    allowlist, so no request names a file outside it."""
    root = resources.files("gateway") / "dashboard"
    files: dict[str, tuple[bytes, str]] = {}
    for folder, prefix in ((root, ""), (root / "vendor", "vendor/")):
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            suffix = PurePosixPath(entry.name).suffix
            kind = TYPES.get(suffix)
            if entry.is_file() and kind is not None:
                files[prefix + entry.name] = (entry.read_bytes(), kind)
    return files


def add_routes(app: web.Application) -> None:
    files = load_files()

    def send(name: str, path: str) -> web.Response:
        found = files.get(name)
        if found is None:
            response = error_response(404, f"no dashboard file {name!r}", path)
        else:
            body, kind = found
            response = web.Response(body=body, headers={"Content-Type": kind})
        response.headers.update(HEADERS)
        return response

    async def index(request: web.Request) -> web.Response:
        return send("index.html", request.path)

    async def file(request: web.Request) -> web.Response:
        return send(request.match_info["name"], request.path)

    async def vendor(request: web.Request) -> web.Response:
        return send("vendor/" + request.match_info["name"], request.path)

    app.router.add_get(PATHS[0], index)
    app.router.add_get(PATHS[1], index)
    app.router.add_get(PATHS[2], file)
    app.router.add_get(PATHS[3], vendor)
