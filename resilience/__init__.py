"""How to call services safely: load balancers, breakers, retries, timeouts, bulkheads."""
