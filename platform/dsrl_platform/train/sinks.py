"""Where a run's metrics go: any object with `log` and `flush` (MLflow's sink: tracking.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class MetricSink(Protocol):
    def log(self, metrics: Mapping[str, float], step: int) -> None: ...
    def flush(self) -> None: ...


class MemorySink:
    """Keeps every metric point in memory (tests, single runs)."""

    def __init__(self) -> None:
        self.points: list[tuple[int, dict[str, float]]] = []

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        self.points.append((step, dict(metrics)))

    def flush(self) -> None:
        pass

    def series(self, name: str) -> list[tuple[int, float]]:
        return [(s, m[name]) for s, m in self.points if name in m]
