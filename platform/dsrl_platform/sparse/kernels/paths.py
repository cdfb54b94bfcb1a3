"""Per weight parameter of a network: which path its products take, kept in step with the masks.

`Kernels` belongs to one trained network (beside its Topology and SparseTraining). For each
masked 2-D or stacked 3-D weight it keeps the mask's CSR structure and the chosen back end:
  - mode "sparse": the fastest sparse back end available here, for every such layer;
  - mode "auto": whichever of dense and the sparse back ends measures fastest for the layer
    (calibrate.py), re-decided whenever its number of nonzeros changes (pruning).
The structures are rebuilt lazily, at the first use after the topology's `version` changes (a
topology update, a checkpoint load): one pass over each mask (`rebuilds` and `rebuild_seconds`
count what that costs; `calibration_seconds` what measuring the paths cost).

A module asks through `Paths` (its `kernels` attribute): `paths.linear(x, weight, bias)` runs
the chosen path for that weight. A target network gets its own `Paths` over the same kernels,
usable only while its weights provably lie inside the online masks (agents/targets.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from ..topology import Topology
from . import backends as _backends
from .calibrate import fastest
from .csr import CSR
from .linear import SparseLinear, dense_linear, dense_weight_grad, sparse_forward

Mode = Literal["auto", "dense", "sparse"]
# Acting (a batch of one) and other small batches stay dense: a kernel call and the transposes
# cost more than a dense matrix-vector product of these sizes.
MIN_BATCH = 8


@dataclass(eq=False)
class LayerKernel:
    name: str
    param: nn.Parameter
    csr: CSR | None = None
    backend: object | None = None  # None: the dense path
    timings: dict[str, float] = field(default_factory=dict)  # calibration: seconds per step of each path
    recording: bool = False  # keep (Xᵀ, dYᵀ) of each backward for the dense gradient (RigL)
    feature_major_out: bool = False  # the next layer is sparse too: hand it Y as a transposed view
    feature_major_grad: bool = False  # the previous layer is sparse: hand it dX as one
    records: list = field(default_factory=list)

    @property
    def path(self) -> str:
        return "dense" if self.backend is None else self.backend.name


class Kernels:
    """The compute paths of one network's masked weights (see the module docstring)."""

    def __init__(self, name: str, module: nn.Module, topology: Topology, mode: Mode, batch_size: int,
                 record_dense_grads: bool = False):
        if mode not in ("auto", "sparse"):
            raise ValueError(f"sparse_kernels: {mode!r} builds no kernels (auto or sparse)")
        self.topology, self.mode, self.batch_size = topology, mode, batch_size
        names = {id(p): n for n, p in module.named_parameters()}
        self.layers = [LayerKernel(f"{name}.{names[id(p)]}", p, recording=record_dense_grads)
                       for p in topology.params if p.dim() in (2, 3) and id(p) in names]
        self.rebuilds, self.rebuild_seconds, self.calibration_seconds = 0, 0.0, 0.0
        self._version: int | None = None
        self._sparse: list[LayerKernel] = []  # the layers on a sparse path (cached per version)
        self._nonzeros: dict[int, torch.Tensor] = {}
        self.sync()

    # --- structure ---------------------------------------------------------------------------
    def sync(self) -> None:
        """Rebuild the structures (and re-decide the paths) if the masks changed since."""
        if self._version == self.topology.version:
            return
        sparse_before = False  # the layers are in forward order: each feeds the next
        for layer in self.layers:
            start = time.perf_counter()
            old = None if layer.csr is None else layer.csr.nnz
            layer.csr = CSR.from_mask(self.topology.param_mask(layer.param).detach())
            self.rebuild_seconds += time.perf_counter() - start
            if layer.csr.nnz != old:
                start = time.perf_counter()
                self._choose(layer, sparse_before)
                self.calibration_seconds += time.perf_counter() - start
            if layer.backend is not None:
                start = time.perf_counter()
                layer.csr.transposed()  # the backward's Wᵀ structure, built now rather than in the backward
                self.rebuild_seconds += time.perf_counter() - start
            sparse_before = layer.backend is not None
        for before, after in zip(self.layers, self.layers[1:]):
            before.feature_major_out = after.feature_major_grad = (before.backend is not None
                                                                   and after.backend is not None)
        self._version = self.topology.version
        self._sparse = [layer for layer in self.layers if layer.backend is not None]
        self._nonzeros = {id(layer.param): layer.csr.flat for layer in self._sparse}
        self.rebuilds += 1

    def _choose(self, layer: LayerKernel, feature_major_input: bool) -> None:
        p = layer.param
        available = _backends.available(p.device, p.dtype)
        if self.mode == "sparse":
            layer.backend = available[0]
            return
        choice, layer.timings = fastest(layer.csr, p.shape, self.batch_size, available, p.device, feature_major_input)
        layer.backend = next((b for b in available if b.name == choice), None)

    def paths(self) -> dict[str, str]:
        """Layer name → 'dense' | 'native' | 'torch' (logged with the run)."""
        self.sync()
        return {layer.name: layer.path for layer in self.layers}

    @property
    def sparse_layers(self) -> list[LayerKernel]:
        self.sync()
        return self._sparse

    # --- what SparseTraining asks ------------------------------------------------------------
    def nonzeros(self) -> dict[int, torch.Tensor]:
        """id(param) → flat positions of its nonzeros, for the layers on a sparse path (the
        positions Adam updates)."""
        self.sync()
        return self._nonzeros

    def write_dense_grads(self) -> None:
        """param.grad ← the dense gradient of the last backward, for the sparse-path layers
        (RigL's topology update scores every empty position by it)."""
        for layer in self.sparse_layers:
            if layer.records:
                layer.param.grad.copy_(dense_weight_grad(layer.param.shape, layer.records))

    def clear_records(self) -> None:
        for layer in self.layers:
            layer.records.clear()

    def view(self, module: nn.Module, online: nn.Module | None = None,
             usable: Callable[[], bool] | None = None) -> Paths:
        """Paths for `module`: the online network itself, or a copy of `online` (a target),
        whose parameters map by position to the online ones."""
        by_id = {id(layer.param): layer for layer in self.layers}
        if online is None:
            mapping = by_id
        else:
            mapping = {id(t): by_id[id(o)] for o, t in zip(online.parameters(), module.parameters(), strict=True)
                       if id(o) in by_id}
        return Paths(self, mapping, usable)


class Paths:
    """What a module multiplies with: `linear(x, weight, bias)` on its chosen path."""

    def __init__(self, kernels: Kernels, layers: dict[int, LayerKernel], usable: Callable[[], bool] | None):
        self.kernels, self.layers, self.usable = kernels, layers, usable

    def __deepcopy__(self, memo) -> None:
        # A copied module (a target network) has other weights: it starts on the dense path,
        # and whoever made the copy gives it paths of its own (Kernels.view).
        return None

    @property
    def active(self) -> bool:
        """Some layer runs sparse now (modules keep their dense code otherwise)."""
        return bool(self.kernels.sparse_layers) and (self.usable is None or self.usable())

    def linear(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
               rows: int | None = None) -> torch.Tensor:
        """x·Wᵀ + b (see linear.dense_linear for stacks and `rows`)."""
        self.kernels.sync()
        layer = self.layers.get(id(weight))
        if (layer is None or layer.backend is None or x.shape[0] < MIN_BATCH
                or (self.usable is not None and not self.usable())):
            return dense_linear(x, weight, bias, rows)
        csr = layer.csr if rows is None else layer.csr.top(rows, weight.shape[-1])
        if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad
                                        or (bias is not None and bias.requires_grad)):
            return SparseLinear.apply(x, weight, bias, layer, csr)
        return sparse_forward(x, weight, bias, layer, csr)  # targets, acting: no autograd node


def attach(module: nn.Module, paths: Paths | None) -> None:
    """Give every submodule that multiplies through `kernels` (MLP, TwinCritic) these paths."""
    for m in module.modules():
        if hasattr(type(m), "kernels"):
            m.kernels = paths
