"""The latency buckets (upper bounds, seconds; +Inf after the last) of
``meshgate_request_duration_seconds`` and of the live numbers' quantiles: one list, so the
dashboard's p99 and a Prometheus ``histogram_quantile`` read the same histogram."""

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
