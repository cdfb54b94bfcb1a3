"""What the runner asks of an agent (Dopamine's agent/runner split), and what it hands over.

The runner steps the environment, evaluates, accounts and checkpoints; the agent decides how it
acts (random warm-up, exploration), what it stores (a replay buffer, a rollout) and when it
trains. One training step of the runner is:

    action = agent.act(obs, explore=True)
    next_obs, reward, terminated, truncated, _ = env.step(action)
    agent.observe(Transition(obs, action, reward, next_obs, terminated, truncated))
    for _ in range(agent.updates_due(step)):
        agent.update()

`networks` are the agent's trained networks as the sparse library sees them: the unit of
accounting (parameters, FLOPs from each network's own gradient-step count) and of metric names.
`probe_inputs()` hands the runner each network's inputs on the latest training batch, on which
it measures dormant neurons (dsrl_platform/neurons.py) at every evaluation.
`state_dict()` holds everything the rest of the run depends on, buffer and RNGs included, as
plain data: tensors, numpy arrays, numbers, strings, lists and dicts (train/checkpoint.py
stores it without pickling code).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import gymnasium as gym
import numpy as np

from dsrl_platform.sparse.network import SparseNetwork


class Transition(NamedTuple):
    obs: np.ndarray
    action: np.ndarray | int
    reward: float
    next_obs: np.ndarray
    terminated: bool  # a true end of the episode: no bootstrapping from next_obs
    truncated: bool  # cut by a time limit: next_obs still has a value


@dataclass(frozen=True)
class Spaces:
    """What an agent needs to know of its environment's observation and action spaces."""

    obs_shape: tuple[int, ...]
    obs_dtype: str  # numpy dtype name: float32 for vectors, uint8 for Atari frames, bool for MinAtar
    discrete: bool
    action_dim: int  # continuous: size of the action vector; discrete: number of actions
    action_low: tuple[float, ...] = ()
    action_high: tuple[float, ...] = ()

    @classmethod
    def of(cls, env: gym.Env) -> Spaces:
        obs, act = env.observation_space, env.action_space
        dtype = np.dtype(obs.dtype).name if obs.dtype is not None else "float32"
        if dtype.startswith("float"):
            dtype = "float32"
        if isinstance(act, gym.spaces.Discrete):
            return cls(tuple(obs.shape), dtype, True, int(act.n))
        return cls(tuple(obs.shape), dtype, False, int(act.shape[0]),
                   tuple(float(x) for x in act.low), tuple(float(x) for x in act.high))

    @property
    def obs_dim(self) -> int:
        return int(np.prod(self.obs_shape))


class Agent(Protocol):
    networks: Mapping[str, SparseNetwork]
    acting_network: str  # the network whose forward pass chooses an action (cost per action)

    def act(self, obs: np.ndarray, explore: bool) -> np.ndarray | int: ...

    def observe(self, transition: Transition) -> None: ...

    def updates_due(self, step: int) -> int:
        """How many `update()` calls are due now that `step` environment steps are done."""
        ...

    def update(self) -> Mapping[str, Any]: ...

    def probe_inputs(self) -> Mapping[str, tuple[Any, ...]]:
        """Per network, the inputs of its forward on the latest training batch (empty before the
        first update): the batch at hand for dormant-neuron statistics."""
        ...

    def evaluation_metrics(self) -> Mapping[str, float]:
        """The agent's own numbers for each evaluation (replay size, neurons recycled, …)."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...
