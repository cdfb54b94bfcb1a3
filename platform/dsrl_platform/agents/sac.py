"""SAC (Haarnoja et al. 2018) with a fixed temperature α, as in Sokar et al.'s appendix.

Per gradient step: critic regression to the soft clipped double-Q target, actor update on
the reparameterised tanh-Gaussian policy; targets move by τ every `target_update_every` steps
(DS-SAC: a hard copy every 1000). Where a topology update and a target update fall on the same
step (DS-SAC at every 1000th), the topology update comes first (it runs inside the critic and
actor steps), so the hard copy hands the targets the new topology at once.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from pydantic import Field
from torch.nn import functional as F

from dsrl_platform.agents.actor_critic import ActorCritic, ActorCriticConfig
from dsrl_platform.agents.base import frozen
from dsrl_platform.config.papers import GRAESSER_SAC, RLX2_SAC, SOKAR_SAC
from dsrl_platform.methods import METHODS

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


class SACConfig(ActorCriticConfig):
    """SAC with Sokar et al.'s appendix hyper-parameters (papers.md A)."""

    sokar = SOKAR_SAC
    graesser = GRAESSER_SAC
    rlx2 = RLX2_SAC

    algo: Literal["sac"] = Field("sac", description="RL algorithm")
    env: str = Field("HalfCheetah-v4", description="gymnasium environment id (MuJoCo -v4 reproduces the papers' -v3)")
    alpha: float | None = Field(None, ge=0, description="entropy temperature: fixed (Sokar 0.2), or its initial value when learned (TF-Agents: 1)")
    learn_alpha: bool | None = Field(None, description="learn the temperature towards target_entropy (Graesser; Sokar: fixed)")
    target_entropy: float | None = Field(None, description="the learned temperature's entropy target (TF-Agents: −|A|/2)")

    def own_defaults(self) -> dict[str, Any]:
        # DS-SAC (Sokar's appendix): a hard target update (τ = 1) every 1000 gradient steps.
        method = METHODS[self.method]
        ds = method.dynamic and method.family == "sokar" and self.preset == "sokar"
        return {"hidden_sizes": [256, 256], "batch_size": 256, "lr": 3e-4, "weight_decay": 0.0,
                "tau": 1.0 if ds else 0.005, "target_update_every": 1000 if ds else 1}

    def algorithm_defaults(self) -> dict[str, Any]:
        learn = self.preset == "graesser" if self.learn_alpha is None else self.learn_alpha
        # TF-Agents learns log α from log α₀ = 0 (α = 1)
        return {**super().algorithm_defaults(), "learn_alpha": learn, "alpha": 1.0 if learn else 0.2}


class SAC(ActorCritic):
    actor_out_factor = 2  # mean and log-std
    uses_window = True  # its n-step target reads the window's inner states

    def __init__(self, cfg, spaces):
        super().__init__(cfg, spaces)
        cfg = self.cfg
        shape = (len(self.members),) if self.grouped else ()  # one temperature per member
        self.log_alpha = torch.full(shape, math.log(cfg.alpha) if cfg.alpha > 0 else -20.0, device=self.device,
                                    requires_grad=cfg.learn_alpha)
        self.target_entropy = -spaces.action_dim / 2 if cfg.target_entropy is None else cfg.target_entropy
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=cfg.lr) if cfg.learn_alpha else None

    @property
    def alpha(self) -> float | torch.Tensor:
        if not self.cfg.learn_alpha:
            return self.cfg.alpha
        alpha = self.log_alpha.detach().exp()
        return alpha.unsqueeze(-1) if self.grouped else alpha  # (G, 1): broadcast over the batch

    def sample(self, obs: torch.Tensor, deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """A tanh-squashed Gaussian action in [-1, 1] and its log-probability."""
        return self._squashed_gaussian(self.actor(obs), deterministic)

    def _squashed_gaussian(self, out: torch.Tensor, deterministic: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """`sample` from the actor's output (mean and log-std)."""
        mean, log_std = out.chunk(2, dim=-1)
        if deterministic:
            return torch.tanh(mean), torch.zeros(mean.shape[:-1], device=self.device)
        log_std = log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)
        eps = self.randn(mean.shape)
        pre_tanh = mean + log_std.exp() * eps
        action = torch.tanh(pre_tanh)
        # log N(pre_tanh) − Σ log(1 − tanh²), the latter in the stable form 2(log2 − u − softplus(−2u)).
        log_prob = (-0.5 * eps.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prob -= (2 * (math.log(2) - pre_tanh - F.softplus(-2 * pre_tanh))).sum(-1)
        return action, log_prob

    def squashed_mean(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.actor(obs).chunk(2, dim=-1)[0])

    def action(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        out = self.actor(obs)
        if explore and self.capacity is not None:
            self.remember_behaviour(torch.tanh(out.chunk(2, dim=-1)[0]))
        return self.scale(self._squashed_gaussian(out, deterministic=not explore)[0])

    def inner_entropy_terms(self, window) -> torch.Tensor:
        """Σ_j γ^j·log π(a_j | s_{t+j}) over an n-step window's inner states, a_j ~ π (RLx2's
        soft n-step return: the target subtracts α times this). (batch,)"""
        inner = window.inner_obs
        _, log_prob = self.sample(inner.reshape(-1, *inner.shape[2:]))
        return (window.inner_discount * log_prob.view(inner.shape[0], inner.shape[1])).sum(dim=1)

    def actor_updates_per_grad_step(self) -> float:
        return 1.0

    def learn(self, batch) -> dict[str, Any]:
        cfg = self.cfg
        obs, action, reward, next_obs, not_done = batch

        alpha = self.alpha
        with torch.no_grad():
            next_action, next_log_prob = self.sample(next_obs)
            q_next = self.critic_target(next_obs, self.scale(next_action)).min(dim=-2).values
            y = self.td_reward(reward) + cfg.gamma * not_done.squeeze(-1) * (q_next - alpha * next_log_prob)
            if batch.window is not None:  # n-step: the entropy bonus of the states inside the window
                y = y - alpha * self.inner_entropy_terms(batch.window)

        q = self.critic(obs, action)
        critic_loss = self.critic_loss(q, y)
        self.critic_step(critic_loss)

        new_action, log_prob = self.sample(obs)
        with frozen(self.critic):
            q_new = self.critic(obs, self.scale(new_action)).min(dim=-2).values
        actor_loss = self.batch_mean(alpha * log_prob - q_new)
        self.actor_step(actor_loss)

        if self.alpha_opt is not None:  # TF-Agents: the loss on log α, −log α·(log π + H_target)
            log_alpha = self.log_alpha.unsqueeze(-1) if self.grouped else self.log_alpha
            alpha_loss = -self.batch_mean(log_alpha * (log_prob.detach() + self.target_entropy))
            self.alpha_opt.zero_grad()
            alpha_loss.backward()
            self.alpha_opt.step()

        if self.grad_step % cfg.target_update_every == 0:
            self.update_targets(cfg.tau)
        return {"critic_loss": critic_loss.detach(), "actor_loss": actor_loss.detach()}

    def modules(self) -> dict[str, Any]:
        extra = {"alpha_opt": self.alpha_opt} if self.alpha_opt is not None else {}
        return {**super().modules(), **extra}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "log_alpha": self.log_alpha.detach().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
