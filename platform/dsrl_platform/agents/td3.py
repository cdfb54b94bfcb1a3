"""TD3 (Fujimoto et al. 2018) with Sokar et al.'s settings; any sparse method for actor and critic.

Per gradient step: critic regression to the clipped double-Q target with target policy
smoothing; every `policy_delay` steps the actor ascends Q1 and the targets move by τ.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field

from dsrl_platform.agents.actor_critic import ActorCritic, ActorCriticConfig
from dsrl_platform.agents.base import frozen
from dsrl_platform.config.papers import GRAESSER_SAC, RLX2_TD3, SOKAR_TD3
from dsrl_platform.methods import METHODS


class TD3Config(ActorCriticConfig):
    """TD3 with Sokar et al.'s hyper-parameters (papers.md A)."""

    sokar = SOKAR_TD3
    graesser = GRAESSER_SAC  # Graesser's methods on TD3: their SAC schedule
    rlx2 = RLX2_TD3

    algo: Literal["td3"] = Field("td3", description="RL algorithm")
    env: str = Field("HalfCheetah-v4", description="gymnasium environment id (MuJoCo -v4 reproduces the papers' -v3)")
    policy_delay: int = Field(2, gt=0, description="critic updates per actor and target update")
    policy_noise: float = Field(0.2, ge=0, description="target policy smoothing noise, times max action")
    noise_clip: float = Field(0.5, ge=0, description="clip of the smoothing noise, times max action")
    exploration_noise: float = Field(0.1, ge=0, description="Gaussian exploration noise, times max action")

    def own_defaults(self) -> dict[str, Any]:
        return {"hidden_sizes": [256, 256], "batch_size": 100, "lr": 1e-3, "weight_decay": 2e-4, "tau": 0.005,
                "target_update_every": 1}

    def check(self) -> None:
        super().check()
        # The actor trains (and has its masks updated) on every policy_delay-th critic step
        # only (Sokar's code counts the critic's steps): an interval off that grid skips updates.
        method = METHODS[self.method]
        for name, used in (("topology_interval", method.dynamic), ("prune_interval", method.starts_dense)):
            value = getattr(self, name)
            if used and value % self.policy_delay:
                raise ValueError(f"{name}: {value} is not a multiple of policy_delay ({self.policy_delay}); "
                                 f"the actor would miss topology updates")


class TD3(ActorCritic):
    def squashed_mean(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.actor(obs))

    def action(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        action = self.squashed_mean(obs)
        if explore:  # Gaussian exploration, σ = exploration_noise · max action
            self.remember_behaviour(action)
            noise = self.randn(action.shape)
            action = (action + self.cfg.exploration_noise * noise).clamp(-1.0, 1.0)
        return self.scale(action)

    def actor_updates_per_grad_step(self) -> float:
        return 1.0 / self.cfg.policy_delay

    def learn(self, batch) -> dict[str, Any]:
        cfg = self.cfg
        obs, action, reward, next_obs, not_done = batch  # n-step: folded into reward and not_done

        with torch.no_grad():
            # Target policy smoothing: clipped Gaussian noise on the target action.
            noise = self.randn(action.shape)  # in [-1, 1] units
            noise = (cfg.policy_noise * noise).clamp(-cfg.noise_clip, cfg.noise_clip)
            next_action = (torch.tanh(self.actor_target(next_obs)) + noise).clamp(-1.0, 1.0)
            q_next = self.critic_target(next_obs, self.scale(next_action)).min(dim=-2).values
            y = self.td_reward(reward) + cfg.gamma * not_done.squeeze(-1) * q_next

        q = self.critic(obs, action)  # (2, B); a group: (G, 2, B)
        critic_loss = self.critic_loss(q, y)
        self.critic_step(critic_loss)
        metrics = {"critic_loss": critic_loss.detach()}

        if self.grad_step % cfg.policy_delay == 0:
            with frozen(self.critic):
                actor_loss = -self.batch_mean(self.critic.q1(obs, self.scale(torch.tanh(self.actor(obs)))))
            self.actor_step(actor_loss)
            self.update_targets(cfg.tau)
            metrics["actor_loss"] = actor_loss.detach()
        return metrics
