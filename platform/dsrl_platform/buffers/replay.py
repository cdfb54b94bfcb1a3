"""Uniform replay buffer in preallocated numpy arrays (pages are touched only when filled).

Observations keep their own dtype (float32 vectors, bool MinAtar grids); discrete actions are
stored as integers. Atari frames use the frame-sharing buffer in buffers/frames.py instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

FIELDS = ("obs", "next_obs", "actions", "rewards", "not_done")


class ReplayBuffer:
    def __init__(self, obs_shape: tuple[int, ...], capacity: int, *, action_dim: int | None = None,
                 obs_dtype: str = "float32"):
        """`action_dim` None: discrete actions (one int64 each); else float32 vectors."""
        self.capacity = capacity
        self.obs = np.empty((capacity, *obs_shape), obs_dtype)
        self.next_obs = np.empty((capacity, *obs_shape), obs_dtype)
        self.actions = (np.empty(capacity, np.int64) if action_dim is None
                        else np.empty((capacity, action_dim), np.float32))
        self.rewards = np.empty((capacity, 1), np.float32)
        self.not_done = np.empty((capacity, 1), np.float32)  # 0 only at true terminations
        self.size = 0
        self.pos = 0

    def add(self, obs, action, reward: float, next_obs, terminated: bool, truncated: bool = False) -> None:
        i = self.pos
        self.obs[i], self.actions[i], self.rewards[i] = obs, action, reward
        self.next_obs[i], self.not_done[i] = next_obs, 0.0 if terminated else 1.0
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator, device: torch.device):
        """(obs, actions, rewards, next_obs, not_done) of `batch_size` uniform draws."""
        idx = rng.integers(0, self.size, size=batch_size)
        as_t = lambda a: torch.from_numpy(a[idx]).to(device, non_blocking=True)  # noqa: E731
        return as_t(self.obs), as_t(self.actions), as_t(self.rewards), as_t(self.next_obs), as_t(self.not_done)

    def state_dict(self) -> dict[str, Any]:
        n = self.size
        return {**{name: getattr(self, name)[:n] for name in FIELDS}, "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        n = len(state["obs"])
        if n > self.capacity or state["obs"].shape[1:] != self.obs.shape[1:]:
            raise ValueError(f"replay: checkpoint holds {n} transitions of shape {state['obs'].shape[1:]}, "
                             f"this buffer {self.capacity} of {self.obs.shape[1:]}")
        for name in FIELDS:
            getattr(self, name)[:n] = state[name]
        self.size, self.pos = n, int(state["pos"])
