"""What the replay-based agents (TD3, SAC, DQN) share: options, buffer, warm-up, update schedule.

A `ReplayAgent` acts at random for `warmup_steps`, stores every transition, and makes one
update every `train_every` environment steps after the warm-up. Its random choices (warm-up
actions, minibatch indices) draw from one numpy generator seeded with the run's seed; network
noise (exploration, target smoothing) from a torch generator seeded with seed + 1.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, model_validator
from torch import nn

from dsrl_platform import names
from dsrl_platform.agents.protocol import Spaces, Transition
from dsrl_platform.agents.sparsity import build_group_network, build_sparse_network
from dsrl_platform.buffers.batch import Batch
from dsrl_platform.buffers.frames import FrameReplay
from dsrl_platform.buffers.replay import ReplayBuffer
from dsrl_platform.config import Resolved, RunConfig
from dsrl_platform.methods import METHODS
from dsrl_platform.neurons import ReDo
from dsrl_platform.sparse.network import SparseNetwork


class OffPolicyConfig(RunConfig):
    """Options of the agents that learn from a replay buffer."""

    warmup_steps: int | None = Field(None, ge=0, description="random-action steps before the first update (Sokar: 25000; Graesser: 1000)")
    batch_size: int | None = Field(None, gt=0, description="minibatch size")
    buffer_size: int = Field(1_000_000, gt=0, description="replay capacity in transitions")
    train_every: int = Field(1, gt=0, description="environment steps per gradient update after the warm-up")
    tau: float | None = Field(None, gt=0, le=1, description="target update rate (1: a hard copy)")
    target_update_every: int | None = Field(None, gt=0, description="gradient steps between target updates")
    sparse_targets: Literal["off", "topk", "mask"] | None = Field(None, description="target networks' sparsity: topk keeps each target layer's k largest weights, k = online nonzeros (Sokar; default for ds); mask multiplies targets by the online masks (cheaper); off")

    @model_validator(mode="after")
    def _check_budget(self) -> OffPolicyConfig:
        if self.warmup_steps is not None and self.steps <= self.warmup_steps:
            raise ValueError(f"steps: the budget ({self.steps}) must exceed warmup_steps ({self.warmup_steps})")
        if None not in (self.batch_size, self.buffer_size) and self.buffer_size < self.batch_size:
            raise ValueError(f"buffer_size: {self.buffer_size} is smaller than one batch ({self.batch_size})")
        if self.sparse_targets is not None and not METHODS[self.method].sparse:
            raise ValueError("sparse_targets: the dense method has no masks for its targets")
        return self

    def grad_step_at(self, env_step: int) -> int:
        return max(env_step - self.warmup_steps, 0) // self.train_every

    def first_update_step(self) -> int:
        return self.warmup_steps + self.train_every

    def algorithm_defaults(self) -> dict[str, Any]:
        method = METHODS[self.method]
        return {"sparse_targets": method.target_rule} if method.sparse else {}


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: cuda requested but no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def make_adam(params, cfg: Resolved, **extra: Any) -> torch.optim.Adam:
    # Fused Adam: one kernel for all of a network's tensors (CPU and CUDA).
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True, **extra)


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """No weight gradients for `module` (the critic inside the actor loss): saves its dW work."""
    params = list(module.parameters())
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def make_replay(spaces: Spaces, capacity: int, behaviour_dim: int | None = None) -> ReplayBuffer | FrameReplay:
    """Stacked uint8 frames (Atari) share their frames; everything else is stored as it comes."""
    if spaces.obs_dtype == "uint8" and len(spaces.obs_shape) == 3:
        return FrameReplay(spaces.obs_shape, capacity)
    return ReplayBuffer(spaces.obs_shape, capacity, obs_dtype=spaces.obs_dtype,
                        action_dim=None if spaces.discrete else spaces.action_dim, behaviour_dim=behaviour_dim)


def make_recycler(cfg: Resolved, networks: dict[str, SparseNetwork]) -> ReDo | None:
    """ReDo over the agent's networks (filled in later) when `redo` is on; its draws from its own
    generator (seed + 5): switching it on changes no other random stream."""
    return ReDo(networks, cfg.redo_every, cfg.dormant_threshold, torch.Generator().manual_seed(cfg.seed + 5)) \
        if cfg.redo else None


@dataclass
class Member:
    """One agent of a group: its config (its seed) and random streams; a replay agent's member
    also its buffer. Members never share data or randomness."""

    cfg: Resolved
    init: torch.Generator  # weights and masks (CPU, reproducible)
    noise: torch.Generator  # exploration, target smoothing, minibatch order (PPO)
    rng: np.random.Generator  # warm-up actions, minibatch indices, ε-greedy draws
    replay: Any = None

    @classmethod
    def of(cls, cfg: Resolved, device: torch.device) -> Member:
        return cls(cfg, torch.Generator().manual_seed(cfg.seed), torch.Generator(device).manual_seed(cfg.seed + 1),
                   np.random.default_rng(cfg.seed))

    def state_dict(self) -> dict[str, Any]:
        state = {"noise": self.noise.get_state(), "rng": self.rng.bit_generator.state}
        return state if self.replay is None else {**state, "replay": self.replay.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.noise.set_state(state["noise"])
        self.rng.bit_generator.state = state["rng"]
        if self.replay is not None:
            self.replay.load_state_dict(state["replay"])


class GroupableAgent:
    """What every agent shares about being one agent or a group of them.

    Given a list of configs (the seeds of one configuration) the agent is a group: its networks
    are stacked (agents/stacked.py), each member keeps its own random streams (and buffer), and
    `act`/`observe` take one observation/transition per member. A group of one is the plain agent.
    """

    def __init__(self, cfg: Resolved | list[Resolved], spaces: Spaces):
        cfgs = cfg if isinstance(cfg, list) else [cfg]
        self.cfg, self.spaces = cfgs[0], spaces  # members share every option but the seed
        self.device = pick_device(self.cfg.device)
        self.members = [Member.of(c, self.device) for c in cfgs]
        self.grouped = len(cfgs) > 1
        if self.grouped and self.cfg.ungroupable():
            raise ValueError(f"group: {self.cfg.ungroupable()} trains one agent at a time")
        first = self.members[0]
        self.init, self.noise, self.rng = first.init, first.noise, first.rng
        self.grad_step = 0
        self.networks: dict[str, Any] = {}  # name -> SparseNetwork (a group: GroupNetwork)

    def trained_network(self, name: str, modules: list[nn.Module], make_optimizer, batch_size: int,
                        update_rate: float = 1.0):
        """The module that trains `modules` (one per member) and its sparse network: the module
        itself for one member, their stacked form for a group. (module, network)"""
        if not self.grouped:
            module = modules[0].to(self.device)
            net = build_sparse_network(name, module, make_optimizer(module), self.cfg, self.init, batch_size, update_rate)
        else:
            net = build_group_network(name, modules, [m.cfg for m in self.members], [m.init for m in self.members],
                                      make_optimizer, batch_size, update_rate, self.device)
        self.networks[name] = net
        return net.module, net

    @property
    def member_networks(self) -> list[dict[str, SparseNetwork]]:
        """Per member: its networks as the sparse library sees them (accounting, metrics)."""
        if not self.grouped:
            return [self.networks]
        return [{name: net.members[g] for name, net in self.networks.items()} for g in range(len(self.members))]

    # --- group-aware tensor helpers (one member: exactly the plain agent's operations) ---------
    def randn(self, shape) -> torch.Tensor:
        """Standard normal noise of `shape` (a group: (G, …) with each member's own stream)."""
        if not self.grouped:
            return torch.randn(shape, generator=self.noise, device=self.device)
        return torch.stack([torch.randn(shape[1:], generator=m.noise, device=self.device) for m in self.members])

    def batch_mean(self, x: torch.Tensor) -> torch.Tensor:
        """Mean over the batch (last) dimension, summed over a group's members."""
        return x.mean() if not self.grouped else x.mean(-1).sum()

    def obs_tensor(self, obs: np.ndarray) -> torch.Tensor:
        """Vectors as float32 (the buffer's dtype too); frames and grids keep theirs."""
        dtype = torch.float32 if self.spaces.obs_dtype == "float32" else None
        return torch.as_tensor(obs, dtype=dtype, device=self.device)

    def per_member(self, items) -> list:
        """`items` as a list with one entry per member (a single agent's item, wrapped)."""
        return list(items) if self.grouped else [items]


class ReplayAgent(GroupableAgent):
    """Buffer, warm-up and schedule of a replay-based agent; subclasses build `networks`."""

    acting_network = "actor"

    def __init__(self, cfg: Resolved | list[Resolved], spaces: Spaces):
        super().__init__(cfg, spaces)
        for m in self.members:
            m.replay = self.make_replay()
        self.replay = self.members[0].replay
        self.env_steps = 0
        # ReDo and the features groups do not take (spec.groupable): a single agent's
        self.recycler = None if self.grouped else make_recycler(self.cfg, self.networks)
        self.last_batch: Batch | None = None  # the latest minibatch: dormant-neuron statistics, ReDo

    def make_replay(self) -> ReplayBuffer | FrameReplay:
        return make_replay(self.spaces, min(self.cfg.buffer_size, self.cfg.steps))

    def trained_network(self, name: str, modules: list[nn.Module], make_optimizer, update_rate: float = 1.0):
        return super().trained_network(name, modules, make_optimizer, self.cfg.batch_size,
                                       update_rate / self.cfg.train_every)

    # --- the protocol --------------------------------------------------------------------
    def act(self, obs, explore: bool):
        """One action (a group: a list with one action per member, `obs` one per member)."""
        if explore and self.env_steps < self.cfg.warmup_steps:
            return ([self.random_action(m.rng) for m in self.members] if self.grouped
                    else self.random_action(self.rng))
        with torch.no_grad():
            if not self.grouped:
                return self.policy(self.obs_tensor(obs).unsqueeze(0), explore)
            x = torch.stack([self.obs_tensor(o) for o in obs]).unsqueeze(1)  # (G, 1, …)
            return self.policy(x, explore)

    def random_action(self, rng: np.random.Generator):
        s = self.spaces
        if s.discrete:
            return int(rng.integers(s.action_dim))
        return rng.uniform(np.array(s.action_low), np.array(s.action_high)).astype(np.float32)

    def observe(self, t) -> None:
        """A Transition (a group: one per member)."""
        if not self.grouped:
            self.store(t)
        else:
            for member, tr in zip(self.members, t):
                member.replay.add(tr.obs, tr.action, tr.reward, tr.next_obs, tr.terminated, tr.truncated)
        self.env_steps += 1

    def store(self, t: Transition) -> None:
        self.replay.add(t.obs, t.action, t.reward, t.next_obs, t.terminated, t.truncated)

    def updates_due(self, step: int) -> int:
        warmup = self.cfg.warmup_steps
        return int(step > warmup and (step - warmup) % self.cfg.train_every == 0)

    def update(self) -> Mapping[str, Any]:
        self.grad_step += 1
        self.last_batch = batch = self.sample_batch()
        metrics = self.learn(batch)
        if self.recycler is not None:
            self.recycler.maybe_recycle(self.grad_step, self.probe_inputs())
        return metrics

    def sample_batch(self) -> Batch:
        """A minibatch (a group: each member's from its own buffer and stream, stacked)."""
        if not self.grouped:
            return self.replay.sample(self.cfg.batch_size, self.rng, self.device)
        parts = [m.replay.sample(self.cfg.batch_size, m.rng, self.device) for m in self.members]
        return Batch(*(torch.stack(field) for field in zip(*parts)))

    def probe_inputs(self) -> dict[str, tuple[torch.Tensor, ...]]:
        """Each network's inputs on the latest minibatch (empty before the first update)."""
        return {} if self.last_batch is None else self.network_inputs(self.last_batch)

    def evaluation_metrics(self) -> dict[str, float]:
        out = {names.REPLAY_SIZE: float(self.replay.size)}
        if self.recycler is not None:
            out[names.REDO_RECYCLED] = float(self.recycler.recycled)
        return out

    # --- what an algorithm supplies ----------------------------------------------------------
    def policy(self, obs: torch.Tensor, explore: bool):
        """The action for one observation (a batch of 1; a group: (G, 1, …), a list back)."""
        raise NotImplementedError

    def learn(self, batch: Batch) -> Mapping[str, Any]:
        """One gradient update on a minibatch (self.grad_step already counts it)."""
        raise NotImplementedError

    def network_inputs(self, batch: Batch) -> dict[str, tuple[torch.Tensor, ...]]:
        """What each network's forward takes on `batch` (its hidden activations are probed)."""
        raise NotImplementedError

    # --- state -------------------------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module | torch.optim.Optimizer]:
        """Everything with a state_dict that the agent trains or keeps (networks, targets, optimizers)."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        state = {"modules": {k: m.state_dict() for k, m in self.modules().items()},
                 "sparse": {k: net.training.state_dict() for k, net in self.networks.items()},
                 "env_steps": self.env_steps, "grad_step": self.grad_step}
        if self.last_batch is not None:  # the probe of the next evaluation's dormant-neuron statistics
            state["last_batch"] = {"obs": self.last_batch.obs, "action": self.last_batch.action}
        if self.recycler is not None:
            state["redo"] = self.recycler.state_dict()
        if self.grouped:
            return {**state, "members": [m.state_dict() for m in self.members]}
        return {**state, **self.members[0].state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, m in self.modules().items():
            m.load_state_dict(state["modules"][k])
        for k, net in self.networks.items():
            net.training.load_state_dict(state["sparse"][k])
        for member, s in zip(self.members, state["members"] if self.grouped else [state], strict=True):
            member.load_state_dict(s)
        self.env_steps, self.grad_step = int(state["env_steps"]), int(state["grad_step"])
        probe = state.get("last_batch")
        self.last_batch = None if probe is None else Batch(probe["obs"].to(self.device), probe["action"].to(self.device),
                                                            None, None, None)
        if self.recycler is not None:
            self.recycler.load_state_dict(state["redo"])


def threads_warning(cfg: RunConfig) -> str | None:
    cores = os.cpu_count() or 1
    return f"threads: {cfg.threads} torch threads on a {cores}-core machine" if cfg.threads > cores else None
