"""RLx2's dynamic-capacity replay (Tan et al., ICLR 2023, section 4.3; tyq1024/RLx2 train.py).

Old transitions come from policies far from the current one; with multi-step targets they bias
the return. Every `check_every` environment steps the policy distance

    d = ½ · mean over the oldest `samples` transitions and action dimensions of (π(s) − a_b)²

compares the current policy's deterministic action π(s) with the behaviour policy's a_b (both
in [-1, 1] units); if d > `threshold` and more than `min_size` transitions are stored, the
oldest `drop_fraction` of them are dropped. The buffer's capacity is the upper bound. RLx2's
code: every 10,000 steps, the oldest 8 batches, threshold 0.2, drop 10%; min 1e5 (TD3) / 2e5
(SAC), max 1e6 / 3e6. RL-agnostic: the agent supplies the distance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dsrl_platform.buffers.replay import ReplayBuffer

DROP_FRACTION = 0.1  # RLx2's ReplayBuffer.shrink
SAMPLES_PER_BATCH = 8  # RLx2: the oldest 8 × batch_size transitions


class DynamicCapacity:
    def __init__(self, check_every: int, samples: int, threshold: float, min_size: int,
                 drop_fraction: float = DROP_FRACTION):
        self.check_every, self.samples, self.threshold = check_every, samples, threshold
        self.min_size, self.drop_fraction = min_size, drop_fraction
        self.last_distance = float("nan")  # at the latest check
        self.dropped = 0  # transitions dropped so far

    def due(self, env_steps: int) -> bool:
        return env_steps > 0 and env_steps % self.check_every == 0

    def check(self, buffer: ReplayBuffer, distance: Callable[[np.ndarray, np.ndarray], float]) -> int:
        """Measure the policy distance on the oldest transitions and drop if it is too far;
        returns the number dropped. `distance(obs, behaviour)` is the policy distance d."""
        if buffer.size == 0:
            return 0
        idx = buffer.oldest(self.samples)
        self.last_distance = float(distance(buffer.obs[idx], buffer.behaviour[idx]))
        if self.last_distance <= self.threshold or buffer.size <= self.min_size:
            return 0
        n = int(self.drop_fraction * buffer.size)
        buffer.drop_oldest(n)
        self.dropped += n
        return n

    def state_dict(self) -> dict[str, Any]:
        return {"last_distance": self.last_distance, "dropped": self.dropped}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last_distance, self.dropped = float(state["last_distance"]), int(state["dropped"])
