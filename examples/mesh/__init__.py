"""The demo mesh: ``orders`` (aiohttp + the in-process mesh client) calling ``billing`` (two
stable instances and a canary), a ``legacy`` app with no mesh code joining through a meshgate
sidecar, and the gateway in front, all registered in one Consul agent and traced over OTLP.

``cluster.MeshDemo`` starts the processes (the tests use it); ``python -m examples.mesh``
(``make demo-mesh``) adds a Consul agent and a trace receiver and prints what to try.

Nothing is imported here, so ``legacy.py`` runs as a plain script with the standard library only.
"""
