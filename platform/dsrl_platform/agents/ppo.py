"""PPO (Schulman et al. 2017) with the clipped objective, as Graesser et al. ran it (TF-Agents).

Every `rollout_steps` environment steps the agent trains `epochs` passes over the rollout in
minibatches: policy loss −min(ρA, clip(ρ, 1±ε)A), value loss `value_coef`·(V − R)², minus
`entropy_coef`·entropy, gradients clipped to a global norm of `max_grad_norm` over both
networks; GAE(λ) advantages, normalised per minibatch, and TD(λ) returns (buffers/rollout.py).
Observations are normalised by a running mean/std (clipped to ±5), rewards scaled by a running
std of the rewards (no centring, clipped to ±10). The learning rate decays linearly to 0.

Settings (papers.md D3): separate actor (64-64 tanh, orthogonal; mean head VarianceScaling(0.1)
through tanh onto the action bounds; state-independent std = softplus(bias), initially 0.35)
and value network (64-64 ReLU, orthogonal; head U(±0.03)); Adam 3e-4 (ε 1e-5); rollouts of
2048 steps, 10 epochs of minibatch 64 (320 gradient steps per rollout); clip 0.2, λ 0.95,
γ 0.99, entropy 0, value coefficient 0.5; L2 wd·Σw² on every kernel, 1e-6 dense and pruning,
1e-4 sparse. Sparse methods mask every layer of both networks (the std bias stays dense).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from dsrl_platform import names
from dsrl_platform.agents.base import GroupableAgent, make_recycler
from dsrl_platform.agents.networks import MLP, mean_head, orthogonal, value_head
from dsrl_platform.agents.protocol import Spaces, Transition
from dsrl_platform.agents.stacked import StackedMLP
from dsrl_platform.buffers.rollout import Rollout, RunningMeanStd
from dsrl_platform.config import Resolved, RunConfig
from dsrl_platform.config.papers import GRAESSER_PPO
from dsrl_platform.methods import METHODS
from dsrl_platform.sparse.network import SparseNetwork

OBS_CLIP, REWARD_CLIP = 5.0, 10.0
INITIAL_STD = 0.35


class PPOConfig(RunConfig):
    """PPO with Graesser et al.'s TF-Agents settings (see the module docstring)."""

    networks = ("actor", "value")
    graesser = GRAESSER_PPO

    algo: Literal["ppo"] = Field("ppo", description="RL algorithm")
    env: str = Field("HalfCheetah-v4", description="gymnasium environment id with continuous actions")
    eval_every: int = Field(14_336, gt=0, description="evaluate every this many environment steps (Graesser: every 7 rollouts)")
    eval_episodes: int = Field(20, gt=0, description="episodes of the deterministic (mean) policy per evaluation")
    final_evals: int = Field(7, gt=0, description="final return = mean of the last this many evaluations (Graesser: the last 10%)")
    actor_sparsity: float | None = Field(None, ge=0, lt=1, description="actor's sparsity, overriding `sparsity`")
    value_sparsity: float | None = Field(None, ge=0, lt=1, description="value network's sparsity, overriding `sparsity`")
    actor_width: float | None = Field(None, gt=0, description="actor's width multiplier, overriding `width`")
    value_width: float | None = Field(None, gt=0, description="value network's width multiplier, overriding `width`")
    rollout_steps: int = Field(2048, gt=0, description="environment steps per rollout (one training iteration)")
    epochs: int = Field(10, gt=0, description="passes over each rollout")
    minibatch_size: int = Field(64, gt=0, description="samples per gradient step")
    clip_ratio: float = Field(0.2, gt=0, description="ε of the clipped surrogate objective")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="λ of GAE and of the TD(λ) returns")
    entropy_coef: float = Field(0.0, ge=0, description="weight of the entropy bonus")
    value_coef: float = Field(0.5, ge=0, description="weight of the value loss")
    max_grad_norm: float | None = Field(0.5, gt=0, description="global gradient-norm clip over both networks (None: off)")
    adam_eps: float = Field(1e-5, gt=0, description="Adam's ε")
    lr_decay: bool = Field(True, description="decay the learning rate linearly to 0 over the budget")
    normalize_obs: bool = Field(True, description="running mean/std observation normalisation (clipped to ±5)")
    scale_rewards: bool = Field(True, description="rewards divided by their running std (clipped to ±10)")

    def algorithm_defaults(self) -> dict[str, Any]:
        sparse = METHODS[self.method].sparse and not METHODS[self.method].starts_dense
        return {"hidden_sizes": [64, 64], "lr": 3e-4, "weight_decay": 1e-4 if sparse else 1e-6}

    def grad_step_at(self, env_step: int) -> int:
        return env_step // self.rollout_steps * self.grad_steps_per_rollout

    @property
    def grad_steps_per_rollout(self) -> int:
        return self.epochs * math.ceil(self.rollout_steps / self.minibatch_size)

    def first_update_step(self) -> int:
        return self.rollout_steps

    def check(self) -> None:
        super().check()
        if self.minibatch_size > self.rollout_steps:
            raise ValueError(f"minibatch_size: {self.minibatch_size} is larger than a rollout ({self.rollout_steps})")


class Actor(nn.Module):
    """Gaussian policy: mean = tanh(MLP) onto the action bounds, std = softplus(a learned bias)."""

    def __init__(self, obs_dim: int, hidden: list[int], act_dim: int, generator: torch.Generator | None):
        super().__init__()
        self.mean = MLP(obs_dim, hidden, act_dim, generator, "actor", orthogonal, mean_head, activation="tanh")
        self.std_bias = nn.Parameter(torch.full((act_dim,), math.log(math.expm1(INITIAL_STD))))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(tanh of the mean in [-1, 1], std in the same units)."""
        return torch.tanh(self.mean(obs)), nn.functional.softplus(self.std_bias).expand(obs.shape[0], -1)

    def weight_layers(self):
        return self.mean.weight_layers()

    def hidden_units(self):
        return self.mean.hidden_units()

    def biases(self) -> list[torch.Tensor]:
        return [*self.mean.biases(), self.std_bias]


class StackedActor(nn.Module):
    """A group's actors: stacked mean networks, std biases (G, A)."""

    def __init__(self, members: list[Actor]):
        super().__init__()
        self.mean = StackedMLP([m.mean for m in members])
        self.std_bias = nn.Parameter(torch.stack([m.std_bias.detach() for m in members]))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        std = nn.functional.softplus(self.std_bias).unsqueeze(1).expand(obs.shape[0], obs.shape[1], -1)
        return torch.tanh(self.mean(obs)), std

    def weight_layers(self, g: int = 0):
        return self.mean.weight_layers(g)

    def hidden_units(self, g: int = 0):
        return self.mean.hidden_units(g)

    def biases(self, g: int = 0) -> list[torch.Tensor]:
        return [*self.mean.biases(g), self.std_bias[g]]


Actor.stacked = StackedActor  # the group form agents/stacked.py uses


def clip_grad_norm_per_member_(params: list[torch.Tensor], max_norm: float) -> None:
    """clip_grad_norm_ for each member of stacked parameters (leading group dimension)."""
    grads = [p.grad for p in params if p.grad is not None]
    sq = sum(g.pow(2).flatten(1).sum(1) for g in grads)  # (G,)
    scale = (max_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.view(-1, *[1] * (g.dim() - 1)))


class PPO(GroupableAgent):
    acting_network = "actor"

    @classmethod
    def build_modules(cls, cfg: Resolved, spaces: Spaces, generator: torch.Generator | None) -> dict[str, nn.Module]:
        return {"actor": Actor(spaces.obs_dim, cfg.hidden_for("actor"), spaces.action_dim, generator),
                "value": MLP(spaces.obs_dim, cfg.hidden_for("value"), 1, generator, "value", orthogonal, value_head)}

    def __init__(self, cfg: Resolved | list[Resolved], spaces: Spaces):
        super().__init__(cfg, spaces)
        cfg = self.cfg
        low, high = np.array(spaces.action_low), np.array(spaces.action_high)
        self.low, self.high = low.astype(np.float32), high.astype(np.float32)
        self.action_scale = torch.as_tensor((high - low) / 2, dtype=torch.float32, device=self.device)
        self.action_bias = torch.as_tensor((high + low) / 2, dtype=torch.float32, device=self.device)
        members = [self.build_modules(m.cfg, spaces, m.init) for m in self.members]
        rate = cfg.grad_steps_per_rollout / cfg.rollout_steps
        make = lambda module: torch.optim.Adam(self._param_groups(module), lr=cfg.lr, eps=cfg.adam_eps, fused=True)  # noqa: E731
        self.optimizers = {}
        for name in ("actor", "value"):
            module, net = self.trained_network(name, [m[name] for m in members], make, cfg.minibatch_size, rate)
            setattr(self, name, module)
            self.optimizers[name] = net.training.optimizer
        G = len(self.members)
        self.rollouts = [Rollout(cfg.rollout_steps, spaces.obs_shape, spaces.action_dim) for _ in range(G)]
        self.obs_stats = [RunningMeanStd(spaces.obs_shape) for _ in range(G)]
        self.reward_stats = [RunningMeanStd() for _ in range(G)]
        self.rollout = self.rollouts[0]
        self.iterations = 0
        self._pending: list | None = None  # what act() chose, per member
        self._last_next_obs = [np.zeros(spaces.obs_shape, np.float32) for _ in range(G)]
        self.recycler = None if self.grouped else make_recycler(cfg, self.networks)  # ReDo: single agents
        self.last_obs: torch.Tensor | None = None  # the latest minibatch's observations (probes)

    def _param_groups(self, module: nn.Module) -> list[dict[str, Any]]:
        """TF-Agents' agent-level L2, wd·Σw² on every kernel: Adam's coupled decay 2·wd on the weights."""
        kernels = {id(w.layer.param) for w in module.weight_layers()}
        decayed = [p for p in module.parameters() if id(p) in kernels]
        rest = [p for p in module.parameters() if id(p) not in kernels]
        return [{"params": decayed, "weight_decay": 2 * self.cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]

    # --- acting ------------------------------------------------------------------------------
    def _normalize(self, g: int, obs: np.ndarray) -> np.ndarray:
        if not self.cfg.normalize_obs:
            return np.asarray(obs, np.float32)
        stats = self.obs_stats[g]
        z = (obs - stats.mean) / np.sqrt(stats.var + 1e-8)
        return np.clip(z, -OBS_CLIP, OBS_CLIP).astype(np.float32)

    def _inputs(self, xs: list[np.ndarray]) -> torch.Tensor:
        """Normalised observations as the networks take them: (1, obs), a group (G, 1, obs)."""
        if not self.grouped:
            return torch.as_tensor(xs[0], device=self.device).unsqueeze(0)
        return torch.as_tensor(np.stack(xs), device=self.device).unsqueeze(1)

    def _scale(self, squashed: torch.Tensor) -> torch.Tensor:
        return squashed * self.action_scale + self.action_bias

    def _log_prob(self, mean: torch.Tensor, std: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return (-((action - mean) ** 2) / (2 * std**2) - std.log() - 0.5 * math.log(2 * math.pi)).sum(-1)

    @torch.no_grad()
    def act(self, obs, explore: bool):
        obs = self.per_member(obs)
        if explore and self.cfg.normalize_obs:
            for stats, o in zip(self.obs_stats, obs):
                stats.update(o)
        xs = [self._normalize(g, o) for g, o in enumerate(obs)]
        t = self._inputs(xs)
        squashed, std = self.actor(t)
        mean, std = self._scale(squashed), std * self.action_scale
        if not explore:
            means = mean.reshape(len(xs), -1).cpu().numpy()
            actions = [np.clip(m, self.low, self.high) for m in means]
            return actions if self.grouped else actions[0]
        action = mean + std * self.randn(mean.shape)
        log_probs = self._log_prob(mean, std, action).reshape(-1).tolist()
        values = self.value(t).reshape(-1).tolist()
        raws = list(action.reshape(len(xs), -1).cpu().numpy())
        self._pending = list(zip(xs, raws, log_probs, values))
        # the env gets a valid action; the rollout keeps the sample
        actions = [np.clip(raw, self.low, self.high) for raw in raws]
        return actions if self.grouped else actions[0]

    def observe(self, t) -> None:
        assert self._pending is not None, "observe() follows act(explore=True)"
        transitions = self.per_member(t)
        truncated = [tr.truncated and not tr.terminated for tr in transitions]
        next_values = self._values_of([tr.next_obs for tr in transitions]) if any(truncated) else None
        for g, (tr, (x, raw, log_prob, value)) in enumerate(zip(transitions, self._pending)):
            reward = tr.reward
            if self.cfg.scale_rewards:
                stats = self.reward_stats[g]
                stats.update(np.array([reward]))
                reward = float(np.clip(reward / math.sqrt(stats.var + 1e-8), -REWARD_CLIP, REWARD_CLIP))
            next_value = next_values[g] if truncated[g] else 0.0
            self.rollouts[g].add(x, raw, log_prob, value, reward, tr.terminated, tr.truncated, next_value)
            self._last_next_obs[g] = tr.next_obs
        self._pending = None

    @torch.no_grad()
    def _values_of(self, obs: list[np.ndarray]) -> list[float]:
        return self.value(self._inputs([self._normalize(g, o) for g, o in enumerate(obs)])).reshape(-1).tolist()

    def updates_due(self, step: int) -> int:
        return int(self.rollout.full)

    # --- learning ----------------------------------------------------------------------------
    def update(self) -> Mapping[str, Any]:
        cfg = self.cfg
        # the next rollout starts from the observation after the last step (unless it was a reset)
        last = self._values_of(self._last_next_obs)
        adv, returns = zip(*[ro.advantages(0.0 if ro.terminated[-1] or ro.truncated[-1] else last[g],
                                           cfg.gamma, cfg.gae_lambda) for g, ro in enumerate(self.rollouts)])
        if cfg.lr_decay:
            total = max(cfg.steps // cfg.rollout_steps, 1)
            for opt in self.optimizers.values():
                for group in opt.param_groups:
                    group["lr"] = cfg.lr * max(1.0 - self.iterations / total, 0.0)
        as_t = lambda arrays: torch.as_tensor(np.stack(arrays) if self.grouped else arrays[0], device=self.device)  # noqa: E731
        obs, actions = as_t([ro.obs for ro in self.rollouts]), as_t([ro.actions for ro in self.rollouts])
        old_log_probs = as_t([ro.log_probs for ro in self.rollouts])
        adv_t, returns_t = as_t(adv), as_t(returns)
        params = [p for m in (self.actor, self.value) for p in m.parameters()]
        steps = self.rollout.steps
        metrics: dict[str, Any] = {}
        for _ in range(cfg.epochs):
            if not self.grouped:
                order = torch.randperm(steps, generator=self.noise, device=self.device)
            else:  # each member's own minibatch order
                order = torch.stack([torch.randperm(steps, generator=m.noise, device=self.device) for m in self.members])
            for start in range(0, steps, cfg.minibatch_size):
                idx = order[..., start:start + cfg.minibatch_size]
                take = (lambda x: x[idx]) if not self.grouped else \
                    (lambda x: x[torch.arange(len(self.members), device=self.device).unsqueeze(1), idx])
                metrics = self._step(take(obs), take(actions), take(old_log_probs), take(adv_t), take(returns_t), params)
        for ro in self.rollouts:
            ro.clear()
        self.iterations += 1
        return metrics

    def _step(self, obs, actions, old_log_probs, adv, returns, params) -> dict[str, Any]:
        cfg = self.cfg
        self.grad_step += 1
        if adv.shape[-1] > 1:  # advantages normalised per minibatch (per member)
            if self.grouped:
                adv = (adv - adv.mean(-1, keepdim=True)) / (adv.std(-1, keepdim=True) + 1e-8)
            else:
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        squashed, std = self.actor(obs)
        mean, std = self._scale(squashed), std * self.action_scale
        ratio = (self._log_prob(mean, std, actions) - old_log_probs).exp()
        policy_loss = -self.batch_mean(torch.min(ratio * adv, ratio.clamp(1 - cfg.clip_ratio, 1 + cfg.clip_ratio) * adv))
        value_loss = self.batch_mean((self.value(obs).squeeze(-1) - returns).pow(2))
        entropy = self.batch_mean((0.5 + 0.5 * math.log(2 * math.pi) + std.log()).sum(-1))
        loss = policy_loss + cfg.value_coef * value_loss - cfg.entropy_coef * entropy
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=False)
        loss.backward()
        if cfg.max_grad_norm:
            if self.grouped:
                clip_grad_norm_per_member_(params, cfg.max_grad_norm)
            else:
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        for net in self.networks.values():
            net.training.step(self.grad_step)
        self.last_obs = obs
        if self.recycler is not None:
            self.recycler.maybe_recycle(self.grad_step, self.probe_inputs())
        return {"policy_loss": policy_loss.detach(), "value_loss": value_loss.detach()}

    def probe_inputs(self) -> dict[str, tuple[torch.Tensor, ...]]:
        """Both networks' inputs on the latest minibatch (empty before the first update)."""
        return {} if self.last_obs is None else {"actor": (self.last_obs,), "value": (self.last_obs,)}

    def evaluation_metrics(self) -> dict[str, float]:
        return {} if self.recycler is None else {names.REDO_RECYCLED: float(self.recycler.recycled)}

    # --- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        per_member = [{"rollout": ro.state_dict(), "obs_stats": o.state_dict(), "reward_stats": r.state_dict(),
                       "last_next_obs": np.asarray(n), **m.state_dict()}
                      for ro, o, r, n, m in zip(self.rollouts, self.obs_stats, self.reward_stats,
                                                self._last_next_obs, self.members)]
        state = {"modules": {"actor": self.actor.state_dict(), "value": self.value.state_dict()},
                 "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                 "sparse": {k: net.training.state_dict() for k, net in self.networks.items()},
                 "iterations": self.iterations, "grad_step": self.grad_step,
                 **({} if self.last_obs is None else {"last_obs": self.last_obs}),
                 **({} if self.recycler is None else {"redo": self.recycler.state_dict()})}
        return {**state, "members": per_member} if self.grouped else {**state, **per_member[0]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actor.load_state_dict(state["modules"]["actor"])
        self.value.load_state_dict(state["modules"]["value"])
        for k, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][k])
        for k, net in self.networks.items():
            net.training.load_state_dict(state["sparse"][k])
        for g, s in enumerate(state["members"] if self.grouped else [state]):
            self.rollouts[g].load_state_dict(s["rollout"])
            self.obs_stats[g].load_state_dict(s["obs_stats"])
            self.reward_stats[g].load_state_dict(s["reward_stats"])
            self._last_next_obs[g] = s["last_next_obs"]
            self.members[g].load_state_dict(s)
        self.iterations, self.grad_step = int(state["iterations"]), int(state["grad_step"])
        self.last_obs = None if state.get("last_obs") is None else state["last_obs"].to(self.device)
        if self.recycler is not None:
            self.recycler.load_state_dict(state["redo"])
