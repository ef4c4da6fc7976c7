"""Traffic mirroring and shadow comparison (the ``Mirror`` filter's machinery).

A copy of a route's request goes to a shadow upstream after the primary has answered; the
shadow's answer is discarded, or, with ``compare: true``, compared with the primary's. The
client's response never waits for any of it. Modules, bottom up: ``spec`` (what a Mirror
filter's arguments mean), ``jsonpath`` (the ignore-json-paths subset), ``compare`` (one
comparison), ``tee`` (bodies kept while they stream), ``stats`` (counts and the last
differences per route), ``contract`` (what the filter is given), ``sender`` (the running
gateway's mirror traffic: tasks, the in-flight bound, the timeout).

This package imports nothing above ``gateway.extension`` in the layers (no forwarder, no
routing): the one upstream-request builder it needs is handed to the sender by the app.
"""
