"""Actor and twin-critic MLPs, with their weight matrices exposed as named sparse layers.

Initialisation is PyTorch's default `nn.Linear` init (U(±1/sqrt(fan_in)) for weights and
biases), drawn from the run's generator; Sokar et al. multiply it by the mask, no rescaling.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from typing import NamedTuple

from dsrl_platform.sparse.topology import SparseLayer


class WeightLayer(NamedTuple):
    """A weight matrix of a network with its position: depth 0 is the input layer."""

    layer: SparseLayer
    depth: int
    is_output: bool


def _default_init_(tensor: torch.Tensor, fan_in: int, generator: torch.Generator) -> None:
    bound = 1.0 / math.sqrt(fan_in)
    with torch.no_grad():
        tensor.uniform_(-bound, bound, generator=generator)


class MLP(nn.Module):
    """in → hidden (ReLU) … → out, no output activation (the agent adds its own)."""

    def __init__(self, in_dim: int, hidden: list[int], out_dim: int, generator: torch.Generator, name: str):
        super().__init__()
        self.name = name
        sizes = [in_dim, *hidden, out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        for layer in self.layers:
            _default_init_(layer.weight, layer.in_features, generator)
            _default_init_(layer.bias, layer.in_features, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *hidden, last = self.layers
        for layer in hidden:
            x = F.relu(layer(x))
        return last(x)

    def weight_layers(self) -> list[WeightLayer]:
        last = len(self.layers) - 1
        return [WeightLayer(SparseLayer(f"{self.name}.{i}", layer.weight), i, i == last)
                for i, layer in enumerate(self.layers)]

    def biases(self) -> list[torch.Tensor]:
        return [layer.bias for layer in self.layers]


class TwinCritic(nn.Module):
    """Q1 and Q2 computed together: one matmul for both first layers, one bmm per deeper layer.

    Parameters hold both heads: the first layer as a (2·h, in) matrix (rows [0, h) are Q1's),
    deeper layers as (2, out, in) stacks. Each head's matrix is a named `SparseLayer` region, so
    masks, distributions and accounting treat the heads as the separate networks they are.
    """

    def __init__(self, in_dim: int, hidden: list[int], generator: torch.Generator, name: str = "critic"):
        super().__init__()
        self.name = name
        self.h0 = hidden[0]
        self.w_in = nn.Parameter(torch.empty(2 * self.h0, in_dim))
        self.b_in = nn.Parameter(torch.empty(2 * self.h0))
        sizes = [*hidden, 1]
        self.ws = nn.ParameterList(nn.Parameter(torch.empty(2, b, a)) for a, b in zip(sizes[:-1], sizes[1:]))
        self.bs = nn.ParameterList(nn.Parameter(torch.empty(2, 1, b)) for b in sizes[1:])
        _default_init_(self.w_in, in_dim, generator)
        _default_init_(self.b_in, in_dim, generator)
        for w, b in zip(self.ws, self.bs):
            _default_init_(w, w.shape[-1], generator)
            _default_init_(b, w.shape[-1], generator)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Both heads: (2, batch)."""
        x = torch.cat([obs, action], dim=1)
        h = F.relu(F.linear(x, self.w_in, self.b_in))  # (B, 2h)
        h = h.view(x.shape[0], 2, self.h0).transpose(0, 1)  # (2, B, h)
        *hidden, last = range(len(self.ws))
        for i in hidden:
            h = F.relu(torch.baddbmm(self.bs[i], h, self.ws[i].transpose(1, 2)))
        return torch.baddbmm(self.bs[last], h, self.ws[last].transpose(1, 2)).squeeze(-1)

    def q1(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q1 alone (TD3's actor loss): (batch,)."""
        x = torch.cat([obs, action], dim=1)
        h = F.relu(F.linear(x, self.w_in[: self.h0], self.b_in[: self.h0]))
        *hidden, last = range(len(self.ws))
        for i in hidden:
            h = F.relu(F.linear(h, self.ws[i][0], self.bs[i][0, 0]))
        return F.linear(h, self.ws[last][0], self.bs[last][0, 0]).squeeze(-1)

    def weight_layers(self) -> list[WeightLayer]:
        h, last = self.h0, len(self.ws)
        layers = []
        for head in (0, 1):
            q = f"{self.name}.q{head + 1}"
            layers.append(WeightLayer(SparseLayer(f"{q}.0", self.w_in, slice(head * h, (head + 1) * h)), 0, False))
            layers += [WeightLayer(SparseLayer(f"{q}.{i + 1}", w, head), i + 1, i + 1 == last)
                       for i, w in enumerate(self.ws)]
        return layers

    def biases(self) -> list[torch.Tensor]:
        return [self.b_in, *self.bs]
