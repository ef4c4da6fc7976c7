"""``make demo``: two echo upstreams and the gateway on its defaults with the demo routes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from aiohttp import web

from gateway.demo.echo import make_app

ROUTES = Path(__file__).with_name("routes.yml")
UPSTREAMS = (("a", 9001), ("b", 9002))

TRY = """
meshgate demo is running.
  proxy       http://127.0.0.1:{port}
  management  http://127.0.0.1:{mport}
  dashboard   http://127.0.0.1:{mport}/dashboard
  routes      {routes}

Try:
  # lb://echo over two instances, StripPrefix, a {{segment}} header:
  curl -i http://127.0.0.1:{port}/api/orders/42
  # RewritePath with a named group:
  curl -i http://127.0.0.1:{port}/red/anything
  # Weight: an 80/20 canary split between upstreams a and b:
  for i in $(seq 20); do curl -s http://127.0.0.1:{port}/canary/x | grep -o '"upstream": "."'; done
  # RedirectTo, and the JSON error for a path no route matches:
  curl -i http://127.0.0.1:{port}/docs/
  curl -i http://127.0.0.1:{port}/nowhere
  curl -s http://127.0.0.1:{mport}/actuator/gateway/routes | python3 -m json.tool
  curl -s http://127.0.0.1:{mport}/actuator/health
  curl -s http://127.0.0.1:{mport}/actuator/gateway/services | python3 -m json.tool
  curl -s http://127.0.0.1:{mport}/actuator/prometheus | grep meshgate_requests_total
  # why a request goes where it goes: route verdicts, filters, the next instance
  curl -s 'http://127.0.0.1:{mport}/actuator/gateway/explain?url=/api/orders/42'
  {meshgate} explain {routes} GET /canary/x
  # every request above is also one JSON access-log line on this terminal
  WebSocket echo (lb:ws://echo): ws://127.0.0.1:{port}/ws/chat

Ctrl-C stops everything.
"""


async def main() -> int:
    runners = []
    for name, port in UPSTREAMS:
        runner = web.AppRunner(make_app(name), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", port).start()
        except OSError as exc:
            print(f"demo: cannot listen on 127.0.0.1:{port} ({exc}); is a demo running?")
            return 1
        runners.append(runner)
    env = {**os.environ, "GATEWAY_CONFIG": os.environ.get("GATEWAY_CONFIG", str(ROUTES))}
    proxy_port = env.get("GATEWAY_PORT", "8080")
    management_port = env.get("GATEWAY_MANAGEMENT_PORT", "8081")
    gateway = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway", env=env)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await asyncio.sleep(1.0)
    if gateway.returncode is None:
        text = TRY.format(
            port=proxy_port,
            mport=management_port,
            routes=env["GATEWAY_CONFIG"],
            # The command beside this interpreter: the demo's venv need not be on PATH.
            meshgate=Path(sys.executable).parent / "meshgate",
        )
        print(text, flush=True)
    waiter = asyncio.create_task(gateway.wait())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if gateway.returncode is None:
        gateway.send_signal(signal.SIGTERM)
        await gateway.wait()
    stopper.cancel()
    for runner in runners:
        await runner.cleanup()
    return gateway.returncode or 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
