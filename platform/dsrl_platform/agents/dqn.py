"""DQN (Mnih et al. 2015) as Graesser et al. ran it: classic control, MinAtar and Atari.

Per gradient step: regression of Q(s, a) to r + γ·max_a' Q_target(s', a') (no bootstrap at a
true termination), squared error (classic control, TF-Agents) or Huber (Atari, Dopamine);
every `target_update_every` gradient steps the target becomes a copy of the online network.
Acting is ε-greedy: uniformly random during the warm-up, then ε decays linearly from
`epsilon_start` to `epsilon_end` over `epsilon_decay_steps`; evaluation uses `epsilon_eval`.
Every layer is sparse for the sparse methods (Graesser: ERK, output included).

Defaults by environment family (papers.md D1, D2; MinAtar after Young & Tian 2019):
classic control — MLP 512-512 (He truncated-normal, head U(±0.03), bias −0.2), Adam 1e-3 (ε
1e-7), L2 1e-6 on the hidden kernels, batch 128, replay 100k, warm-up 1000, target copy every
100 steps, ε 0.01, evaluation every 2000 steps over 20 episodes; Atari — Nature CNN, Adam 2.5e-4,
Huber, batch 32, warm-up 20k, an update every 4 steps, target copy every 8000 steps, ε 1 → 0.01
over 250k steps, ε_eval 0.001, rewards clipped to ±1; MinAtar — the small conv net
(16 3×3 filters, 128 units), Atari's optimiser, ε 1 → 0.1 over 100k steps.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from dsrl_platform.agents.base import OffPolicyConfig, ReplayAgent
from dsrl_platform.agents.networks import MLP, ConvQNetwork, glorot_uniform, he_truncated_normal, q_head
from dsrl_platform.agents.protocol import Spaces
from dsrl_platform.agents.targets import Targets
from dsrl_platform.config import Resolved
from dsrl_platform.config.papers import GRAESSER_DQN_ATARI, GRAESSER_DQN_CLASSIC, GraesserDefaults

# Per environment family: the values of the options left unset.
_FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "gym": {"network": "mlp", "hidden_sizes": [512, 512], "lr": 1e-3, "adam_eps": 1e-7, "weight_decay": 1e-6,
            "loss": "mse", "batch_size": 128, "buffer_size": 100_000, "warmup_steps": 1000, "train_every": 1,
            "target_update_every": 100, "epsilon_start": 0.01, "epsilon_end": 0.01, "epsilon_decay_steps": 1,
            "epsilon_eval": 0.0, "reward_clip": False, "eval_every": 2000, "eval_episodes": 20},
    "minatar": {"network": "minatar", "hidden_sizes": [128], "lr": 2.5e-4, "adam_eps": 3.125e-4,
                "weight_decay": 0.0, "loss": "huber", "batch_size": 32, "buffer_size": 100_000,
                "warmup_steps": 5000, "train_every": 1, "target_update_every": 1000, "epsilon_start": 1.0,
                "epsilon_end": 0.1, "epsilon_decay_steps": 100_000, "epsilon_eval": 0.0, "reward_clip": False,
                "eval_every": 10_000, "eval_episodes": 10},
    "atari": {"network": "nature", "hidden_sizes": [512], "lr": 2.5e-4, "adam_eps": 1e-8, "weight_decay": 0.0,
              "loss": "huber", "batch_size": 32, "buffer_size": 1_000_000, "warmup_steps": 20_000,
              "train_every": 4, "target_update_every": 2000, "epsilon_start": 1.0, "epsilon_end": 0.01,
              "epsilon_decay_steps": 250_000, "epsilon_eval": 0.001, "reward_clip": True,
              "eval_every": 250_000, "eval_episodes": 10},
}


def _family(env: str) -> str:
    from dsrl_platform.envs import env_family_kind

    return env_family_kind(env)


class DQNConfig(OffPolicyConfig):
    """DQN with Graesser et al.'s settings per environment family (see the module docstring)."""

    networks = ("q",)
    graesser = GRAESSER_DQN_CLASSIC

    algo: Literal["dqn"] = Field("dqn", description="RL algorithm")
    env: str = Field("CartPole-v1", description="gymnasium id: classic control, MinAtar/… or ALE/… (Atari)")
    steps: int = Field(100_000, gt=0, description="training budget in environment steps")
    # The family's defaults (None = the family's value): the shared fields' defaults are TD3's.
    warmup_steps: int | None = Field(None, ge=0, description="random-action steps before the first update")
    buffer_size: int | None = Field(None, gt=0, description="replay capacity in transitions")
    train_every: int | None = Field(None, gt=0, description="environment steps per gradient update after the warm-up")
    eval_every: int | None = Field(None, gt=0, description="evaluate every this many environment steps (and at step 0)")
    eval_episodes: int | None = Field(None, gt=0, description="episodes per evaluation (ε_eval-greedy)")

    network: Literal["mlp", "minatar", "nature"] | None = Field(None, description="Q-network: mlp (vectors), minatar (MinAtar's small conv net) or nature (Atari's Nature CNN); default by environment family")
    adam_eps: float | None = Field(None, gt=0, description="Adam's ε (classic 1e-7, Atari 1e-8)")
    loss: Literal["mse", "huber"] | None = Field(None, description="TD loss: squared error (classic control) or Huber (Atari)")
    epsilon_start: float | None = Field(None, ge=0, le=1, description="ε of ε-greedy after the warm-up")
    epsilon_end: float | None = Field(None, ge=0, le=1, description="ε once the decay is over")
    epsilon_decay_steps: int | None = Field(None, gt=0, description="environment steps after the warm-up over which ε decays linearly")
    epsilon_eval: float | None = Field(None, ge=0, le=1, description="ε of the evaluation policy")
    reward_clip: bool | None = Field(None, description="clip training rewards to [-1, 1] (Atari)")

    def algorithm_defaults(self) -> dict[str, Any]:
        return {**super().algorithm_defaults(), **_FAMILY_DEFAULTS[_family(self.env)], "tau": 1.0}

    def graesser_defaults(self) -> GraesserDefaults:
        return GRAESSER_DQN_ATARI if _family(self.env) == "atari" else GRAESSER_DQN_CLASSIC


class DQN(ReplayAgent):
    acting_network = "q"

    @classmethod
    def build_modules(cls, cfg: Resolved, spaces: Spaces, generator: torch.Generator | None) -> dict[str, nn.Module]:
        n = spaces.action_dim
        if cfg.network == "mlp":
            return {"q": MLP(spaces.obs_dim, cfg.hidden_for("q"), n, generator, "q", he_truncated_normal, q_head)}
        if len(spaces.obs_shape) != 3:
            raise ValueError(f"network: {cfg.network} takes image observations (C, H, W), "
                             f"{cfg.env} gives shape {spaces.obs_shape}")
        # Dopamine's width: ceil(n·width) on every conv and dense layer but the head
        w = cfg.width
        scaled = lambda n: math.ceil(n * w)  # noqa: E731
        fc = [scaled(h) for h in cfg.hidden_sizes]
        if cfg.network == "minatar":
            return {"q": ConvQNetwork(spaces.obs_shape, [(scaled(16), 3, 1)], fc, n, generator, "q")}
        return {"q": ConvQNetwork(spaces.obs_shape, [(scaled(32), 8, 4), (scaled(64), 4, 2), (scaled(64), 3, 1)], fc,
                                  n, generator, "q", padding="same", scale=255.0, init=glorot_uniform)}

    def __init__(self, cfg: Resolved | list[Resolved], spaces: Spaces):
        super().__init__(cfg, spaces)
        cfg = self.cfg
        modules = [self.build_modules(m.cfg, spaces, m.init)["q"] for m in self.members]
        make = lambda q: torch.optim.Adam(self._param_groups(q), lr=cfg.lr, eps=cfg.adam_eps, fused=True)  # noqa: E731
        self.q, self.q_net = self.trained_network("q", modules, make)
        self.opt = self.q_net.training.optimizer
        self.targets = Targets([self.q_net], cfg.sparse_targets)
        (self.q_target,) = self.targets.modules
        # ε_eval draws, one stream per member: the training streams stay as they are
        self.eval_rngs = [np.random.default_rng(m.cfg.seed + 2) for m in self.members]

    def _param_groups(self, q: nn.Module) -> list[dict[str, Any]]:
        """Keras' L2 (TF-Agents' DQN): wd·Σw² over the hidden kernels only, whose gradient
        2·wd·w is Adam's coupled weight decay 2·wd on those tensors."""
        hidden = {id(w.layer.param) for w in q.weight_layers() if not w.is_output}
        decayed = [p for p in q.parameters() if id(p) in hidden]
        rest = [p for p in q.parameters() if id(p) not in hidden]
        return [{"params": decayed, "weight_decay": 2 * self.cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]

    # --- acting ------------------------------------------------------------------------------
    def epsilon(self) -> float:
        """Linear decay from epsilon_start to epsilon_end over epsilon_decay_steps after the warm-up."""
        cfg = self.cfg
        progress = min(max(self.env_steps - cfg.warmup_steps, 0) / cfg.epsilon_decay_steps, 1.0)
        return cfg.epsilon_start + progress * (cfg.epsilon_end - cfg.epsilon_start)

    def policy(self, obs: torch.Tensor, explore: bool):
        eps = self.epsilon() if explore else self.cfg.epsilon_eval
        rngs = [m.rng for m in self.members] if explore else self.eval_rngs
        greedy = None
        actions = []
        for g, rng in enumerate(rngs):  # each member's ε draw from its own stream
            if eps > 0 and rng.random() < eps:
                actions.append(int(rng.integers(self.spaces.action_dim)))
                continue
            if greedy is None:
                greedy = self.q(obs).argmax(dim=-1).reshape(-1).tolist()  # all members in one pass
            actions.append(int(greedy[g]))
        return actions if self.grouped else actions[0]

    # --- learning ----------------------------------------------------------------------------
    def td_loss(self, q: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean TD loss over the batch (a group: each member's, summed)."""
        if not self.grouped:
            return F.mse_loss(q, y) if self.cfg.loss == "mse" else F.smooth_l1_loss(q, y)
        loss = F.mse_loss if self.cfg.loss == "mse" else F.smooth_l1_loss
        return loss(q, y, reduction="none").mean(-1).sum()

    def learn(self, batch) -> dict[str, Any]:
        cfg = self.cfg
        obs, action, reward, next_obs, not_done = batch
        reward = reward.squeeze(-1)
        if cfg.reward_clip:
            reward = reward.clamp(-1.0, 1.0)
        with torch.no_grad():
            y = reward + cfg.gamma * not_done.squeeze(-1) * self.q_target(next_obs).max(dim=-1).values
        q = self.q(obs).gather(-1, action.unsqueeze(-1)).squeeze(-1)
        loss = self.td_loss(q, y)
        self.opt.zero_grad(set_to_none=False)
        loss.backward()
        self.q_net.training.step(self.grad_step)
        if self.grad_step % cfg.target_update_every == 0:
            self.targets.update(cfg.tau)
        return {"loss": loss.detach()}

    def network_inputs(self, batch) -> dict[str, tuple[torch.Tensor, ...]]:
        return {"q": (batch.obs,)}

    def modules(self) -> dict[str, Any]:
        return {"q": self.q, "q_target": self.q_target, "opt": self.opt}

    def state_dict(self) -> dict[str, Any]:
        rngs = [r.bit_generator.state for r in self.eval_rngs]
        return {**super().state_dict(), "eval_rng": rngs if self.grouped else rngs[0]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        for rng, s in zip(self.eval_rngs, self.per_member(state["eval_rng"])):
            rng.bit_generator.state = s
