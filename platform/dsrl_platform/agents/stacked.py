"""A group's networks as one: members' parameters stacked along a leading group dimension.

`stack(members)` turns G networks of one architecture (built one by one, each from its own
generator, so member g starts exactly as the ungrouped run with its seed) into one module whose
forward runs all members with one batched matmul per layer: inputs and outputs carry the group
dimension first, (G, B, …). Each member's weight tensors are regions of the stacked parameters
(`weight_layers(g)`), so masks, updaters and accounting treat the members as the separate
networks they are; members never mix (no operation reduces over the group dimension).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from dsrl_platform.agents.networks import MLP, ConvQNetwork, TwinCritic
from dsrl_platform.neurons import Region, Taps, Units
from dsrl_platform.sparse.network import WeightLayer
from dsrl_platform.sparse.topology import SparseLayer


def _stacked(tensors: list[torch.Tensor], shape: tuple[int, ...] | None = None) -> nn.Parameter:
    t = torch.stack([x.detach() for x in tensors])
    return nn.Parameter(t if shape is None else t.reshape(shape))


class StackedMLP(Taps, nn.Module):
    """G MLPs: weights (G, out, in), biases (G, 1, out); (G, B, in) → (G, B, out)."""

    def __init__(self, members: list[MLP]):
        super().__init__()
        first = members[0]
        self.name, self.activation, self.groups = first.name, first.activation, len(members)
        self.unit_names, self.inits = first.unit_names, first.inits
        self.weights = nn.ParameterList(_stacked([m.layers[i].weight for m in members])
                                        for i in range(len(first.layers)))
        self.biases_ = nn.ParameterList(_stacked([m.layers[i].bias.unsqueeze(0) for m in members])
                                        for i in range(len(first.layers)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *hidden, last = range(len(self.weights))
        for i in hidden:
            x = self.activation(torch.baddbmm(self.biases_[i], x, self.weights[i].transpose(1, 2)))
            self.tap(self.unit_names[i], x)
        return torch.baddbmm(self.biases_[last], x, self.weights[last].transpose(1, 2))

    def hidden_units(self, g: int = 0) -> list[Units]:
        last = len(self.weights) - 1
        return [Units(self.unit_names[i], Region(self.weights[i], g), Region(self.biases_[i], (g, 0)),
                      Region(self.weights[i + 1], g), self.inits[i], penultimate=i + 1 == last) for i in range(last)]

    def weight_layers(self, g: int = 0) -> list[WeightLayer]:
        last = len(self.weights) - 1
        return [WeightLayer(SparseLayer(f"{self.name}.{i}", w, g), i, i == last) for i, w in enumerate(self.weights)]

    def biases(self, g: int = 0) -> list[torch.Tensor]:
        return [b[g] for b in self.biases_]


class StackedTwinCritic(Taps, nn.Module):
    """G twin critics: first layer (G, 2h, in), deeper layers (G, 2, out, in); → (G, 2, B)."""

    def __init__(self, members: list[TwinCritic]):
        super().__init__()
        first = members[0]
        self.name, self.h0, self.groups, self.init = first.name, first.h0, len(members), first.init
        self.w_in = _stacked([m.w_in for m in members])
        self.b_in = _stacked([m.b_in.unsqueeze(0) for m in members])
        self.ws = nn.ParameterList(_stacked([m.ws[i] for m in members]) for i in range(len(first.ws)))
        self.bs = nn.ParameterList(_stacked([m.bs[i] for m in members]) for i in range(len(first.ws)))

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        G, B = obs.shape[0], obs.shape[1]
        x = torch.cat([obs, action], dim=-1)
        h = F.relu(torch.baddbmm(self.b_in, x, self.w_in.transpose(1, 2)))  # (G, B, 2h)
        h = h.view(G, B, 2, self.h0).transpose(1, 2).reshape(G * 2, B, self.h0)
        self._tap_heads(0, h, G)
        *hidden, last = range(len(self.ws))
        for i in hidden:
            w, b = self.ws[i], self.bs[i]
            h = F.relu(torch.baddbmm(b.flatten(0, 1), h, w.flatten(0, 1).transpose(1, 2)))
            self._tap_heads(i + 1, h, G)
        w, b = self.ws[last], self.bs[last]
        return torch.baddbmm(b.flatten(0, 1), h, w.flatten(0, 1).transpose(1, 2)).view(G, 2, B)

    def _tap_heads(self, depth: int, h: torch.Tensor, G: int) -> None:
        if self._taps is not None:  # h: (G·2, B, units), members' heads side by side
            heads = h.view(G, 2, *h.shape[1:])
            self.tap(f"{self.name}.q1.{depth}", heads[:, 0])
            self.tap(f"{self.name}.q2.{depth}", heads[:, 1])

    def hidden_units(self, g: int = 0) -> list[Units]:
        """Member g's heads' hidden layers (as TwinCritic.hidden_units, one member's regions)."""
        h, last = self.h0, len(self.ws) - 1
        units = []
        for head in (0, 1):
            q = f"{self.name}.q{head + 1}"
            rows = slice(head * h, (head + 1) * h)
            units.append(Units(f"{q}.0", Region(self.w_in, (g, rows)), Region(self.b_in, (g, 0, rows)),
                               Region(self.ws[0], (g, head)), self.init, penultimate=last == 0))
            units += [Units(f"{q}.{i + 1}", Region(self.ws[i], (g, head)), Region(self.bs[i], (g, head, 0)),
                            Region(self.ws[i + 1], (g, head)), self.init, penultimate=i + 1 == last)
                      for i in range(last)]
        return units

    def q1(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q1 alone: (G, B)."""
        x = torch.cat([obs, action], dim=-1)
        h = F.relu(torch.baddbmm(self.b_in[:, :, : self.h0], x, self.w_in[:, : self.h0].transpose(1, 2)))
        *hidden, last = range(len(self.ws))
        for i in hidden:
            h = F.relu(torch.baddbmm(self.bs[i][:, 0], h, self.ws[i][:, 0].transpose(1, 2)))
        return torch.baddbmm(self.bs[last][:, 0], h, self.ws[last][:, 0].transpose(1, 2)).squeeze(-1)

    def weight_layers(self, g: int = 0) -> list[WeightLayer]:
        h, last = self.h0, len(self.ws)
        layers = []
        for head in (0, 1):
            q = f"{self.name}.q{head + 1}"
            layers.append(WeightLayer(SparseLayer(f"{q}.0", self.w_in, (g, slice(head * h, (head + 1) * h))), 0, False))
            layers += [WeightLayer(SparseLayer(f"{q}.{i + 1}", w, (g, head)), i + 1, i + 1 == last)
                       for i, w in enumerate(self.ws)]
        return layers

    def biases(self, g: int = 0) -> list[torch.Tensor]:
        return [self.b_in[g], *(b[g] for b in self.bs)]


class StackedConvQNetwork(Taps, nn.Module):
    """G conv Q-networks as one grouped convolution per layer (members' channels side by side),
    then a stacked MLP; input (G, B, C, H, W)."""

    def __init__(self, members: list[ConvQNetwork]):
        super().__init__()
        first = members[0]
        self.name, self.scale, self.pads, self.groups = first.name, first.scale, first.pads, len(members)
        self.unit_names, self.init = first.unit_names, first.init
        self.positions = first.positions
        self.strides = [c.stride for c in first.convs]
        self.conv_weights = nn.ParameterList(_stacked([m.convs[i].weight for m in members])
                                             for i in range(len(first.convs)))  # (G, out, in, kh, kw)
        self.conv_biases = nn.ParameterList(_stacked([m.convs[i].bias for m in members])
                                            for i in range(len(first.convs)))  # (G, out)
        self.mlp = StackedMLP([m.mlp for m in members])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        G, B = x.shape[0], x.shape[1]
        x = x.float()
        if self.scale != 1.0:
            x = x / self.scale
        x = x.transpose(0, 1).reshape(B, -1, *x.shape[3:])  # (B, G·C, H, W): members as channel groups
        for w, b, pad, stride, unit_name in zip(self.conv_weights, self.conv_biases, self.pads, self.strides,
                                                self.unit_names):
            x = F.pad(x, pad) if any(pad) else x
            x = F.relu(F.conv2d(x, w.flatten(0, 1), b.flatten(), stride=stride, groups=G))
            if self._taps is not None:  # (B, G·C, H, W) → each member's (G, B, C, H, W)
                self.tap(unit_name, x.view(B, G, -1, *x.shape[2:]).transpose(0, 1))
        x = x.view(B, G, -1).transpose(0, 1)  # (G, B, features)
        return self.mlp(x)

    def weight_layers(self, g: int = 0) -> list[WeightLayer]:
        convs = [WeightLayer(SparseLayer(f"{self.name}.conv{i}", w, g), i, False, positions)
                 for i, (w, positions) in enumerate(zip(self.conv_weights, self.positions))]
        return convs + [w._replace(depth=w.depth + len(convs)) for w in self.mlp.weight_layers(g)]

    def biases(self, g: int = 0) -> list[torch.Tensor]:
        return [b[g] for b in self.conv_biases] + self.mlp.biases(g)

    def hidden_units(self, g: int = 0) -> list[Units]:
        units = []
        for i, w in enumerate(self.conv_weights):
            last_conv = i + 1 == len(self.conv_weights)
            outgoing = self.mlp.weights[0] if last_conv else self.conv_weights[i + 1]
            units.append(Units(self.unit_names[i], Region(w, g), Region(self.conv_biases[i], g), Region(outgoing, g),
                               self.init, block=self.positions[i] if last_conv else 1,
                               penultimate=last_conv and len(self.mlp.weights) == 1))
        return units + self.mlp.hidden_units(g)


STACKERS: dict[type, type] = {MLP: StackedMLP, TwinCritic: StackedTwinCritic, ConvQNetwork: StackedConvQNetwork}


def stack(members: list[nn.Module]) -> nn.Module:
    """One module running `members` (same architecture) as a group."""
    kind = type(members[0])
    if any(type(m) is not kind for m in members):
        raise ValueError("stack: members of one group must share their architecture")
    stacker = getattr(kind, "stacked", None) or STACKERS.get(kind)
    if stacker is None:
        raise TypeError(f"stack: no group form for {kind.__name__}")
    return stacker(members)

