"""Target networks that follow their online networks, and keep them as sparse as the online ones.

Rules (`sparse_targets`): `topk` — after every update each target layer keeps its k largest
weights, k = the online layer's nonzeros (Sokar et al.; exact, sparse/topology.py); `mask` —
targets multiplied by the online masks (Graesser et al.'s code copies the masks with the
weights); `off` — targets as the update leaves them.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from dsrl_platform.sparse.topology import sparsify_target_


class Targets:
    """Targets of `online` networks (SparseNetworks, or GroupNetworks whose members each keep
    their own top-k bookkeeping)."""

    def __init__(self, online: list, rule: str | None):
        self.rule = rule or "off"
        self.modules: list[nn.Module] = [copy.deepcopy(net.module).requires_grad_(False) for net in online]
        self._pairs = []
        self._mask_params: list[torch.Tensor] = []
        self._masks: list[torch.Tensor] = []
        for net, target in zip(online, self.modules):
            params = (list(net.module.parameters()), list(target.parameters()))
            per_member = []  # (target layers, online topology) for the top-k rule
            if net.topology is not None:
                members = getattr(net, "members", None)
                for g, member in enumerate(members or [net]):
                    target_layers = target.weight_layers(g) if members else target.weight_layers()
                    by_name = {w.layer.name: w.layer for w in target_layers}
                    per_member.append(([by_name[layer.name] for layer in member.topology.layers], member.topology))
                for o, t in zip(*params):
                    mask = net.topology.param_mask(o)
                    if mask is not None:
                        self._mask_params.append(t)
                        self._masks.append(mask)
            self._pairs.append((*params, per_member))

    @torch.no_grad()
    def update(self, tau: float) -> None:
        """θ' ← (1−τ)θ' + τθ (τ = 1: a copy), then the sparsity rule."""
        for online, target, per_member in self._pairs:
            if tau == 1.0:
                torch._foreach_copy_(target, online)
            else:
                torch._foreach_lerp_(target, online, tau)
            if self.rule == "topk":
                for layers, topology in per_member:
                    sparsify_target_(layers, topology, tau)
        if self.rule == "mask" and self._masks:
            torch._foreach_mul_(self._mask_params, self._masks)
