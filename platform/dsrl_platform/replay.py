"""Uniform replay buffer in preallocated numpy arrays (pages are touched only when filled)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


class ReplayBuffer:
    def __init__(self, obs_dim: int, act_dim: int, capacity: int):
        self.capacity = capacity
        self.obs = np.empty((capacity, obs_dim), np.float32)
        self.next_obs = np.empty((capacity, obs_dim), np.float32)
        self.actions = np.empty((capacity, act_dim), np.float32)
        self.rewards = np.empty((capacity, 1), np.float32)
        self.not_done = np.empty((capacity, 1), np.float32)  # 0 only at true terminations
        self.size = 0
        self.pos = 0

    def add(self, obs, action, reward: float, next_obs, terminated: bool) -> None:
        i = self.pos
        self.obs[i], self.actions[i], self.rewards[i] = obs, action, reward
        self.next_obs[i], self.not_done[i] = next_obs, 0.0 if terminated else 1.0
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator, device: torch.device):
        idx = rng.integers(0, self.size, size=batch_size)
        as_t = lambda a: torch.from_numpy(a[idx]).to(device, non_blocking=True)  # noqa: E731
        return as_t(self.obs), as_t(self.actions), as_t(self.rewards), as_t(self.next_obs), as_t(self.not_done)

    def save(self, path: Path) -> None:
        n = self.size
        np.savez(path, obs=self.obs[:n], next_obs=self.next_obs[:n], actions=self.actions[:n],
                 rewards=self.rewards[:n], not_done=self.not_done[:n], pos=self.pos)

    def load(self, path: Path) -> None:
        with np.load(path) as data:
            n = len(data["obs"])
            for name in ("obs", "next_obs", "actions", "rewards", "not_done"):
                getattr(self, name)[:n] = data[name]
            self.size, self.pos = n, int(data["pos"])
