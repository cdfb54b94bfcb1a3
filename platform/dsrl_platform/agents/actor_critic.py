"""What TD3 and SAC share: an actor and a twin critic, their optimizers, targets and steps.

An algorithm subclass supplies its actor head (`actor_out_factor`), its `policy` and its
`learn(batch)`; networks, sparse training, target updates and state live here once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pydantic import Field
from torch import nn

from dsrl_platform.agents.base import OffPolicyConfig, ReplayAgent, make_adam
from dsrl_platform.agents.networks import MLP, TwinCritic
from dsrl_platform.agents.protocol import Spaces
from dsrl_platform.agents.targets import Targets
from dsrl_platform.config import Resolved


class ActorCriticConfig(OffPolicyConfig):
    """Options of TD3 and SAC: an actor and a twin critic, each with its own sparsity."""

    networks = ("actor", "critic")

    actor_sparsity: float | None = Field(None, ge=0, lt=1, description="actor's sparsity, overriding `sparsity`")
    critic_sparsity: float | None = Field(None, ge=0, lt=1, description="critics' sparsity, overriding `sparsity`")


class ActorCritic(ReplayAgent):
    actor_out_factor = 1  # SAC's actor outputs mean and log-std

    @classmethod
    def build_modules(cls, cfg: Resolved, spaces: Spaces, generator: torch.Generator | None) -> dict[str, nn.Module]:
        """The online networks (also built on the meta device to check shapes)."""
        obs_dim, act_dim = spaces.obs_dim, spaces.action_dim
        return {"actor": MLP(obs_dim, cfg.hidden_sizes, act_dim * cls.actor_out_factor, generator, "actor"),
                "critic": TwinCritic(obs_dim + act_dim, cfg.hidden_sizes, generator)}

    def __init__(self, cfg: Resolved, spaces: Spaces):
        super().__init__(cfg, spaces)
        low, high = np.array(spaces.action_low), np.array(spaces.action_high)
        self.action_scale = torch.as_tensor((high - low) / 2, dtype=torch.float32, device=self.device)
        self.action_bias = torch.as_tensor((high + low) / 2, dtype=torch.float32, device=self.device)

        modules = self.build_modules(cfg, spaces, self.init)
        self.actor, self.critic = modules["actor"].to(self.device), modules["critic"].to(self.device)
        self.actor_opt = make_adam(self.actor.parameters(), cfg)
        self.critic_opt = make_adam(self.critic.parameters(), cfg)
        self.actor_net = self.sparse_network("actor", self.actor, self.actor_opt, self.actor_updates_per_grad_step())
        self.critic_net = self.sparse_network("critic", self.critic, self.critic_opt)
        # Targets start as copies of the (already masked) online networks.
        self.targets = Targets([self.actor_net, self.critic_net], cfg.sparse_targets)
        self.actor_target, self.critic_target = self.targets.modules

    def actor_updates_per_grad_step(self) -> float:
        raise NotImplementedError

    # --- acting -------------------------------------------------------------------------
    def scale(self, squashed: torch.Tensor) -> torch.Tensor:
        """[-1, 1] → the environment's action box."""
        return squashed * self.action_scale + self.action_bias

    def policy(self, obs: torch.Tensor, explore: bool) -> np.ndarray:
        return self.action(obs, explore).squeeze(0).cpu().numpy()

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
