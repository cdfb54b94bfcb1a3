"""What TD3 and SAC share: an actor and a twin critic, their optimizers, targets and steps.

An algorithm subclass supplies its actor head (`actor_out_factor`), its `policy` and its
`learn(batch)`; networks, sparse training, target updates and state live here once.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from dsrl_platform import names
from dsrl_platform.agents.base import OffPolicyConfig, ReplayAgent, make_adam, make_replay
from dsrl_platform.agents.networks import INITS, MLP, TwinCritic
from dsrl_platform.agents.protocol import Spaces, Transition
from dsrl_platform.agents.targets import Targets
from dsrl_platform.buffers.batch import Batch
from dsrl_platform.buffers.capacity import SAMPLES_PER_BATCH, DynamicCapacity
from dsrl_platform.config import Resolved
from dsrl_platform.methods import METHODS


class ActorCriticConfig(OffPolicyConfig):
    """Options of TD3 and SAC: an actor and a twin critic, each with its own sparsity.

    `preset` picks whose training setup the options left unset follow: Sokar et al.'s (the
    default) or Graesser et al.'s TF-Agents SAC (papers.md D4, D5): Glorot-uniform init with zero
    biases, Keras L2 on every kernel (1e-4 dense and pruning, 1e-6 sparse), warm-up 1000,
    reward scale 0.1, critic loss weight 0.5, a learned temperature (SAC), and for the sparse
    methods ERK 90% over every layer, sparse-fan init and masked targets.
    """

    networks = ("actor", "critic")

    preset: Literal["sokar", "graesser"] = Field("sokar", description="training setup of the unset options: sokar (Sokar et al.'s TD3/SAC) or graesser (Graesser et al.'s TF-Agents SAC)")
    actor_sparsity: float | None = Field(None, ge=0, lt=1, description="actor's sparsity, overriding `sparsity`")
    critic_sparsity: float | None = Field(None, ge=0, lt=1, description="critics' sparsity, overriding `sparsity`")
    actor_width: float | None = Field(None, gt=0, description="actor's width multiplier, overriding `width`")
    critic_width: float | None = Field(None, gt=0, description="critics' width multiplier, overriding `width`")
    init: Literal["torch_default", "glorot_uniform"] | None = Field(None, description="weight init: PyTorch's default (Sokar) or Glorot uniform with zero biases (Graesser)")
    l2_kernels_only: bool | None = Field(None, description="weight_decay as Keras L2 wd·Σw² on the weight matrices only (Graesser) instead of Adam's decay on every parameter (Sokar)")
    reward_scale: float | None = Field(None, gt=0, description="rewards are multiplied by this in the TD target (Graesser's SAC: 0.1)")
    critic_loss_weight: float | None = Field(None, gt=0, description="weight of the critics' loss (Graesser's SAC: 0.5)")
    # --- RLx2's delayed multi-step targets and dynamic-capacity replay (Tan et al. 2023) -----
    n_step: int | None = Field(None, ge=1, description="TD targets over n-step returns, cut at episode ends and time limits (1: one-step; rlx2: 3)")
    n_step_start: int | None = Field(None, ge=0, description="environment step from which the targets are n-step (rlx2: after 300,000 updates, warmup_steps + 300,000; else 0)")
    dynamic_buffer: bool | None = Field(None, description="RLx2's dynamic-capacity replay: the oldest 10% dropped when the policy has moved away from them (on for rlx2)")
    buffer_min_size: int | None = Field(None, gt=0, description="dynamic buffer: never shrunk below this many transitions; buffer_size is the maximum (RLx2: TD3 1e5, SAC 2e5)")
    buffer_check_every: int | None = Field(None, gt=0, description="dynamic buffer: environment steps between policy-distance checks (RLx2: 10,000)")
    buffer_threshold: float | None = Field(None, gt=0, description="dynamic buffer: policy distance ½·mean (π(s) − a)² on the oldest 8 batches above which they are dropped (RLx2: 0.2)")

    def graesser_setting(self) -> bool:
        return self.preset == "graesser"

    def ungroupable(self) -> str | None:
        if self.n_step and self.n_step > 1:
            return "n_step (RLx2's multi-step targets)"
        if self.dynamic_buffer:
            return "dynamic_buffer (RLx2's dynamic-capacity replay)"
        return super().ungroupable()

    def own_defaults(self) -> dict[str, Any]:
        """The algorithm's values under Sokar's setup (TD3's, SAC's)."""
        return {}

    def algorithm_defaults(self) -> dict[str, Any]:
        if self.preset == "graesser":
            sparse = METHODS[self.method].sparse and not METHODS[self.method].starts_dense
            own = {"warmup_steps": 1000, "init": "glorot_uniform", "l2_kernels_only": True, "reward_scale": 0.1,
                   "critic_loss_weight": 0.5, "weight_decay": 1e-6 if sparse else 1e-4}
        else:
            own = {"warmup_steps": 25_000, "init": "torch_default", "l2_kernels_only": False, "reward_scale": 1.0,
                   "critic_loss_weight": 1.0}
        return {**super().algorithm_defaults(), **self.own_defaults(), **own, **self._rlx2_defaults(own)}

    def _rlx2_defaults(self, own: dict[str, Any]) -> dict[str, Any]:
        """RLx2's multi-step targets and dynamic buffer: on for its method, off otherwise."""
        on, d = METHODS[self.method].family == "rlx2", self.rlx2
        warmup = own["warmup_steps"] if self.warmup_steps is None else self.warmup_steps
        return {"n_step": d.n_step if on else 1, "dynamic_buffer": on,
                "n_step_start": warmup + d.n_step_start_updates * self.train_every if on else 0,
                "buffer_min_size": d.buffer_min_size, "buffer_check_every": d.buffer_check_every,
                "buffer_threshold": d.buffer_threshold}

    @classmethod
    def drop_unused(cls, values: dict[str, Any]) -> None:
        super().drop_unused(values)
        if values["n_step"] == 1:
            values["n_step_start"] = None
        if not values["dynamic_buffer"]:
            values.update(buffer_min_size=None, buffer_check_every=None, buffer_threshold=None)




class ActorCritic(ReplayAgent):
    actor_out_factor = 1  # SAC's actor outputs mean and log-std
    uses_window = False  # its n-step target needs the inner states of the window (SAC's entropy)

    @classmethod
    def build_modules(cls, cfg: Resolved, spaces: Spaces, generator: torch.Generator | None) -> dict[str, nn.Module]:
        """The online networks (also built on the meta device to check shapes)."""
        obs_dim, act_dim = spaces.obs_dim, spaces.action_dim
        init = INITS[cfg.init]
        return {"actor": MLP(obs_dim, cfg.hidden_for("actor"), act_dim * cls.actor_out_factor, generator, "actor", init),
                "critic": TwinCritic(obs_dim + act_dim, cfg.hidden_for("critic"), generator, init=init)}

    def __init__(self, cfg: Resolved | list[Resolved], spaces: Spaces):
        first = cfg[0] if isinstance(cfg, list) else cfg
        self.capacity = (DynamicCapacity(first.buffer_check_every, SAMPLES_PER_BATCH * first.batch_size,
                                         first.buffer_threshold, first.buffer_min_size)
                         if first.dynamic_buffer else None)
        self.behaviour: np.ndarray | None = None  # the latest exploring action's deterministic part
        super().__init__(cfg, spaces)
        cfg = self.cfg
        self.n_step_from = cfg.grad_step_at(cfg.n_step_start) if cfg.n_step > 1 else None
        low, high = np.array(spaces.action_low), np.array(spaces.action_high)
        self.action_scale = torch.as_tensor((high - low) / 2, dtype=torch.float32, device=self.device)
        self.action_bias = torch.as_tensor((high + low) / 2, dtype=torch.float32, device=self.device)

        members = [self.build_modules(m.cfg, spaces, m.init) for m in self.members]  # each from its own stream
        make = lambda module: make_adam(self._param_groups(module), cfg)  # noqa: E731
        self.actor, self.actor_net = self.trained_network("actor", [m["actor"] for m in members], make,
                                                          self.actor_updates_per_grad_step())
        self.critic, self.critic_net = self.trained_network("critic", [m["critic"] for m in members], make)
        self.actor_opt, self.critic_opt = self.actor_net.training.optimizer, self.critic_net.training.optimizer
        # Targets start as copies of the (already masked) online networks.
        self.targets = Targets([self.actor_net, self.critic_net], cfg.sparse_targets)
        self.actor_target, self.critic_target = self.targets.modules

    def _param_groups(self, module: nn.Module):
        """Adam's decay on every parameter (Sokar), or Keras L2 wd·Σw² on the weight matrices
        only, whose gradient 2·wd·w is Adam's coupled decay 2·wd on them (Graesser)."""
        if not self.cfg.l2_kernels_only:
            return module.parameters()
        kernels = {id(w.layer.param) for w in module.weight_layers()}  # (a stacked module: member 0's regions)
        return [{"params": [p for p in module.parameters() if id(p) in kernels], "weight_decay": 2 * self.cfg.weight_decay},
                {"params": [p for p in module.parameters() if id(p) not in kernels], "weight_decay": 0.0}]

    def td_reward(self, reward: torch.Tensor) -> torch.Tensor:
        """(batch,) rewards as the TD target uses them (a group: (G, batch))."""
        reward = reward.squeeze(-1)
        return reward if self.cfg.reward_scale == 1.0 else reward * self.cfg.reward_scale

    def critic_loss(self, q: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Both heads' squared TD errors (weighted: Graesser's SAC halves them); q (2, B) and y
        (B,), a group's q (G, 2, B) and y (G, B): the members' losses summed."""
        if self.grouped:
            loss = (q - y.unsqueeze(-2)).pow(2).mean(-1).sum()
        else:
            loss = F.mse_loss(q[0], y) + F.mse_loss(q[1], y)
        return loss if self.cfg.critic_loss_weight == 1.0 else loss * self.cfg.critic_loss_weight

    def actor_updates_per_grad_step(self) -> float:
        raise NotImplementedError

    # --- acting -------------------------------------------------------------------------
    def scale(self, squashed: torch.Tensor) -> torch.Tensor:
        """[-1, 1] → the environment's action box."""
        return squashed * self.action_scale + self.action_bias

    def policy(self, obs: torch.Tensor, explore: bool):
        action = self.action(obs, explore)
        if self.grouped:  # (G, 1, A): one action per member
            return list(action[:, 0].cpu().numpy())
        return action.squeeze(0).cpu().numpy()

    def action(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        raise NotImplementedError

    # --- steps shared by the algorithms --------------------------------------------------
    def critic_step(self, loss: torch.Tensor) -> None:
        self.critic_opt.zero_grad(set_to_none=False)
        loss.backward()
        self.critic_net.training.step(self.grad_step)

    def actor_step(self, loss: torch.Tensor) -> None:
        self.actor_opt.zero_grad(set_to_none=False)
        loss.backward()
        self.actor_net.training.step(self.grad_step)

    def update_targets(self, tau: float) -> None:
        self.targets.update(tau)

    def modules(self) -> dict[str, Any]:
        return {"actor": self.actor, "critic": self.critic, "actor_target": self.actor_target,
                "critic_target": self.critic_target, "actor_opt": self.actor_opt, "critic_opt": self.critic_opt}

    # --- replay: RLx2's n-step targets and dynamic capacity ---------------------------------
    def make_replay(self):
        return make_replay(self.spaces, min(self.cfg.buffer_size, self.cfg.steps),
                           self.spaces.action_dim if self.capacity is not None else None)

    def sample_batch(self) -> Batch:
        cfg = self.cfg
        if self.n_step_from is None or self.grad_step < self.n_step_from:
            return super().sample_batch()
        return self.replay.sample_n_step(cfg.batch_size, self.rng, self.device, cfg.n_step, cfg.gamma,
                                         window=self.uses_window)

    def act(self, obs: np.ndarray, explore: bool):
        action = super().act(obs, explore)
        if explore and self.capacity is not None and self.env_steps < self.cfg.warmup_steps:
            self.behaviour = (np.asarray(action) - self.action_bias.cpu().numpy()) / self.action_scale.cpu().numpy()
        return action

    def remember_behaviour(self, squashed: torch.Tensor) -> None:
        """Keep the exploring policy's deterministic action (in [-1, 1]) for the dynamic buffer."""
        if self.capacity is not None:
            self.behaviour = squashed.squeeze(0).cpu().numpy()

    def store(self, t: Transition) -> None:
        if self.capacity is None:
            return super().store(t)
        self.replay.add(t.obs, t.action, t.reward, t.next_obs, t.terminated, t.truncated, behaviour=self.behaviour)

    def observe(self, t: Transition) -> None:
        super().observe(t)
        if self.capacity is not None and self.capacity.due(self.env_steps):
            self.capacity.check(self.replay, self.policy_distance)

    @torch.no_grad()
    def policy_distance(self, obs: np.ndarray, behaviour: np.ndarray) -> float:
        """RLx2: ½·mean (π(s) − a_b)² in [-1, 1] action units (buffers/capacity.py)."""
        current = self.squashed_mean(torch.as_tensor(obs, device=self.device))
        return float(F.mse_loss(current, torch.as_tensor(behaviour, device=self.device))) / 2

    def squashed_mean(self, obs: torch.Tensor) -> torch.Tensor:
        """The policy's deterministic action in [-1, 1]."""
        raise NotImplementedError

    def network_inputs(self, batch: Batch) -> dict[str, tuple[torch.Tensor, ...]]:
        return {"actor": (batch.obs,), "critic": (batch.obs, batch.action)}

    def evaluation_metrics(self) -> dict[str, float]:
        out = super().evaluation_metrics()
        if self.capacity is not None and not np.isnan(self.capacity.last_distance):
            out[names.REPLAY_POLICY_DISTANCE] = self.capacity.last_distance
        return out

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.capacity is not None:
            state["capacity"] = self.capacity.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if self.capacity is not None:
            self.capacity.load_state_dict(state["capacity"])
