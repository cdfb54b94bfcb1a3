"""Replay of stacked-frame observations that stores every frame once (Dopamine's circular buffer).

An Atari observation is the last 4 frames (4, 84, 84) uint8; consecutive observations share 3 of
them. Storing obs and next_obs whole costs 8 frames per transition (a 100k buffer: 5.6 GB);
this buffer stores one (706 MB) and rebuilds the stacks when sampling.

Slot g (global count, slot g % capacity) holds the newest frame of the observation at which
transition g acted, its action, reward and termination, and the global index `start` of its
episode's first slot. The stack of slot g is the frames of slots max(start, g−3) … g — an
episode's first observation repeats its first frame, as gymnasium's FrameStackObservation pads
it. The next observation of transition g is the stack ending at slot g+1; when the episode
ended there, an extra slot (not a transition of its own) holds the final frame, so truncated
episodes still bootstrap from their real last observation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dsrl_platform.buffers.batch import Batch

_FIELDS = ("frames", "actions", "rewards", "not_done", "start", "valid")


class FrameReplay:
    def __init__(self, obs_shape: tuple[int, ...], capacity: int, obs_dtype: str = "uint8"):
        self.stack, *frame_shape = obs_shape
        self.capacity = capacity
        self.frames = np.empty((capacity, *frame_shape), obs_dtype)
        self.actions = np.empty(capacity, np.int64)
        self.rewards = np.empty((capacity, 1), np.float32)
        self.not_done = np.empty((capacity, 1), np.float32)
        self.start = np.empty(capacity, np.int64)  # global index of the episode's first slot
        self.valid = np.zeros(capacity, bool)  # False: an episode's final frame, not a transition
        self.written = 0  # slots written so far (global)
        self._episode_start: int | None = None  # None: the next transition starts an episode

    @property
    def size(self) -> int:
        return min(self.written, self.capacity)

    def _write(self, frame, action: int, reward: float, not_done: float, valid: bool) -> None:
        i = self.written % self.capacity
        self.frames[i], self.actions[i], self.rewards[i], self.not_done[i] = frame, action, reward, not_done
        self.start[i], self.valid[i] = self._episode_start, valid
        self.written += 1

    def add(self, obs, action, reward: float, next_obs, terminated: bool, truncated: bool = False) -> None:
        if self._episode_start is None:
            self._episode_start = self.written
        self._write(obs[-1], action, reward, 0.0 if terminated else 1.0, True)
        if terminated or truncated:
            self._write(next_obs[-1], 0, 0.0, 0.0, False)
            self._episode_start = None

    def _stacks(self, g: np.ndarray) -> np.ndarray:
        """(B, stack, H, W): the observation stacks ending at global slots g."""
        offsets = np.arange(self.stack) - (self.stack - 1)
        positions = np.maximum(g[:, None] + offsets[None, :], self.start[g % self.capacity][:, None])
        return self.frames[positions % self.capacity]

    def sample(self, batch_size: int, rng: np.random.Generator, device: torch.device) -> Batch:
        """(obs, actions, rewards, next_obs, not_done) of `batch_size` uniform draws among the
        transitions whose frames are all still in the buffer."""
        low = max(0, self.written - self.capacity + self.stack - 1)
        high = self.written - 1  # exclusive: transition g needs slot g + 1
        if high <= low:
            raise RuntimeError("replay: not enough frames to sample from")
        g = rng.integers(low, high, size=batch_size)
        bad = ~self.valid[g % self.capacity]
        while bad.any():  # final-frame slots are not transitions: draw again (deterministic)
            g[bad] = rng.integers(low, high, size=int(bad.sum()))
            bad = ~self.valid[g % self.capacity]
        i = g % self.capacity
        as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device, non_blocking=True)  # noqa: E731
        return Batch(as_t(self._stacks(g)), as_t(self.actions[i]), as_t(self.rewards[i]), as_t(self._stacks(g + 1)),
                     as_t(self.not_done[i]))

    def state_dict(self) -> dict[str, Any]:
        n = self.size
        return {**{name: getattr(self, name)[:n] for name in _FIELDS}, "written": self.written,
                "episode_start": -1 if self._episode_start is None else self._episode_start}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        n = len(state["frames"])
        if n > self.capacity or state["frames"].shape[1:] != self.frames.shape[1:]:
            raise ValueError(f"replay: checkpoint holds {n} frames of shape {state['frames'].shape[1:]}, "
                             f"this buffer {self.capacity} of {self.frames.shape[1:]}")
        for name in _FIELDS:
            getattr(self, name)[:n] = state[name]
        self.written = int(state["written"])
        start = int(state["episode_start"])
        self._episode_start = None if start < 0 else start
