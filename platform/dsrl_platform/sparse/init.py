"""Sparsity-aware initialisation (Graesser et al.'s `fixed_sparse_init`; Evci et al. 2022), and
RLx2's magnitude-chosen initial masks.

A sparse layer initialised like its dense twin and then masked has the wrong scale: a unit
with 10% of its inputs gets 10% of the variance. Graesser et al.'s code redraws every active
weight from U(±√(3 / max(1, (fan_in + fan_out)/2))) — Glorot's uniform with the fans counted
over the *active* connections: fan_in = active inputs of the weight's output unit, fan_out =
active outputs of its input unit (a convolution's taps summed in both). Biases are untouched.
"""

from __future__ import annotations

import torch

from .topology import Topology


def sparse_fans(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per weight position: (active inputs of its output unit, active outputs of its input unit)."""
    m = mask.reshape(mask.shape[0], mask.shape[1], -1)  # (out, in, taps)
    fan_in = m.sum(dim=(1, 2))  # per output unit
    fan_out = m.sum(dim=(0, 2))  # per input unit
    shape = [mask.shape[0], mask.shape[1]] + [1] * (mask.dim() - 2)
    return (fan_in.view(-1, 1, *[1] * (mask.dim() - 2)).expand(shape).expand_as(mask),
            fan_out.view(1, -1, *[1] * (mask.dim() - 2)).expand(shape).expand_as(mask))


@torch.no_grad()
def sparse_init_(topology: Topology, generator: torch.Generator) -> None:
    """Redraw every active weight of every layer of `topology` with its sparse Glorot bound."""
    for i, layer in enumerate(topology.layers):
        mask = topology.mask(i)
        fan_in, fan_out = sparse_fans(mask)
        bound = torch.sqrt(3.0 / torch.clamp((fan_in + fan_out) / 2, min=1.0))
        draw = torch.rand(mask.shape, generator=generator).to(mask.device) * 2 - 1
        layer.weight.copy_(draw * bound * mask)


@torch.no_grad()
def magnitude_masks_(topology: Topology, dense_weights: list[torch.Tensor]) -> None:
    """RLx2's initial masks (Tan et al. 2023, DST_Scheduler.weight_sparsify): each layer keeps its
    k largest |w| of the dense initial weights `dense_weights` (k: its number of connections,
    ties to the lower flat index); the weights are restored and masked."""
    counts = topology.nnz()
    for i, (layer, dense) in enumerate(zip(topology.layers, dense_weights)):
        mask = topology.mask(i)
        keep = torch.sort(dense.abs().flatten(), descending=True, stable=True).indices[:counts[i]]
        flat = torch.zeros(mask.numel(), dtype=mask.dtype, device=mask.device)
        flat[keep.to(mask.device)] = 1.0
        mask.copy_(flat.view(mask.shape))
        layer.weight.copy_(dense)
    topology.changed()
    topology.apply_()
