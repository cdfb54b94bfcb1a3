"""Dormant neurons, their recycling (ReDo) and the rank of a network's features.

Sokar, Agarwal, Castro, Evci (ICML 2023), "The Dormant Neuron Phenomenon in Deep RL": the score
of hidden unit i of a layer on a batch is its mean |activation| over the batch (and, for a
convolution, over positions: a channel is one unit) divided by the layer's average of that mean,

    s_i = E_x |a_i(x)| / ( (1/H) Σ_j E_x |a_j(x)| ),

and the unit is τ-dormant when s_i ≤ τ. ReDo recycles the dormant units every so many gradient
steps: their incoming weights are drawn afresh by the layer's initialiser, their biases and
outgoing weights set to zero (the next layer does not notice the change at once), and the
optimizer's per-weight state of all three reset (Dopamine's labs/redo resets Adam's moments of
the incoming and outgoing weights; here the biases' too).

The rank of the penultimate features follows Kumar et al. 2021 ("Implicit under-parameterization"):
srank_δ = min{k : Σ_{i≤k} σ_i ≥ (1 − δ) Σ_i σ_i} over the singular values of the (batch, units)
feature matrix, δ = 0.01.

RL-agnostic: a network says where each hidden layer's units live (`hidden_units()`, a list of
`Units`: regions of its parameters, unit u at index u) and hands its hidden activations to
`tap` in its own forward (the `Taps` mixin). Addressing units by index within a region of a
parameter keeps stacked parameters (a twin critic's heads, later a group of seeds) workable.
Composable with sparse training: the caller re-applies the masks after recycling, so a recycled
unit keeps only its masked-in incoming connections and the layer its number of connections.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

Index = int | slice | tuple | None
Init = Callable[[torch.Tensor, torch.Tensor, torch.Generator | None], None]
SRANK_DELTA = 0.01  # Kumar et al. 2021
_EPS = 1e-9  # Dopamine's labs/redo: score / (mean score + 1e-9)


class Region(NamedTuple):
    """A layer's tensor inside a parameter: `param[index]` (basic indexing, so a view)."""

    param: nn.Parameter
    index: Index = None

    def of(self, tensor: torch.Tensor | None = None) -> torch.Tensor:
        """The region of `tensor` (a tensor shaped like the parameter; default its data)."""
        t = self.param.data if tensor is None else tensor
        return t if self.index is None else t[self.index]


class Units(NamedTuple):
    """One hidden layer's units and where their weights live.

    Unit u is row u of `weight` (a linear layer's (out, in) matrix, a convolution's
    (out, in, k, k) kernels), entry u of `bias`, and the `block` consecutive columns from
    u·block of `outgoing` (the next layer's weights; a channel flattened into a dense layer
    spans its H·W positions)."""

    name: str  # the layer's name, as its incoming weight layer is named (e.g. critic.q1.0)
    weight: Region
    bias: Region
    outgoing: Region
    init: Init  # the layer's initialiser: draws fresh incoming weights (weight, bias, generator)
    block: int = 1
    penultimate: bool = False  # its outgoing layer is the output layer: its activations are the features

    @property
    def count(self) -> int:
        return self.weight.of().shape[0]


class Taps:
    """Mixin of networks: `forward` hands each hidden layer's activation (batch first, units on
    dim 1) to `tap`; inside `recording(...)` it is kept, elsewhere the call does nothing."""

    _taps: dict[str, torch.Tensor] | None = None

    def tap(self, name: str, activation: torch.Tensor) -> None:
        if self._taps is not None:
            self._taps[name] = activation


@contextmanager
def recording(module: nn.Module) -> Iterator[dict[str, torch.Tensor]]:
    """The hidden activations of `module`'s forward passes inside the block, by layer name."""
    activations: dict[str, torch.Tensor] = {}
    tapped = [m for m in module.modules() if isinstance(m, Taps)]
    for m in tapped:
        m._taps = activations
    try:
        yield activations
    finally:
        for m in tapped:
            m._taps = None


def activations(module: nn.Module, inputs: tuple[Any, ...]) -> dict[str, torch.Tensor]:
    """One forward pass of `module` on `inputs` without gradients: its hidden activations."""
    with torch.no_grad(), recording(module) as acts:
        module(*inputs)
    return acts


def unit_scores(activation: torch.Tensor) -> torch.Tensor:
    """s_i of every unit of a layer (module docstring); `activation` is (batch, units, …)."""
    dims = [0, *range(2, activation.dim())]
    mean_abs = activation.abs().mean(dim=dims)
    return mean_abs / (mean_abs.mean() + _EPS)


def dormant(activation: torch.Tensor, tau: float) -> torch.Tensor:
    """Bool per unit: τ-dormant (s_i ≤ τ)."""
    return unit_scores(activation) <= tau


def effective_rank(features: torch.Tensor, delta: float = SRANK_DELTA) -> float:
    """srank_δ of a (batch, units, …) feature matrix (Kumar et al. 2021); 0 for all-zero features,
    NaN for features that are not finite (a diverged network)."""
    if not bool(torch.isfinite(features).all()):
        return float("nan")
    sv = torch.linalg.svdvals(features.flatten(1).double())
    total = float(sv.sum())
    if total == 0.0:
        return 0
    return int((torch.cumsum(sv, 0) < (1 - delta) * total).sum()) + 1


@dataclass
class NeuronStats:
    """One network on one batch: τ-dormant fraction per hidden layer and over all its hidden
    units, and the mean srank of its penultimate features (a twin critic: over both heads)."""

    layers: dict[str, float]
    fraction: float
    feature_rank: float | None


def neuron_stats(module: nn.Module, inputs: tuple[Any, ...], tau: float) -> NeuronStats:
    return stats_of(activations(module, inputs), module.hidden_units(), tau)


def group_neuron_stats(module: nn.Module, inputs: tuple[Any, ...], tau: float, groups: int) -> list[NeuronStats]:
    """A group's stacked network (agents/stacked.py, activations (G, batch, units, …)): each member's stats."""
    acts, units = activations(module, inputs), module.hidden_units()
    return [stats_of({name: a[g] for name, a in acts.items()}, units, tau) for g in range(groups)]


def stats_of(acts: Mapping[str, torch.Tensor], hidden: list[Units], tau: float) -> NeuronStats:
    layers, dead, total, ranks = {}, 0, 0, []
    for units in hidden:
        d = dormant(acts[units.name], tau)
        layers[units.name] = int(d.sum()) / d.numel()
        dead, total = dead + int(d.sum()), total + d.numel()
        if units.penultimate:
            ranks.append(effective_rank(acts[units.name]))
    return NeuronStats(layers, dead / total if total else 0.0, sum(ranks) / len(ranks) if ranks else None)


@torch.no_grad()
def recycle_(units: Units, dead: torch.Tensor, optimizer: torch.optim.Optimizer | None,
             generator: torch.Generator) -> int:
    """ReDo on one layer: the `dead` units (bool per unit) get fresh incoming weights from the
    layer's initialiser (drawn on the CPU generator: the same numbers on any device), zero
    biases and zero outgoing weights; the optimizer's per-weight state of those entries (Adam's
    moments) is zeroed. Masks are the caller's to re-apply. Returns the number recycled."""
    n = int(dead.sum())
    if n == 0:
        return 0
    weight, bias = units.weight.of(), units.bias.of()
    fresh_w = torch.empty(weight.shape, dtype=weight.dtype)
    fresh_b = torch.empty(bias.shape, dtype=bias.dtype)
    units.init(fresh_w, fresh_b, generator)
    rows = dead.to(weight.device)
    cols = rows.repeat_interleave(units.block)
    weight[rows] = fresh_w.to(weight.device)[rows]
    bias[rows] = 0.0
    units.outgoing.of()[:, cols] = 0.0
    if optimizer is not None:
        for region, select in ((units.weight, (rows,)), (units.bias, (rows,)), (units.outgoing, (slice(None), cols))):
            for value in optimizer.state.get(region.param, {}).values():
                # per-weight state (Adam's exp_avg, exp_avg_sq) has the parameter's shape; 'step' stays
                if torch.is_tensor(value) and value.shape == region.param.shape:
                    region.of(value)[select] = 0
    return n


class ReDo:
    """Recycles the τ-dormant units of every hidden layer of `networks` every `every` gradient
    steps, scored on the batch of that step (one forward pass per network, before any change).

    `networks`: name -> object with `.module` (with `hidden_units()` and taps), `.training.optimizer`
    and `.topology` (None for a dense network): sparse/network.py's SparseNetwork."""

    def __init__(self, networks: Mapping[str, Any], every: int, tau: float, generator: torch.Generator):
        self.networks, self.every, self.tau, self.generator = networks, every, tau, generator
        self.recycled = 0  # units recycled so far

    def due(self, step: int) -> bool:
        return step > 0 and step % self.every == 0

    def maybe_recycle(self, step: int, inputs: Mapping[str, tuple[Any, ...]]) -> int:
        """Recycle if `step` (the agent's gradient-step count) is due; the number recycled."""
        if not self.due(step):
            return 0
        n = 0
        for name, net in self.networks.items():
            acts = activations(net.module, inputs[name])
            for units in net.module.hidden_units():
                n += recycle_(units, dormant(acts[units.name], self.tau), net.training.optimizer, self.generator)
            if net.topology is not None:
                net.topology.apply_()  # a recycled unit keeps only its masked-in connections
        self.recycled += n
        return n

    def state_dict(self) -> dict[str, Any]:
        return {"recycled": self.recycled, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.recycled = int(state["recycled"])
        self.generator.set_state(state["generator"])
