"""A self-contained demo: echo upstreams and a route file that exercises the main features."""
