"""Plugin distributions for the plugin tests, each a directory with its own pyproject.toml."""
