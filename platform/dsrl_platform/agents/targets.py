"""Target networks that follow their online networks, and keep them as sparse as the online ones.

Rules (`sparse_targets`): `topk` — after every update each target layer keeps its k largest
weights, k = the online layer's nonzeros (Sokar et al.; exact, sparse/topology.py); `mask` —
targets multiplied by the online masks (Graesser et al.'s code copies the masks with the
weights); `off` — targets as the update leaves them.

With sparse kernels, a target runs its forward on the online network's sparse structures while
its weights provably lie inside the online masks: under `mask`, from each masking until the
online topology next changes; under `topk`, while every layer's top-k found its support inside
the mask (sparse/topology.py); under `off`, until the topology first changes (an update mixes
in online weights, zero off the mask, so a fixed mask keeps the support). Otherwise it takes
the dense path.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from dsrl_platform.sparse.kernels import attach
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
        self._topologies: list = []
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
            self._topologies.append(net.topology)
            kernels = getattr(net, "kernels", None)  # (a group's network has none: groups run dense)
            if kernels is not None:
                attach(target, kernels.view(target, net.module, self._inside_masks(len(self._pairs) - 1)))
        self._masked_at: list[int | None] = [None if t is None else t.version for t in self._topologies]

    def _inside_masks(self, i: int):
        """Whether target i's weights lie inside its online masks now (see the module docstring)."""
        def inside() -> bool:
            topology = self._topologies[i]
            if self.rule in ("mask", "off"):  # `off`: masked only once, at the copy
                return self._masked_at[i] == topology.version
            layers, member_topology = self._pairs[i][2][0]
            return all(layer._in_mask_at == member_topology.version for layer in layers)
        return inside

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
            self._masked_at = [None if t is None else t.version for t in self._topologies]
