"""An on-policy rollout: fixed-length arrays, and GAE advantages with TD(λ) returns.

Schulman et al. 2016 (GAE): δ_t = r_t + γ·V(s_{t+1})·(1 − terminated_t) − V(s_t),
A_t = δ_t + γλ·(1 − done_t)·A_{t+1}, returns R_t = A_t + V(s_t). At an episode end the next
state's value is 0 after a true termination and V(final observation) after a time-limit
truncation (the episode did not end, only the rollout of it did); after the last step of the
rollout it is the value of the observation the next rollout starts from.
"""

from __future__ import annotations

from typing import Any

import numpy as np

FIELDS = ("obs", "actions", "log_probs", "values", "rewards", "terminated", "truncated", "next_values")


class Rollout:
    def __init__(self, steps: int, obs_shape: tuple[int, ...], action_dim: int):
        self.steps = steps
        self.obs = np.zeros((steps, *obs_shape), np.float32)
        self.actions = np.zeros((steps, action_dim), np.float32)
        self.log_probs = np.zeros(steps, np.float32)
        self.values = np.zeros(steps, np.float32)
        self.rewards = np.zeros(steps, np.float32)
        self.terminated = np.zeros(steps, bool)
        self.truncated = np.zeros(steps, bool)
        self.next_values = np.zeros(steps, np.float32)  # V(final obs) where an episode was truncated
        self.size = 0

    @property
    def full(self) -> bool:
        return self.size == self.steps

    def add(self, obs, action, log_prob: float, value: float, reward: float, terminated: bool,
            truncated: bool, next_value: float = 0.0) -> None:
        i = self.size
        self.obs[i], self.actions[i], self.log_probs[i], self.values[i] = obs, action, log_prob, value
        self.rewards[i], self.terminated[i], self.truncated[i], self.next_values[i] = reward, terminated, truncated, next_value
        self.size += 1

    def advantages(self, last_value: float, gamma: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
        """(advantages, returns) of the full rollout; `last_value`: V of the next observation."""
        adv = np.zeros(self.steps, np.float32)
        gae = 0.0
        for t in reversed(range(self.steps)):
            if self.terminated[t]:
                next_value = 0.0
            elif self.truncated[t]:
                next_value = self.next_values[t]
            else:
                next_value = last_value if t == self.steps - 1 else self.values[t + 1]
            delta = self.rewards[t] + gamma * next_value - self.values[t]
            done = self.terminated[t] or self.truncated[t]
            gae = delta + gamma * lam * (0.0 if done else gae)
            adv[t] = gae
        return adv, adv + self.values

    def clear(self) -> None:
        self.size = 0

    def state_dict(self) -> dict[str, Any]:
        return {**{name: getattr(self, name)[: self.size].copy() for name in FIELDS}, "size": self.size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        n = int(state["size"])
        for name in FIELDS:
            getattr(self, name)[:n] = state[name]
        self.size = n


class RunningMeanStd:
    """Running mean and variance (Chan et al.'s parallel update), for observation and reward scaling."""

    def __init__(self, shape: tuple[int, ...] = ()):
        self.mean, self.var, self.count = np.zeros(shape, np.float64), np.ones(shape, np.float64), 1e-4

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, np.float64).reshape(-1, *self.mean.shape)
        batch_mean, batch_var, n = x.mean(0), x.var(0), x.shape[0]
        delta, total = batch_mean - self.mean, self.count + n
        self.mean = self.mean + delta * n / total
        self.var = (self.var * self.count + batch_var * n + delta**2 * self.count * n / total) / total
        self.count = total

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": float(self.count)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean, self.var, self.count = np.array(state["mean"]), np.array(state["var"]), float(state["count"])
