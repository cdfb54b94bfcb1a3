"""What TD3 and SAC share: an actor and a twin critic, their optimizers, targets and steps.

An algorithm subclass supplies its actor head (`actor_out_factor`), its `policy` and its
`learn(batch)`; networks, sparse training, target updates and state live here once.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from pydantic import Field
from torch import nn

from dsrl_platform.agents.base import OffPolicyConfig, ReplayAgent, make_adam
from dsrl_platform.agents.networks import MLP, TwinCritic
from dsrl_platform.agents.protocol import Spaces
from dsrl_platform.config import Resolved
from dsrl_platform.sparse.network import SparseNetwork
from dsrl_platform.sparse.topology import sparsify_target_


class ActorCriticConfig(OffPolicyConfig):
    """Options of TD3 and SAC: an actor and a twin critic, each with its own sparsity."""

    networks = ("actor", "critic")

    actor_sparsity: float | None = Field(None, ge=0, lt=1, description="actor's sparsity, overriding `sparsity`")
    critic_sparsity: float | None = Field(None, ge=0, lt=1, description="critics' sparsity, overriding `sparsity`")


def _target_layers(target: nn.Module, net: SparseNetwork):
    """The target network's layers that mirror the online network's sparse layers, in order."""
    if net.topology is None:
        return [], None
    by_name = {w.layer.name: w.layer for w in target.weight_layers()}
    return [by_name[layer.name] for layer in net.topology.layers], net.topology


def _target_masks(pairs, nets) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(target params, online masks) for every masked parameter: the "mask" target rule."""
    params, masks = [], []
    for (online, target, _), net in zip(pairs, nets):
        if net.topology is None:
            continue
        for o, t in zip(online, target):
            mask = net.topology.param_mask(o)
            if mask is not None:
                params.append(t)
                masks.append(mask)
    return params, masks


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
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self._target_pairs = [
            (list(online.parameters()), list(target.parameters()), _target_layers(target, net))
            for online, target, net in ((self.actor, self.actor_target, self.actor_net),
                                        (self.critic, self.critic_target, self.critic_net))]
        self._target_masks = _target_masks(self._target_pairs, (self.actor_net, self.critic_net))

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

    @torch.no_grad()
    def update_targets(self, tau: float) -> None:
        for (online, target, (target_layers, topology)) in self._target_pairs:
            if tau == 1.0:
                torch._foreach_copy_(target, online)
            else:
                torch._foreach_lerp_(target, online, tau)
            if self.cfg.sparse_targets == "topk" and topology is not None:
                # Sokar: each target layer keeps as many (largest) weights as its online layer.
                sparsify_target_(target_layers, topology, tau)
        if self.cfg.sparse_targets == "mask" and self._target_masks[0]:
            torch._foreach_mul_(*self._target_masks)

    def modules(self) -> dict[str, Any]:
        return {"actor": self.actor, "critic": self.critic, "actor_target": self.actor_target,
                "critic_target": self.critic_target, "actor_opt": self.actor_opt, "critic_opt": self.critic_opt}
