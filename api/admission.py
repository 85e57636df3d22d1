"""A bounded queue per model, as production servers shed load (Ray Serve's ``max_queued_requests``, Triton's queue
policy): a request that would wait behind ``limit`` others for a model is refused at once with 503 and a
Retry-After estimated from the model's recent time per request, instead of queueing without bound."""

from __future__ import annotations

import math
import threading

SMOOTHING = 0.2  # weight of the newest request in the moving average of a model's time per request


class ModelQueue:
    def __init__(self, limit: int):
        self.limit = limit
        self.count = 0  # admitted and not finished
        self.average_s: float | None = None
        self._lock = threading.Lock()

    def try_enter(self) -> bool:
        with self._lock:
            if self.count >= self.limit:
                return False
            self.count += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.count -= 1

    def record(self, seconds: float) -> None:
        """One request's time for this model, into the moving average Retry-After is estimated from."""
        with self._lock:
            last = self.average_s
            self.average_s = seconds if last is None else (1 - SMOOTHING) * last + SMOOTHING * seconds

    def retry_after(self) -> int:
        """Seconds until the queue has likely drained (at least 1, at most a minute)."""
        return max(1, min(60, math.ceil((self.average_s or 1.0) * self.count)))
