"""Parameter and FLOP accounting for sparse networks, following RigL (Evci et al. 2020).

Conventions (Evci et al. 2020, appendix "FLOPs"; used by Sokar et al. 2022 for DS-TD3):
  - one multiply-add is 2 FLOPs (a multiplication and an addition);
  - a sparse layer costs in proportion to its nonzero weights: a linear layer with `nnz`
    weights does nnz multiply-adds per sample, i.e. 2·nnz FLOPs, plus n_out for the bias add;
  - activations are not counted;
  - training ≈ 3 × forward: the backward pass computes the gradient w.r.t. the inputs and
    w.r.t. the weights, each about as costly as the forward pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import torch

from .topology import Topology


def linear_forward_flops(nnz_weights: int, n_out: int, bias: bool = True) -> int:
    """Per-sample forward FLOPs of one linear layer: 2·nnz (+ n_out for the bias add)."""
    return 2 * nnz_weights + (n_out if bias else 0)


def mlp_forward_flops(layers: list[tuple[int, int, bool]]) -> int:
    """Per-sample forward FLOPs of a stack of linear layers given as (nnz_weights, n_out, has_bias)."""
    return sum(linear_forward_flops(nnz, n_out, bias) for nnz, n_out, bias in layers)


def training_flops(forward_flops_per_sample: int, batch: int) -> int:
    """FLOPs of one gradient step on a batch: forward + backward ≈ 3 × forward (RigL)."""
    return 3 * forward_flops_per_sample * batch


def rigl_update_extra_flops(sparse_forward: int, dense_forward: int, batch: int) -> int:
    """Extra FLOPs of one RigL topology update (Evci et al. 2020, appendix): that step's
    backward computes the dense gradient, 2·f_S + f_D per sample instead of 3·f_S."""
    return (dense_forward - sparse_forward) * batch


def rigl_training_flops(sparse_forward: int, dense_forward: int, batch: int, interval: int) -> float:
    """Average FLOPs per gradient step of RigL: one step in ΔT+1 is an update step,
    (3·f_S·ΔT + 2·f_S + f_D) / (ΔT + 1) per sample."""
    extra = rigl_update_extra_flops(sparse_forward, dense_forward, batch)
    return training_flops(sparse_forward, batch) + extra / (interval + 1)


class ParamCounts(NamedTuple):
    weights: int       # connections kept (mask sums; unmasked weights in full) — Sokar's #params
    with_biases: int   # weights + biases — Graesser's parameter count


def param_counts(weights: Iterable[torch.nn.Parameter], biases: Iterable[torch.nn.Parameter],
                 topology: Topology | None = None) -> ParamCounts:
    """Count parameters of a network: a weight parameter masked by `topology` counts its mask's
    ones (1.0 outside sparse regions, so dense parts count in full), other weights their
    numel; biases count in full (Graesser et al.: mask sums + biases + weights without a mask)."""
    w = 0
    for p in weights:
        m = None if topology is None else topology.param_mask(p)
        w += p.numel() if m is None else int(torch.count_nonzero(m))
    b = sum(p.numel() for p in biases)
    return ParamCounts(w, w + b)


def split_weights_biases(module: torch.nn.Module) -> tuple[list[torch.nn.Parameter], list[torch.nn.Parameter]]:
    """(weights, biases) of a module, telling them apart by the parameter's name ('…bias')."""
    weights, biases = [], []
    for name, p in module.named_parameters():
        (biases if name.rsplit(".", 1)[-1].startswith("bias") else weights).append(p)
    return weights, biases
