"""Rate limiters: a token bucket per (scope, key), in process or shared through Redis.

A plain Python service uses them as the gateway does: build a ``BucketPolicy``, ask a
``RateLimiterFactory`` (``LocalRateLimiters`` or ``RedisRateLimiters``) for the limiter of a
scope (the gateway's is a route id), then ``await limiter.acquire(key)`` per request.
"""
