"""In-process token buckets: per API key, and per client for failed authentications.

One process, one set of buckets: with several workers each enforces its own share. A shared
limiter (Redis) belongs in front of the service when that matters.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict


class TokenBucket:
    """Token buckets keyed by a string, refilled at ``rate`` per second up to ``burst``.

    Parameters
    ----------
    rate : tokens per second (``0`` disables limiting: every call is allowed).
    burst : bucket size.
    max_keys : buckets kept (least recently used dropped first), bounding memory.

    Examples
    --------
    >>> b = TokenBucket(rate=1.0, burst=2)
    >>> [b.acquire("k", now=0.0)[0] for _ in range(3)]
    [True, True, False]
    >>> b.acquire("k", now=0.0)[1]  # seconds until one token is back
    1
    """

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        if rate < 0 or burst < 1:
            raise ValueError("rate must be >= 0 and burst >= 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def acquire(self, key: str, cost: float = 1.0, now: float | None = None) -> tuple[bool, int]:
        """Take ``cost`` tokens; return ``(allowed, retry_after_seconds)``."""
        if not self.enabled:
            return True, 0
        t = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.burst, t))
            tokens = min(self.burst, tokens + (t - last) * self.rate)
            allowed = tokens >= cost
            if allowed:
                tokens -= cost
            self._buckets[key] = (tokens, t)
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        if allowed:
            return True, 0
        return False, max(1, math.ceil((min(cost, self.burst) - tokens) / self.rate))

    def peek(self, key: str, now: float | None = None) -> float:
        """Tokens left for ``key`` (full when unseen)."""
        t = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, t))
        return min(self.burst, tokens + (t - last) * self.rate)
