"""The agents' networks, with their weight tensors exposed as named sparse layers.

MLP (actors, value and Q-networks on vectors), TwinCritic (TD3/SAC's Q1 and Q2 in one pass)
and ConvQNetwork (MinAtar's small net, Atari's Nature CNN). Every network lists its weights as
`WeightLayer`s (`weight_layers()`) and its biases (`biases()`): the sparse library masks,
counts and updates exactly those. Its hidden layers are listed as `Units` (`hidden_units()`)
and their activations tapped in `forward` (dsrl_platform/neurons.py: dormant neurons, ReDo).
Built under `torch.device("meta")` they give the shapes without allocating (how configs are
validated).

With sparse kernels on (`sparse_kernels`), the sparse library sets `kernels` on MLP and
TwinCritic; while some layer runs sparse each product asks it for its layer's path
(sparse/kernels), otherwise the dense code runs as it always did.

Initialisers draw from the run's generator. `torch_default` is PyTorch's `nn.Linear` init
(U(±1/√fan_in) for weights and biases), which Sokar et al. multiply by the mask, no rescaling.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from dsrl_platform.neurons import Region, Taps, Units
from dsrl_platform.sparse.kernels import Paths
from dsrl_platform.sparse.network import WeightLayer
from dsrl_platform.sparse.topology import SparseLayer

# (weight, bias, generator) -> None, in place. fan_in/out are read off the weight's shape.
Init = Callable[[torch.Tensor, torch.Tensor, torch.Generator | None], None]


def _fans(weight: torch.Tensor) -> tuple[int, int]:
    receptive = math.prod(weight.shape[2:]) if weight.dim() > 2 else 1
    return weight.shape[-1 if weight.dim() == 2 else 1] * receptive, weight.shape[-2 if weight.dim() == 2 else 0] * receptive


def _uniform_(tensor: torch.Tensor, bound: float, generator: torch.Generator | None) -> None:
    with torch.no_grad():
        tensor.uniform_(-bound, bound, generator=generator)


def torch_default(weight: torch.Tensor, bias: torch.Tensor, generator: torch.Generator | None) -> None:
    """PyTorch's nn.Linear/nn.Conv2d init: weights and biases U(±1/√fan_in)."""
    bound = 1.0 / math.sqrt(_fans(weight)[0])
    _uniform_(weight, bound, generator)
    _uniform_(bias, bound, generator)


def he_truncated_normal(weight: torch.Tensor, bias: torch.Tensor, generator: torch.Generator | None) -> None:
    """Keras VarianceScaling(2, fan_in, truncated normal) with zero biases (TF-Agents' DQN):
    N(0, σ²) cut at ±2σ, σ = √(2/fan_in)/0.8796 so that the truncated variance is 2/fan_in."""
    std = math.sqrt(2.0 / _fans(weight)[0]) / 0.87962566103423978
    with torch.no_grad():
        nn.init.trunc_normal_(weight, 0.0, std, -2 * std, 2 * std, generator=generator)
        bias.zero_()


def glorot_uniform(weight: torch.Tensor, bias: torch.Tensor, generator: torch.Generator | None) -> None:
    """Keras' default (Dopamine's Nature CNN): U(±√(6/(fan_in+fan_out))), zero biases."""
    fan_in, fan_out = _fans(weight)
    _uniform_(weight, math.sqrt(6.0 / (fan_in + fan_out)), generator)
    with torch.no_grad():
        bias.zero_()


def q_head(weight: torch.Tensor, bias: torch.Tensor, generator: torch.Generator | None) -> None:
    """TF-Agents' DQN Q-value head (Graesser's classic-control net): U(±0.03), bias −0.2."""
    _uniform_(weight, 0.03, generator)
    with torch.no_grad():
        bias.fill_(-0.2)


def orthogonal(weight: torch.Tensor, bias: torch.Tensor, generator: torch.Generator | None) -> None:
    """Keras' Orthogonal (gain 1) with zero biases (TF-Agents' PPO networks)."""
    with torch.no_grad():
        if weight.device.type != "meta":
            nn.init.orthogonal_(weight, generator=generator)
        bias.zero_()


def value_head(weight: torch.Tensor, bias: torch.Tensor, generator: torch.Generator | None) -> None:
    """TF-Agents' value head: U(±0.03), zero bias."""
    _uniform_(weight, 0.03, generator)
    with torch.no_grad():
        bias.zero_()


def mean_head(weight: torch.Tensor, bias: torch.Tensor, generator: torch.Generator | None) -> None:
    """Keras VarianceScaling(0.1) (TF-Agents' PPO action means): truncated normal, σ² = 0.1/fan_in."""
    std = math.sqrt(0.1 / _fans(weight)[0]) / 0.87962566103423978
    with torch.no_grad():
        nn.init.trunc_normal_(weight, 0.0, std, -2 * std, 2 * std, generator=generator)
        bias.zero_()


INITS: dict[str, Init] = {"torch_default": torch_default, "he_truncated_normal": he_truncated_normal,
                          "glorot_uniform": glorot_uniform, "q_head": q_head, "orthogonal": orthogonal,
                          "value_head": value_head, "mean_head": mean_head}
ACTIVATIONS = {"relu": F.relu, "tanh": torch.tanh}


class MLP(Taps, nn.Module):
    """in → hidden (ReLU, or tanh) … → out, no output activation (the agent adds its own)."""

    kernels: Paths | None = None  # sparse compute paths, set by the sparse library

    def __init__(self, in_dim: int, hidden: list[int], out_dim: int, generator: torch.Generator | None,
                 name: str, hidden_init: Init = torch_default, output_init: Init | None = None,
                 activation: str = "relu"):
        super().__init__()
        self.name, self.activation = name, ACTIVATIONS[activation]
        sizes = [in_dim, *hidden, out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.inits = [output_init if output_init is not None and i == len(self.layers) - 1 else hidden_init
                      for i in range(len(self.layers))]
        for layer, init in zip(self.layers, self.inits):
            init(layer.weight, layer.bias, generator)
        self.unit_names = [f"{name}.{i}" for i in range(len(hidden))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *hidden, last = self.layers
        k = self.kernels
        if k is not None and k.active:
            for layer, unit_name in zip(hidden, self.unit_names):
                x = self.activation(k.linear(x, layer.weight, layer.bias))
                self.tap(unit_name, x)
            return k.linear(x, last.weight, last.bias)
        for layer, unit_name in zip(hidden, self.unit_names):
            x = self.activation(layer(x))
            self.tap(unit_name, x)
        return last(x)

    def hidden_units(self) -> list[Units]:
        last = len(self.layers) - 1
        return [Units(unit_name, Region(layer.weight), Region(layer.bias), Region(self.layers[i + 1].weight),
                      self.inits[i], penultimate=i + 1 == last)
                for i, (layer, unit_name) in enumerate(zip(self.layers, self.unit_names))]

    def weight_layers(self) -> list[WeightLayer]:
        last = len(self.layers) - 1
        return [WeightLayer(SparseLayer(f"{self.name}.{i}", layer.weight), i, i == last)
                for i, layer in enumerate(self.layers)]

    def biases(self) -> list[torch.Tensor]:
        return [layer.bias for layer in self.layers]


class TwinCritic(Taps, nn.Module):
    """Q1 and Q2 computed together: one matmul for both first layers, one bmm per deeper layer.

    Parameters hold both heads: the first layer as a (2·h, in) matrix (rows [0, h) are Q1's),
    deeper layers as (2, out, in) stacks. Each head's matrix is a named `SparseLayer` region, so
    masks, distributions and accounting treat the heads as the separate networks they are.
    On sparse kernels the heads run side by side instead, (B, 2·width): a stacked layer is one
    block-diagonal sparse product (sparse/kernels/csr.py).
    """

    kernels: Paths | None = None  # sparse compute paths, set by the sparse library

    def __init__(self, in_dim: int, hidden: list[int], generator: torch.Generator | None, name: str = "critic",
                 init: Init = torch_default):
        super().__init__()
        self.name, self.init = name, init
        self.h0 = hidden[0]
        self.w_in = nn.Parameter(torch.empty(2 * self.h0, in_dim))
        self.b_in = nn.Parameter(torch.empty(2 * self.h0))
        sizes = [*hidden, 1]
        self.ws = nn.ParameterList(nn.Parameter(torch.empty(2, b, a)) for a, b in zip(sizes[:-1], sizes[1:]))
        self.bs = nn.ParameterList(nn.Parameter(torch.empty(2, 1, b)) for b in sizes[1:])
        if init is torch_default:  # drawn in this order (weights, then bias), both heads at once
            bound = 1.0 / math.sqrt(in_dim)
            _uniform_(self.w_in, bound, generator)
            _uniform_(self.b_in, bound, generator)
            for w, b in zip(self.ws, self.bs):
                _uniform_(w, 1.0 / math.sqrt(w.shape[-1]), generator)
                _uniform_(b, 1.0 / math.sqrt(w.shape[-1]), generator)
        else:  # each head's matrices with their own fans
            for head in (0, 1):
                rows = slice(head * self.h0, (head + 1) * self.h0)
                init(self.w_in.data[rows], self.b_in.data[rows], generator)
                for w, b in zip(self.ws, self.bs):
                    init(w.data[head], b.data[head, 0], generator)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Both heads: (2, batch)."""
        x = torch.cat([obs, action], dim=1)
        k = self.kernels
        if k is not None and k.active:
            h = F.relu(k.linear(x, self.w_in, self.b_in))  # (B, 2h)
            self._tap_heads(0, h.view(x.shape[0], 2, -1).transpose(0, 1))
            *hidden, last = range(len(self.ws))
            for i in hidden:
                h = F.relu(k.linear(h, self.ws[i], self.bs[i]))  # (B, 2·out): both heads at once
                self._tap_heads(i + 1, h.view(x.shape[0], 2, -1).transpose(0, 1))
            return k.linear(h, self.ws[last], self.bs[last]).t()
        h = F.relu(F.linear(x, self.w_in, self.b_in))  # (B, 2h)
        h = h.view(x.shape[0], 2, self.h0).transpose(0, 1)  # (2, B, h)
        self._tap_heads(0, h)
        *hidden, last = range(len(self.ws))
        for i in hidden:
            h = F.relu(torch.baddbmm(self.bs[i], h, self.ws[i].transpose(1, 2)))
            self._tap_heads(i + 1, h)
        return torch.baddbmm(self.bs[last], h, self.ws[last].transpose(1, 2)).squeeze(-1)

    def _tap_heads(self, depth: int, h: torch.Tensor) -> None:
        if self._taps is not None:
            self.tap(f"{self.name}.q1.{depth}", h[0])
            self.tap(f"{self.name}.q2.{depth}", h[1])

    def q1(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q1 alone (TD3's actor loss): (batch,)."""
        x = torch.cat([obs, action], dim=1)
        k = self.kernels
        if k is not None and k.active:  # the first `rows` outputs of each product: Q1's
            h = F.relu(k.linear(x, self.w_in, self.b_in[: self.h0], rows=self.h0))
            *hidden, last = range(len(self.ws))
            for i in hidden:
                h = F.relu(k.linear(h, self.ws[i], self.bs[i][0, 0], rows=self.ws[i].shape[1]))
            return k.linear(h, self.ws[last], self.bs[last][0, 0], rows=1).squeeze(-1)
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

    def hidden_units(self) -> list[Units]:
        """Each head's hidden layers: rows of w_in (first), of ws[i][head] (deeper)."""
        h, last = self.h0, len(self.ws) - 1
        units = []
        for head in (0, 1):
            q = f"{self.name}.q{head + 1}"
            rows = slice(head * h, (head + 1) * h)
            units.append(Units(f"{q}.0", Region(self.w_in, rows), Region(self.b_in, rows), Region(self.ws[0], head),
                               self.init, penultimate=last == 0))
            units += [Units(f"{q}.{i + 1}", Region(self.ws[i], head), Region(self.bs[i], (head, 0)),
                            Region(self.ws[i + 1], head), self.init, penultimate=i + 1 == last)
                      for i in range(last)]
        return units


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TensorFlow's 'same' padding: output ceil(size/stride), the extra pixel after. (before, after, out)"""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


class ConvQNetwork(Taps, nn.Module):
    """Convolutions (ReLU) → flatten → fully connected (ReLU) → one output per action.

    `convs` lists (channels, kernel, stride); `padding` 'valid' or TensorFlow's 'same'
    (Dopamine's Nature CNN); `scale` divides the input (255 for Atari's uint8 frames).
    Input: (batch, channels, height, width).
    """

    def __init__(self, in_shape: tuple[int, int, int], convs: list[tuple[int, int, int]], fc: list[int],
                 n_out: int, generator: torch.Generator | None, name: str, *, padding: str = "valid",
                 scale: float = 1.0, init: Init = torch_default, output_init: Init | None = None):
        super().__init__()
        self.name, self.scale, self.padding, self.init = name, scale, padding, init
        channels, height, width = in_shape
        self.convs = nn.ModuleList()
        self.pads: list[tuple[int, int, int, int]] = []
        self.positions: list[int] = []
        for out_c, kernel, stride in convs:
            if padding == "same":
                top, bottom, height = _same_padding(height, kernel, stride)
                left, right, width = _same_padding(width, kernel, stride)
                self.pads.append((left, right, top, bottom))
            else:
                height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
                self.pads.append((0, 0, 0, 0))
            if height <= 0 or width <= 0:
                raise ValueError(f"network: a {kernel}×{kernel}/{stride} convolution leaves no output for input {in_shape}")
            self.convs.append(nn.Conv2d(channels, out_c, kernel, stride))
            self.positions.append(height * width)
            channels = out_c
        self.unit_names = [f"{name}.conv{i}" for i in range(len(self.convs))]
        self.mlp = MLP(channels * height * width, fc, n_out, generator, name, init, output_init)
        for conv in self.convs:
            init(conv.weight, conv.bias, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if self.scale != 1.0:
            x = x / self.scale
        for conv, pad, unit_name in zip(self.convs, self.pads, self.unit_names):
            x = F.relu(conv(F.pad(x, pad) if any(pad) else x))
            self.tap(unit_name, x)
        return self.mlp(x.flatten(1))

    def weight_layers(self) -> list[WeightLayer]:
        convs = [WeightLayer(SparseLayer(f"{self.name}.conv{i}", conv.weight), i, False, positions)
                 for i, (conv, positions) in enumerate(zip(self.convs, self.positions))]
        dense = [w._replace(depth=w.depth + len(convs)) for w in self.mlp.weight_layers()]
        return convs + dense

    def biases(self) -> list[torch.Tensor]:
        return [conv.bias for conv in self.convs] + self.mlp.biases()

    def hidden_units(self) -> list[Units]:
        """Channels of every convolution (the last one's outgoing weights: its channel's block of
        H·W columns of the first dense layer, as `flatten` orders them), then the dense hidden layers."""
        units = []
        for i, conv in enumerate(self.convs):
            last_conv = i + 1 == len(self.convs)
            outgoing = self.mlp.layers[0].weight if last_conv else self.convs[i + 1].weight
            units.append(Units(self.unit_names[i], Region(conv.weight), Region(conv.bias), Region(outgoing),
                               self.init, block=self.positions[i] if last_conv else 1,
                               penultimate=last_conv and len(self.mlp.layers) == 1))
        return units + self.mlp.hidden_units()
