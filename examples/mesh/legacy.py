"""``legacy``: an app with no mesh code at all (the standard library's ``http.server`` and
``urllib``), the kind a sidecar is for. Its sidecar registers it in Consul and sends its own
calls on: it calls ``http://billing/...`` through ``HTTP_PROXY`` (the sidecar's outbound port)
and, as any service in a traced mesh must, copies the inbound ``traceparent``, ``tracestate``
and ``baggage`` onto that call.

    HTTP_PROXY=http://127.0.0.1:15001 python examples/mesh/legacy.py --port 9400

``GET /health``; ``GET /whoami``; ``GET /invoice/{id}``: billing's invoice, fetched through the
proxy.
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PROPAGATED = ("traceparent", "tracestate", "baggage")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The proxy, from HTTP_PROXY as any HTTP client reads it; explicit, so that a NO_PROXY
    # of the environment cannot send billing's name to DNS instead.
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"http": os.environ.get("HTTP_PROXY", "")})
    )

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(200, {"status": "UP"})
        elif self.path == "/whoami":
            self._send(200, {"app": "legacy", "traceparent": self.headers.get("traceparent")})
        elif self.path.startswith("/invoice/"):
            self._invoice(self.path.removeprefix("/invoice/"))
        else:
            self._send(404, {"error": f"no {self.path}"})

    def _invoice(self, invoice_id: str) -> None:
        request = urllib.request.Request(f"http://billing/invoices/{invoice_id}")
        for name in PROPAGATED:
            values = self.headers.get_all(name)
            if values:  # one field: urllib keeps one value per name
                request.add_header(name, ",".join(values))
        try:
            with self.opener.open(request, timeout=5) as response:
                invoice = json.loads(response.read())
        except urllib.error.HTTPError as error:
            self._send(502, {"app": "legacy", "error": f"billing answered {error.code}"})
            return
        except OSError as error:
            self._send(502, {"app": "legacy", "error": f"billing failed: {error}"})
            return
        self._send(200, {"app": "legacy", "invoice": invoice})

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the sidecar's access log has every request


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="legacy.py")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
