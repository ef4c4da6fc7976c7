"""Consul: a blocking-query discovery client, KV route source and self-registration."""
