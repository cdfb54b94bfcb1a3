"""The trainer's metric sink: buffered, batched, and patient with tracking outages.

Metrics are buffered in memory, delivered with `log_batch` (≤1000 per call), kept and retried
later when the store is unreachable, and flushed with retries at the end of a trial. With
`hold=True` a point is delivered only once a checkpoint covers it, so a trial resumed from its
checkpoint re-logs nothing MLflow already has: one curve, no duplicates.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from dsrl_platform.tracking.client import MAX_BATCH, RETRY_ENV, Tracker, TrackingUnavailable, is_transient, \
    retry_budget_s, short


def _now_ms() -> int:
    return int(time.time() * 1000)


class MlflowSink:
    """The trainer's metric sink for one run: buffered, batched, and patient with outages.

    `log` only appends to a buffer; delivery happens when `batch` points are ready or
    `flush_every_s` has passed. When the store is unreachable the points stay buffered and
    delivery is retried later (backoff up to `max_backoff_s`) while training goes on; `close`
    retries for `retry_s` (DSRL_TRACKING_RETRY_S, default 600 s) and raises `TrackingUnavailable`
    only if the store never came back. With `hold=True` points wait for `release()`, which the
    trainable calls once a checkpoint covers them.
    """

    def __init__(self, tracker: Tracker, run_id: str, *, hold: bool = False, batch: int = MAX_BATCH,
                 flush_every_s: float = 10.0, max_backoff_s: float = 60.0, retry_s: float | None = None):
        from mlflow.entities import Metric

        self._metric = Metric
        self.tracker, self.run_id, self.hold = tracker, run_id, hold
        self.batch, self.flush_every_s, self.max_backoff_s = min(batch, MAX_BATCH), flush_every_s, max_backoff_s
        self.retry_s = retry_budget_s() if retry_s is None else retry_s
        self._points: list[Any] = []  # buffered, oldest first
        self._released = 0  # the first this many points may be delivered
        self._last_attempt = time.monotonic()
        self._backoff = 0.0  # > 0 while the store is failing
        self.delivered = 0
        self.last_error: str | None = None
        self.busy_s = 0.0  # time spent buffering and delivering: the trial's tracking cost

    @property
    def pending(self) -> int:
        return len(self._points)

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        start, ts = time.perf_counter(), _now_ms()
        self._points.extend(self._metric(k, float(v), ts, int(step)) for k, v in metrics.items())
        if not self.hold:
            self._released = len(self._points)
        self.busy_s += time.perf_counter() - start
        self._maybe_flush()

    def release(self) -> None:
        """Everything logged so far may be delivered (it is covered by a checkpoint)."""
        self._released = len(self._points)
        self._maybe_flush(now=True)

    def flush(self) -> None:
        """Deliver what is released; on a transient error keep it for later (never raises it)."""
        self._last_attempt = time.monotonic()
        try:
            self._deliver()
        except Exception as err:
            if not is_transient(err):
                raise
            self.last_error = short(err)
            self._backoff = min(max(self._backoff * 2, 1.0), self.max_backoff_s)
        else:
            self._backoff, self.last_error = 0.0, None

    def close(self) -> None:
        """Release and deliver everything, retrying for `retry_s`; the run's curve is complete."""
        self._released = len(self._points)
        deadline, delay = time.monotonic() + self.retry_s, 1.0
        while True:
            self.flush()
            if not self._points:
                return
            if time.monotonic() + delay > deadline:
                raise TrackingUnavailable(
                    f"tracking store {self.tracker.uri} unreachable for {self.retry_s:.0f} s "
                    f"({self.last_error}); {len(self._points)} metric points of run {self.run_id} "
                    f"were not delivered (raise {RETRY_ENV} to wait longer)")
            time.sleep(delay)
            delay = min(delay * 2, 30.0)

    def _maybe_flush(self, now: bool = False) -> None:
        if not self._released:
            return
        waited = time.monotonic() - self._last_attempt
        if self._backoff:
            due = waited >= self._backoff
        else:
            due = now or self._released >= self.batch or waited >= self.flush_every_s
        if due:
            self.flush()

    def _deliver(self) -> None:
        start = time.perf_counter()
        try:
            while self._released:
                chunk = self._points[:min(self._released, self.batch)]
                self.tracker.client.log_batch(self.run_id, metrics=chunk)
                del self._points[:len(chunk)]
                self._released -= len(chunk)
                self.delivered += len(chunk)
        finally:
            self.busy_s += time.perf_counter() - start
