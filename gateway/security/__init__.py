"""Security: TLS contexts (downstream and upstream), authentication (JWT, API keys, basic),
the trusted-proxy client address. Below the filters, which bind these to routes."""
