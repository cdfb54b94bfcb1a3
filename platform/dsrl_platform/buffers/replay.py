"""Uniform replay buffer in preallocated numpy arrays (pages are touched only when filled).

Observations keep their own dtype (float32 vectors, bool MinAtar grids); discrete actions are
stored as integers. Atari frames use the frame-sharing buffer in buffers/frames.py instead.

A ring: the live transitions are the `size` slots before `pos`. RLx2's dynamic capacity
(buffers/capacity.py) may drop the oldest ones (`drop_oldest`), so `size` can be below the
capacity while the ring has wrapped. Minibatches are one-step transitions (`sample`) or
n-step returns (`sample_n_step`, buffers/nstep.py); each slot remembers whether the episode
ended there (terminated or cut by a time limit), where an n-step window stops.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dsrl_platform.buffers.batch import Batch, NStepWindow, WindowedBatch
from dsrl_platform.buffers.nstep import n_step_window

FIELDS = ("obs", "next_obs", "actions", "rewards", "not_done", "episode_end")


class ReplayBuffer:
    def __init__(self, obs_shape: tuple[int, ...], capacity: int, *, action_dim: int | None = None,
                 obs_dtype: str = "float32", behaviour_dim: int | None = None):
        """`action_dim` None: discrete actions (one int64 each); else float32 vectors.
        `behaviour_dim`: also keep the behaviour policy's deterministic action per transition
        (RLx2's policy distance compares it with the current policy's)."""
        self.capacity = capacity
        self.obs = np.empty((capacity, *obs_shape), obs_dtype)
        self.next_obs = np.empty((capacity, *obs_shape), obs_dtype)
        self.actions = (np.empty(capacity, np.int64) if action_dim is None
                        else np.empty((capacity, action_dim), np.float32))
        self.rewards = np.empty((capacity, 1), np.float32)
        self.not_done = np.empty((capacity, 1), np.float32)  # 0 only at true terminations
        self.episode_end = np.empty(capacity, bool)  # terminated or truncated: an n-step window ends here
        self.behaviour = None if behaviour_dim is None else np.empty((capacity, behaviour_dim), np.float32)
        self.size = 0  # live transitions
        self.pos = 0  # the next slot written
        self.filled = 0  # slots that hold data, live or dropped (what a checkpoint stores)

    @property
    def fields(self) -> tuple[str, ...]:
        return FIELDS + (("behaviour",) if self.behaviour is not None else ())

    def add(self, obs, action, reward: float, next_obs, terminated: bool, truncated: bool = False,
            behaviour=None) -> None:
        i = self.pos
        self.obs[i], self.actions[i], self.rewards[i] = obs, action, reward
        self.next_obs[i], self.not_done[i] = next_obs, 0.0 if terminated else 1.0
        self.episode_end[i] = terminated or truncated
        if self.behaviour is not None:
            self.behaviour[i] = behaviour
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        self.filled = min(self.filled + 1, self.capacity)

    # --- the live region -----------------------------------------------------------------
    @property
    def start(self) -> int:
        """Slot of the oldest live transition."""
        return (self.pos - self.size) % self.capacity

    def oldest(self, n: int) -> np.ndarray:
        """Slots of the n oldest live transitions, oldest first."""
        return (self.start + np.arange(min(n, self.size))) % self.capacity

    def drop_oldest(self, n: int) -> None:
        """Forget the n oldest transitions (their slots are written again as the ring comes round)."""
        self.size -= min(n, self.size)

    def _draw(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        r = rng.integers(0, self.size, size=batch_size)
        # A full ring, or one never cut at the front, is slots [0, size): a draw is its slot, as
        # it was before the front could be dropped (the same seed gives the same minibatches).
        return r if self.size == self.capacity or self.start == 0 else (self.start + r) % self.capacity

    # --- minibatches ---------------------------------------------------------------------
    def sample(self, batch_size: int, rng: np.random.Generator, device: torch.device) -> Batch:
        """`batch_size` uniform draws of one-step transitions."""
        idx = self._draw(batch_size, rng)
        as_t = lambda a: torch.from_numpy(a[idx]).to(device, non_blocking=True)  # noqa: E731
        return Batch(as_t(self.obs), as_t(self.actions), as_t(self.rewards), as_t(self.next_obs), as_t(self.not_done))

    def sample_n_step(self, batch_size: int, rng: np.random.Generator, device: torch.device, n: int,
                      gamma: float, window: bool = False) -> Batch:
        """n-step minibatch from the same draws as `sample` (buffers/nstep.py, buffers/batch.py):
        (obs, actions, Σ_k γ^k r_{t+k}, s_{t+m}, γ^(m−1)·not_done_{t+m−1}), so that
        reward + γ·not_done·V(next_obs) is the n-step target; `window`: with its inner states."""
        first = self._draw(batch_size, rng)
        newest = (self.pos - 1) % self.capacity
        slots, inside = n_step_window(first, n, self.episode_end, newest, self.capacity)
        m = inside.sum(axis=1)
        last = slots[np.arange(batch_size), m - 1]
        powers = gamma ** np.arange(n)
        reward = (self.rewards[slots, 0] * inside * powers).sum(axis=1, keepdims=True).astype(np.float32)
        not_done = (self.not_done[last, 0] * gamma ** (m - 1))[:, None].astype(np.float32)
        inner_weight = (inside[:, 1:] * powers[1:]).astype(np.float32)  # γ^j for s_{t+j} inside, j = 1..n-1
        as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device, non_blocking=True)  # noqa: E731
        fields = (as_t(self.obs[first]), as_t(self.actions[first]), as_t(reward), as_t(self.next_obs[last]),
                  as_t(not_done))
        if not window:
            return Batch(*fields)
        return WindowedBatch(*fields, window=NStepWindow(as_t(self.next_obs[slots[:, :-1]]), as_t(inner_weight)))

    # --- checkpoints ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        n = self.filled
        return {**{name: getattr(self, name)[:n] for name in self.fields}, "pos": self.pos, "size": self.size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        n = len(state["obs"])
        if n > self.capacity or state["obs"].shape[1:] != self.obs.shape[1:]:
            raise ValueError(f"replay: checkpoint holds {n} transitions of shape {state['obs'].shape[1:]}, "
                             f"this buffer {self.capacity} of {self.obs.shape[1:]}")
        for name in self.fields:
            if name in state:
                getattr(self, name)[:n] = state[name]
            elif name == "episode_end":  # a checkpoint from before n-step returns: only terminations known
                self.episode_end[:n] = state["not_done"][:, 0] == 0
            else:
                raise ValueError(f"replay: checkpoint has no {name!r} (made without the dynamic buffer)")
        self.filled, self.pos = n, int(state["pos"])
        self.size = int(state.get("size", n))
