"""Slowing down a client that keeps missing: misses per key (a client's address) in a sliding window,
and past a threshold a wait after the latest miss that doubles with each further one.

Held in the server process's memory, with no database work: it sits in front of the OsmAnd endpoint,
where every request counts, to make guessing a rider's device id slow. Several server processes each
keep their own counts, so a guesser spread over them gets the threshold once per process; the ids
RiderWatch issues are long enough that this does not matter, and the counts protect the short ids
riders chose in the app before.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class MissThrottle:
    """Misses per key; `wait(key)` is how long that key must still wait (0: go on)."""

    def __init__(
        self,
        *,
        threshold: int,
        window_seconds: float,
        longest_wait: float,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.window = window_seconds
        self.longest = longest_wait
        self.max_keys = max_keys
        self.clock = clock
        self._misses: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        misses = self._misses.get(key)
        if misses is None:
            return None
        while misses and misses[0] <= now - self.window:
            misses.popleft()
        if not misses:
            del self._misses[key]
            return None
        return misses

    def wait(self, key: str) -> float:
        """Seconds the key must still wait before its next request is looked at."""
        with self._lock:
            now = self.clock()
            misses = self._recent(key, now)
            if misses is None or len(misses) < self.threshold:
                return 0.0
            delay = min(2.0 ** min(len(misses) - self.threshold, 30), self.longest)
            return max(0.0, misses[-1] + delay - now)

    def miss(self, key: str) -> None:
        """Count a miss; the least recently missing keys are forgotten beyond `max_keys`."""
        with self._lock:
            now = self.clock()
            misses = self._recent(key, now)
            if misses is None:
                misses = self._misses[key] = deque(maxlen=self.threshold + 64)
            misses.append(now)
            self._misses.move_to_end(key)
            while len(self._misses) > self.max_keys:
                self._misses.popitem(last=False)
