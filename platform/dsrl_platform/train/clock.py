"""Measured wall-clock of the agent's updates (all gradient steps of one `update()` call).

What a sparse agent really costs, beside the FLOPs it is charged: per update since the last
evaluation (a metric), and over the run (the summary), carried through checkpoints so a resumed
run reports its whole training time. Measurements, not reproducible numbers: kept apart from
the run's results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class UpdateClock:
    total_s: float = 0.0
    updates: int = 0
    _marked: tuple[float, int] = (0.0, 0)

    def add(self, seconds: float, updates: int) -> None:
        self.total_s += seconds
        self.updates += updates

    def ms_since_mark(self, peek: bool = False) -> float | None:
        """Mean ms per update since the previous call (None: no update since); sets the mark
        unless `peek` (a group's members read the same interval one after another)."""
        seconds, updates = self.total_s - self._marked[0], self.updates - self._marked[1]
        if not peek:
            self._marked = (self.total_s, self.updates)
        return 1e3 * seconds / updates if updates else None

    def mean_ms(self) -> float | None:
        return 1e3 * self.total_s / self.updates if self.updates else None

    def state_dict(self) -> dict[str, Any]:
        return {"total_s": self.total_s, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.total_s, self.updates = float(state["total_s"]), int(state["updates"])
        self._marked = (self.total_s, self.updates)
