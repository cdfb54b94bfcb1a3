"""gymnasium environments: creation, id checks, and exact mid-episode resume."""

from __future__ import annotations

import contextlib
import difflib
import functools
import tempfile
import warnings
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np


def check_env_id(env_id: str, field_name: str | None = "env") -> None:
    """An id gymnasium knows and can run here (cheap: no simulator started); ValueError naming
    the field. MuJoCo -v2/-v3 are registered but need the dead mujoco-py."""
    prefix = f"{field_name}: " if field_name else ""
    spec = gym.envs.registry.get(env_id)
    if spec is None:
        close = difflib.get_close_matches(env_id, list(gym.envs.registry), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ValueError(f"{prefix}unknown environment {env_id!r}{hint}")
    if "mujoco_py" in getattr(spec.entry_point, "__name__", str(spec.entry_point)):
        raise ValueError(f"{prefix}{env_id} needs mujoco-py, which gymnasium {gym.__version__} cannot run; "
                         f"use {spec.name}-v4 (the papers' v3 dynamics, same learning curves) or {spec.name}-v5")


def make_env(env_id: str) -> gym.Env:
    check_env_id(env_id)
    with warnings.catch_warnings():  # -v4 is chosen on purpose: it has v3's learning curves
        warnings.filterwarnings("ignore", message=".*is out of date.*")
        env = gym.make(env_id)
    if not isinstance(env.action_space, gym.spaces.Box):
        raise ValueError(f"env: {env_id} has a discrete action space; td3 and sac need continuous actions")
    return env


@functools.cache
def env_dims(env_id: str) -> tuple[int, int]:
    """(observation size, action size), from the spaces of a freshly made env.

    Made in a scratch directory: MuJoCo writes its warnings (e.g. Humanoid's deprecated
    settotalmass) to MUJOCO_LOG.TXT in the working directory, and validating leaves no file."""
    with tempfile.TemporaryDirectory() as scratch, contextlib.chdir(scratch):
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
