"""Runnable examples of meshgate in use (``make demo-mesh``: ``examples.mesh``)."""
