"""A token bucket per remote host for the inbox: bursts pass, floods get 429."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, per_minute: int, burst: int | None = None, max_hosts: int = 10_000) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(burst or max(per_minute // 2, 1))
        self.max_hosts = max_hosts
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, now: float | None = None) -> float | None:
        """None when allowed; otherwise the seconds to wait (for Retry-After)."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_hosts:  # forget the idlest half rather than grow without end
                for old in sorted(self._buckets, key=lambda k: self._buckets[k].at)[: self.max_hosts // 2]:
                    del self._buckets[old]
            bucket = self._buckets[key] = _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return (1 - bucket.tokens) / self.rate
