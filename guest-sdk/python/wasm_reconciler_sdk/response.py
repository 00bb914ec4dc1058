"""What a successful reconcile asks of the host next."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

__all__ = ["Response"]

# The WIT carries the delay as a u64 of milliseconds.
_MAX_MS = 2**64 - 1


@dataclass(frozen=True)
class Response:
    """What to do after a successful reconcile, like controller-runtime's ``Result``::

        return Response.await_change()                  # Result{}
        return Response.requeue_after(timedelta(minutes=5))  # Result{RequeueAfter: 5m}

    Returning ``None`` from ``reconcile`` is the same as :meth:`await_change`.
    """

    #: The delay before the host reconciles again in whole milliseconds, or ``None``.
    requeue_after_ms: int | None = None

    @classmethod
    def await_change(cls) -> Response:
        """Waits for the next change to the object or one of its owned objects."""
        return cls(None)

    @classmethod
    def requeue_after(cls, delay: timedelta | float) -> Response:
        """Reconciles the object again after ``delay`` (a ``timedelta``, or seconds) even if
        nothing changes. A change before then still reconciles at once. The host works in
        whole milliseconds: the delay is rounded up to the next one.

        :raises ValueError: for a negative delay.
        """
        seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
        if seconds < 0 or math.isnan(seconds):
            raise ValueError(f"a requeue delay must not be negative, got {delay!r}")
        if math.isinf(seconds):
            return cls(_MAX_MS)
        # Round up in microseconds first, so that 1.5 ms in float seconds is 2 ms, not 1.
        millis = -(-round(seconds * 1_000_000) // 1000)
        return cls(min(millis, _MAX_MS))

    @property
    def requeue_delay(self) -> timedelta | None:
        """The delay after which the host reconciles again, if any."""
        if self.requeue_after_ms is None:
            return None
        try:
            return timedelta(milliseconds=self.requeue_after_ms)
        except OverflowError:
            return timedelta.max
