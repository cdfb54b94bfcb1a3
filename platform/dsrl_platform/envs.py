"""gymnasium environments: creation, id checks, and exact mid-episode resume."""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np


def check_env_id(env_id: str, field_name: str = "env") -> None:
    """Cheap registry check (no simulator started); ValueError naming the field."""
    spec = gym.envs.registry.get(env_id)
    if spec is not None and "mujoco_py" not in str(spec.entry_point):
        return
    family = env_id.split("-")[0]
    versions = sorted(k for k, v in gym.envs.registry.items()
                      if k.split("-")[0] == family and "mujoco_py" not in str(v.entry_point))
    hint = f" (available: {', '.join(versions)})" if versions else ""
    old = " MuJoCo -v2/-v3 need mujoco-py, which gymnasium no longer supports; use -v4 (same curves as v3) or -v5." if env_id.endswith(("-v2", "-v3")) and versions else ""
    raise ValueError(f"{field_name}: unknown environment {env_id!r}{hint}.{old}")


def make_env(env_id: str) -> gym.Env:
    check_env_id(env_id)
    with warnings.catch_warnings():  # -v4 is chosen on purpose: it has v3's learning curves
        warnings.filterwarnings("ignore", message=".*is out of date.*")
        env = gym.make(env_id)
    if not isinstance(env.action_space, gym.spaces.Box):
        raise ValueError(f"env: {env_id} has a discrete action space; td3 and sac need continuous actions")
    return env


@functools.lru_cache(maxsize=None)
def env_dims(env_id: str) -> tuple[int, int]:
    """(observation size, action size), from the spaces of a freshly made env."""
    env = make_env(env_id)
    try:
        return env.observation_space.shape[0], env.action_space.shape[0]
    finally:
        env.close()


@dataclass
class EpisodeReplay:
    """Makes a training environment resumable mid-episode, for any deterministic env.

    Records the environment's RNG state before each reset and the actions taken since; a
    restored environment is reset from that RNG state and the actions are replayed. This avoids
    reaching into simulator internals (MuJoCo state, TimeLimit counters, wrappers).
    """

    rng_state: dict | None = None
    actions: list[np.ndarray] = field(default_factory=list)

    def reset(self, env: gym.Env, seed: int | None = None):
        if seed is not None:
            obs, _ = env.reset(seed=seed)  # seeds env.np_random; recorded below for replays
            self.rng_state = None
            self._seed = seed
        else:
            self.rng_state = env.unwrapped.np_random.bit_generator.state
            self._seed = None
            obs, _ = env.reset()
        self.actions = []
        return obs

    def record(self, action: np.ndarray) -> None:
        self.actions.append(np.array(action, copy=True))

    def state_dict(self) -> dict:
        return {"rng_state": self.rng_state, "seed": self._seed, "actions": np.array(self.actions)}

    def restore(self, env: gym.Env, state: dict):
        """Bring `env` to the recorded point of the episode; returns the current observation."""
        if state["seed"] is not None:
            obs, _ = env.reset(seed=state["seed"])
        else:
            env.reset(seed=0)  # creates np_random, then overwritten with the recorded state
            env.unwrapped.np_random.bit_generator.state = state["rng_state"]
            obs, _ = env.reset()
        self.rng_state, self._seed, self.actions = state["rng_state"], state["seed"], []
        for action in state["actions"]:
            obs, *_ = env.step(action)
            self.record(action)
        return obs
