"""TD3 (Fujimoto et al. 2018) with Sokar et al.'s settings; any sparse method for actor and critic.

Per gradient step: critic regression to the clipped double-Q target with target policy
smoothing; every `policy_delay` steps the actor ascends Q1 and the targets move by τ.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from dsrl_platform.agents.base import OffPolicyAgent, frozen


class TD3(OffPolicyAgent):
    def policy(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        action = torch.tanh(self.actor(obs))
        if explore:  # Gaussian exploration, σ = exploration_noise · max action
            noise = torch.randn(action.shape, generator=self.noise, device=self.device)
            action = (action + self.cfg.exploration_noise * noise).clamp(-1.0, 1.0)
        return self.scale(action)

    def actor_updates_per_grad_step(self) -> float:
        return 1.0 / self.cfg.policy_delay

    def update(self, batch) -> dict[str, float]:
        cfg = self.cfg
        obs, action, reward, next_obs, not_done = batch
        self.grad_step += 1

        with torch.no_grad():
            # Target policy smoothing: clipped Gaussian noise on the target action.
            noise = torch.randn(action.shape, generator=self.noise, device=self.device)  # in [-1, 1] units
            noise = (cfg.policy_noise * noise).clamp(-cfg.noise_clip, cfg.noise_clip)
            next_action = (torch.tanh(self.actor_target(next_obs)) + noise).clamp(-1.0, 1.0)
            q_next = self.critic_target(next_obs, self.scale(next_action)).min(dim=0).values
            y = reward.squeeze(1) + cfg.gamma * not_done.squeeze(1) * q_next

        q = self.critic(obs, action)  # (2, B)
        critic_loss = F.mse_loss(q[0], y) + F.mse_loss(q[1], y)
        self.critic_step(critic_loss)
        metrics = {"critic_loss": critic_loss.detach()}

        if self.grad_step % cfg.policy_delay == 0:
            with frozen(self.critic):
                actor_loss = -self.critic.q1(obs, self.scale(torch.tanh(self.actor(obs)))).mean()
            self.actor_step(actor_loss)
            self.update_targets(cfg.tau)
            metrics["actor_loss"] = actor_loss.detach()
        return metrics
