"""Route-language patterns: SCG path and host patterns, Java regex translation."""
