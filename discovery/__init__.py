"""Where services are: instances, registries (static, Consul) and self-registration."""
