"""Exact mid-episode resume for any deterministic environment, without its internals."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np


@dataclass
class EpisodeReplay:
    """Makes a training environment resumable mid-episode.

    Records how the current episode began and the actions taken since; a restored environment
    is reset the same way and the actions are replayed. How an episode begins: from the env's
    np_random state before the reset (gymnasium's own envs), or — `reseed` — from a seed of its
    own, derived from the run's seed and the episode's number (for envs whose randomness lives
    outside np_random, such as ALE's sticky actions). The first episode is seeded with the run's
    seed either way. This avoids reaching into simulator internals (MuJoCo state, TimeLimit
    counters, wrappers).
    """

    reseed: bool = False
    rng_state: dict | None = None
    seed: int | None = None
    episode: int = 0
    actions: list[Any] = field(default_factory=list)

    def reset(self, env: gym.Env, seed: int | None = None):
        if seed is not None:
            self.base_seed, self.episode = seed, 0
        else:
            self.episode += 1
        if seed is not None or self.reseed:
            self.seed, self.rng_state = self._episode_seed(), None
            obs, _ = env.reset(seed=self.seed)
        else:
            self.seed, self.rng_state = None, env.unwrapped.np_random.bit_generator.state
            obs, _ = env.reset()
        self.actions = []
        return obs

    def _episode_seed(self) -> int:
        if self.episode == 0:
            return self.base_seed
        return int(np.random.SeedSequence([self.base_seed, self.episode]).generate_state(1)[0] >> 1)

    def record(self, action) -> None:
        self.actions.append(np.array(action, copy=True))

    def state_dict(self) -> dict:
        return {"rng_state": self.rng_state, "seed": self.seed, "base_seed": self.base_seed,
                "episode": self.episode, "actions": np.array(self.actions)}

    def restore(self, env: gym.Env, state: dict):
        """Bring `env` to the recorded point of the episode; returns the current observation."""
        if state["seed"] is not None:
            obs, _ = env.reset(seed=state["seed"])
        else:
            env.reset(seed=0)  # creates np_random, then overwritten with the recorded state
            env.unwrapped.np_random.bit_generator.state = state["rng_state"]
            obs, _ = env.reset()
        self.rng_state, self.seed, self.actions = state["rng_state"], state["seed"], []
        self.base_seed, self.episode = int(state["base_seed"]), int(state["episode"])
        for action in state["actions"]:
            obs, *_ = env.step(action.item() if action.ndim == 0 else action)
            self.record(action)
        return obs
