"""meshgate: an API gateway that is also a service-mesh member."""

__version__ = "0.1.0"
