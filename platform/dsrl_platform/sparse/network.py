"""A trained network as the sparse library sees it: its weight layers, masks, training, costs.

`SparseNetwork` is the unit of accounting and of metric names (params/<name>, sparsity/<name>,
cost/train_flops/<name>): an agent exposes one per network it trains (TD3: actor and critic,
DQN: q, PPO: actor and value). RL-agnostic: it knows layers and counts, not algorithms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from .flops import ParamCounts, training_flops
from .kernels import Kernels
from .topology import SparseLayer, Topology
from .updaters import SparseTraining


class WeightLayer(NamedTuple):
    """A weight tensor of a network with its position: depth 0 is the input layer.

    `positions`: how many times the layer's weights are applied per sample — 1 for a linear
    layer, the output's height × width for a convolution (its FLOPs scale with it)."""

    layer: SparseLayer
    depth: int
    is_output: bool
    positions: int = 1

    @property
    def n_out(self) -> int:
        return self.layer.shape[0]


@dataclass
class SparseNetwork:
    name: str
    module: torch.nn.Module
    layers: list[WeightLayer]  # every weight tensor, sparse or not
    biases: list[torch.nn.Parameter]
    topology: Topology | None  # masks of the sparse layers (None: dense method)
    training: SparseTraining
    batch_size: int  # samples in one of its gradient steps (accounting)
    update_rate: float = 1.0  # its gradient steps per environment step while training
    kernels: Kernels | None = None  # sparse compute paths of its masked layers (None: masked dense)
    _forward: dict[int, int] = field(default_factory=dict, repr=False)

    def kernel_paths(self) -> dict[str, str]:
        """Each masked weight's compute path: 'dense', or the sparse back end that runs it."""
        return {} if self.kernels is None else self.kernels.paths()

    def nnz(self) -> dict[str, int]:
        """Nonzero weights per layer (dense layers count in full)."""
        counts = {w.layer.name: w.layer.weight.numel() for w in self.layers}
        if self.topology is not None:
            counts.update(zip((la.name for la in self.topology.layers), self.topology.nnz()))
        return counts

    def layer_sparsity(self) -> dict[str, float]:
        nnz = self.nnz()
        return {w.layer.name: 1 - nnz[w.layer.name] / w.layer.weight.numel() for w in self.layers}

    def forward_flops(self, dense: bool = False) -> int:
        """FLOPs of one sample's forward pass (RigL's convention, sparse/flops.py): 2 per
        nonzero weight per position, plus the bias adds. Cached per topology version."""
        key = -1 if dense or self.topology is None else self.topology.version
        if key not in self._forward:
            nnz = None if key == -1 else self.nnz()
            flops = sum((2 * (w.layer.weight.numel() if nnz is None else nnz[w.layer.name]) + w.n_out) * w.positions
                        for w in self.layers)
            self._forward = {k: v for k, v in self._forward.items() if k == -1} | {key: flops}
        return self._forward[key]

    def train_flops_per_step(self, dense: bool = False) -> int:
        """One gradient step on its batch: forward + backward ≈ 3 × forward (RigL)."""
        return training_flops(self.forward_flops(dense), self.batch_size)

    def param_counts(self, dense: bool = False) -> ParamCounts:
        """Nonzero weights, and with biases (`dense`: as if unmasked) — Graesser's counting:
        mask sums, every weight of an unmasked layer, every bias. Counted per layer, so a
        network that is a region of stacked parameters (a group member) counts its own."""
        nnz = self.nnz()
        weights = sum(w.layer.weight.numel() if dense else nnz[w.layer.name] for w in self.layers)
        return ParamCounts(weights, weights + sum(b.numel() for b in self.biases))

    @property
    def grad_steps(self) -> int:
        return self.training.steps_taken

    @property
    def topology_updates(self) -> int:
        return self.training.updates_done
