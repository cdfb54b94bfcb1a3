"""What TD3 and SAC share: networks, optimizers, sparse training, targets, accounting, state.

An algorithm subclass supplies its actor head (`actor_out_dim`, `policy`), its `update(batch)`
and how often its actor trains (`actor_updates_per_grad_step`); everything else lives here once.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from dsrl_platform.agents.networks import MLP, TwinCritic
from dsrl_platform.agents.sparsity import NetworkSparsity, build_network_sparsity
from dsrl_platform.config import RunConfig
from dsrl_platform.sparse import flops
from dsrl_platform.sparse.topology import sparsify_target_


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: cuda requested but no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def make_adam(params, cfg: RunConfig, device: torch.device) -> torch.optim.Adam:
    # Fused Adam: one kernel for all of a network's tensors (CPU and CUDA).
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)


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


def _target_layers(target: nn.Module, sparsity: NetworkSparsity):
    """The target network's layers that mirror the online network's sparse layers, in order."""
    if sparsity.topology is None:
        return [], None
    by_name = {w.layer.name: w.layer for w in target.weight_layers()}
    return [by_name[layer.name] for layer in sparsity.topology.layers], sparsity.topology


def _target_masks(pairs, sparsities) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(target params, online masks) for every masked parameter: the "mask" target rule."""
    params, masks = [], []
    for (online, target, _), sparsity in zip(pairs, sparsities):
        if sparsity.topology is None:
            continue
        for o, t in zip(online, target):
            mask = sparsity.topology.param_mask(o)
            if mask is not None:
                params.append(t)
                masks.append(mask)
    return params, masks


class OffPolicyAgent:
    actor_out_dim_factor = 1  # SAC's actor outputs mean and log-std

    def __init__(self, obs_dim: int, act_dim: int, action_low: np.ndarray, action_high: np.ndarray,
                 cfg: RunConfig):
        self.cfg, self.device = cfg, pick_device(cfg.device)
        self.obs_dim, self.act_dim = obs_dim, act_dim
        init = torch.Generator().manual_seed(cfg.seed)  # weights and masks (CPU, reproducible)
        self.noise = torch.Generator(self.device).manual_seed(cfg.seed + 1)  # exploration, targets
        self.action_scale = torch.as_tensor((action_high - action_low) / 2, dtype=torch.float32, device=self.device)
        self.action_bias = torch.as_tensor((action_high + action_low) / 2, dtype=torch.float32, device=self.device)

        self.actor = MLP(obs_dim, cfg.hidden_sizes, act_dim * self.actor_out_dim_factor, init, "actor").to(self.device)
        self.critic = TwinCritic(obs_dim + act_dim, cfg.hidden_sizes, init).to(self.device)
        self.actor_opt = make_adam(self.actor.parameters(), cfg, self.device)
        self.critic_opt = make_adam(self.critic.parameters(), cfg, self.device)
        self.actor_sparsity = build_network_sparsity(
            self.actor.weight_layers(), self.actor_opt, cfg, cfg.actor_sparsity, init)
        self.critic_sparsity = build_network_sparsity(
            self.critic.weight_layers(), self.critic_opt, cfg, cfg.critic_sparsity, init)
        # Targets start as copies of the (already masked) online networks.
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self._target_pairs = [
            (list(online.parameters()), list(target.parameters()), _target_layers(target, sparsity))
            for online, target, sparsity in ((self.actor, self.actor_target, self.actor_sparsity),
                                             (self.critic, self.critic_target, self.critic_sparsity))]
        self._target_masks = _target_masks(self._target_pairs, (self.actor_sparsity, self.critic_sparsity))
        self.grad_step = 0

    # --- acting -------------------------------------------------------------------------
    def scale(self, squashed: torch.Tensor) -> torch.Tensor:
        """[-1, 1] → the environment's action box."""
        return squashed * self.action_scale + self.action_bias

    @torch.no_grad()
    def act(self, obs: np.ndarray, explore: bool) -> np.ndarray:
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.device).unsqueeze(0)
        return self.policy(x, explore).squeeze(0).cpu().numpy()

    def policy(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        raise NotImplementedError

    def update(self, batch) -> dict[str, float]:
        raise NotImplementedError

    def actor_updates_per_grad_step(self) -> float:
        raise NotImplementedError

    # --- steps shared by the algorithms --------------------------------------------------
    def critic_step(self, loss: torch.Tensor) -> None:
        self.critic_opt.zero_grad(set_to_none=False)
        loss.backward()
        self.critic_sparsity.training.step(self.grad_step)

    def actor_step(self, loss: torch.Tensor) -> None:
        self.actor_opt.zero_grad(set_to_none=False)
        loss.backward()
        self.actor_sparsity.training.step(self.grad_step)

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

    # --- accounting (papers' conventions; see sparse/flops.py) ---------------------------
    def nonzero_weights(self) -> dict[str, int]:
        """Per layer, online networks only (targets excluded, as in both papers)."""
        return {**self.actor_sparsity.nnz(), **self.critic_sparsity.nnz()}

    def param_counts(self, dense: bool = False) -> dict[str, flops.ParamCounts]:
        """Per online network: nonzero weights, and with biases (`dense`: as if unmasked)."""
        counts = {}
        for name, net, sparsity in (("actor", self.actor, self.actor_sparsity),
                                    ("critic", self.critic, self.critic_sparsity)):
            weights = list({id(w.layer.param): w.layer.param for w in sparsity.layers}.values())
            counts[name] = flops.param_counts(weights, net.biases(), None if dense else sparsity.topology)
        return counts

    def forward_flops(self, network: NetworkSparsity, dense: bool = False) -> int:
        """FLOPs of one sample's forward pass; a sparse layer costs in proportion to its nonzeros."""
        nnz = network.nnz()
        return flops.mlp_forward_flops([
            (w.layer.weight.numel() if dense else nnz[w.layer.name], w.layer.shape[0], True)
            for w in network.layers])

    def train_flops_per_grad_step(self, dense: bool = False) -> float:
        """Sokar's count: critic training (both heads) every step plus actor training when it
        updates, each 3× its forward pass (backward ≈ 2× forward) on a batch. With TD3 on
        HalfCheetah this gives 1.07e14 FLOPs for 1e6 steps, the paper's dense figure."""
        b = self.cfg.batch_size
        critic = flops.training_flops(self.forward_flops(self.critic_sparsity, dense), b)
        actor = flops.training_flops(self.forward_flops(self.actor_sparsity, dense), b)
        return critic + actor * self.actor_updates_per_grad_step()

    def topology_update_flops(self, network: NetworkSparsity) -> float:
        """Extra cost of one topology update: RigL's dense gradient (Evci et al.);
        magnitude-based drops and random growth are negligible."""
        if self.cfg.method != "rigl":
            return 0.0
        return flops.rigl_update_extra_flops(self.forward_flops(network), self.forward_flops(network, dense=True),
                                             self.cfg.batch_size)

    # --- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
            "actor_target": self.actor_target.state_dict(), "critic_target": self.critic_target.state_dict(),
            "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(),
            "actor_sparse": self.actor_sparsity.training.state_dict(),
            "critic_sparse": self.critic_sparsity.training.state_dict(),
            "noise": self.noise.get_state(), "grad_step": self.grad_step,
        }

    def load_state_dict(self, state: dict) -> None:
        for name in ("actor", "critic", "actor_target", "critic_target", "actor_opt", "critic_opt"):
            getattr(self, name).load_state_dict(state[name])
        self.actor_sparsity.training.load_state_dict(state["actor_sparse"])
        self.critic_sparsity.training.load_state_dict(state["critic_sparse"])
        self.noise.set_state(state["noise"])
        self.grad_step = state["grad_step"]
