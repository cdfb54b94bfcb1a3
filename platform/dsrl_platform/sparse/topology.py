"""Masks over a set of weight matrices: create, apply, count, save, load.

A `SparseLayer` names one (n_out, n_in) weight matrix: a whole parameter, or a region of one
(fused or stacked parameters, e.g. both critics' first layers in one tensor). A `Topology`
keeps one float mask per distinct parameter — 1.0 outside sparse regions — so applying the
masks every gradient step costs one in-place multiply per parameter and nothing else.

Masks are changed only by `Topology` and the updaters; code that edits `mask(i)` in place
must call `changed()` afterwards (the per-layer nonzero counts are cached).
"""

from __future__ import annotations

import itertools
from collections.abc import Container
from dataclasses import dataclass, field

import numpy as np
import torch

Index = int | slice | tuple | None


@dataclass
class SparseLayer:
    name: str
    param: torch.nn.Parameter
    # Region of `param` holding this layer's (n_out, n_in) matrix, as basic indexing
    # (int / slice / tuple of them), so that param[index] is a view; None = whole param.
    index: Index = None
    # Used by sparsify_target_ on target layers: the online topology version at which this
    # layer's support was last found inside the online mask.
    _in_mask_at: int | None = field(default=None, init=False, repr=False, compare=False)
    _off_mask_at: int | None = field(default=None, init=False, repr=False, compare=False)
    _off_mask: "np.ndarray | None" = field(default=None, init=False, repr=False, compare=False)

    @property
    def weight(self) -> torch.Tensor:
        """View of this layer's weights (param.data, so in-place edits bypass autograd)."""
        return self.param.data if self.index is None else self.param.data[self.index]

    @property
    def grad(self) -> torch.Tensor | None:
        g = self.param.grad
        return g if g is None or self.index is None else g[self.index]

    @property
    def shape(self) -> torch.Size:
        return self.weight.shape


def _region(t: torch.Tensor, index: Index) -> torch.Tensor:
    return t if index is None else t[index]


_versions = itertools.count()


class Topology:
    """Sparse masks of `layers`; layer i keeps exactly round(densities[i] · numel) connections.

    `version` changes (to a number no other topology uses) whenever the masks change."""

    def __init__(self, layers: list[SparseLayer], densities: list[float] | None,
                 generator: torch.Generator | None, *, masks: list[torch.Tensor] | None = None):
        """Random masks with `densities` drawn from `generator`, or the given `masks` (one per
        layer, 0/1 of the layer's shape: a group's topology takes its members' masks)."""
        if masks is not None:
            densities = [float(m.mean()) for m in masks]
        if len(densities) != len(layers):
            raise ValueError(f"densities: {len(densities)} values for {len(layers)} layers")
        for layer, d in zip(layers, densities):
            if not 0.0 <= d <= 1.0:
                raise ValueError(f"densities: {layer.name} has density {d}, outside [0, 1]")
        self.layers = list(layers)
        # One mask per distinct parameter, in first-seen order (ids are stable while we hold
        # references to the parameters).
        self._params: list[torch.nn.Parameter] = []
        self._masks: list[torch.Tensor] = []
        slot: dict[int, int] = {}
        for layer in self.layers:
            if id(layer.param) not in slot:
                slot[id(layer.param)] = len(self._params)
                self._params.append(layer.param)
                self._masks.append(torch.ones_like(layer.param.data))
        self._slot = [slot[id(layer.param)] for layer in self.layers]
        self._check_disjoint()
        self._views = [_region(self._masks[s], layer.index)
                       for s, layer in zip(self._slot, self.layers)]
        for i, (view, d) in enumerate(zip(self._views, densities)):
            if masks is not None:
                view.copy_(masks[i])
                continue
            # Exactly k ones at uniformly random positions: the first k of a random permutation
            # (drawn on the CPU generator, so the same seed gives the same mask on any device).
            n = view.numel()
            k = round(d * n)
            flat = torch.zeros(n, dtype=view.dtype)
            flat[torch.randperm(n, generator=generator)[:k]] = 1.0
            view.copy_(flat.view(view.shape))
        self.version = next(_versions)
        self._nnz: list[int] | None = None
        self.apply_()

    def _check_disjoint(self) -> None:
        cover = [torch.zeros(p.shape, dtype=torch.int32) for p in self._params]
        for s, layer in zip(self._slot, self.layers):
            _region(cover[s], layer.index).add_(1)
        for s, c in enumerate(cover):
            if int(c.max()) > 1:
                names = [la.name for t, la in zip(self._slot, self.layers) if t == s]
                raise ValueError(f"layers: regions of {names} overlap in one parameter")

    # --- per-step operations: one in-place op per parameter ----------------------------
    def apply_(self, skip: Container[int] = ()) -> None:
        """weights *= masks (but the parameters whose id is in `skip`)."""
        with torch.no_grad():
            for p, m in zip(self._params, self._masks):
                if id(p) not in skip:
                    p.mul_(m)

    def mask_grads_(self, skip: Container[int] = ()) -> None:
        """grads *= masks (parameters without a gradient, or whose id is in `skip`, are skipped)."""
        with torch.no_grad():
            for p, m in zip(self._params, self._masks):
                if p.grad is not None and id(p) not in skip:
                    p.grad.mul_(m)

    # --- inspection ---------------------------------------------------------------------
    def mask(self, i: int) -> torch.Tensor:
        """View of layer i's mask (float, 1.0 = connection exists)."""
        return self._views[i]

    def param_mask(self, param: torch.nn.Parameter) -> torch.Tensor | None:
        """The whole mask of `param` (1.0 outside its sparse regions), or None if unmasked."""
        for p, m in zip(self._params, self._masks):
            if p is param:
                return m
        return None

    @property
    def params(self) -> list[torch.nn.Parameter]:
        """Distinct masked parameters, in the order of `state_dict()['masks']`."""
        return list(self._params)

    def changed(self) -> None:
        """Call after editing masks in place: drops the cached counts, bumps `version`."""
        self._nnz = None
        self.version = next(_versions)

    def nnz(self) -> list[int]:
        if self._nnz is None:
            self._nnz = [int(torch.count_nonzero(v)) for v in self._views]
        return list(self._nnz)

    def numel(self) -> list[int]:
        return [v.numel() for v in self._views]

    def sparsity(self) -> list[float]:
        return [1.0 - k / n for k, n in zip(self.nnz(), self.numel())]

    # --- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"names": [layer.name for layer in self.layers],
                "masks": [m.detach().to("cpu", torch.bool) for m in self._masks]}

    def load_state_dict(self, state: dict) -> None:
        names = [layer.name for layer in self.layers]
        if list(state["names"]) != names:
            raise ValueError(f"topology: checkpoint layers {list(state['names'])} != {names}")
        for m, saved in zip(self._masks, state["masks"], strict=True):
            if tuple(saved.shape) != tuple(m.shape):
                raise ValueError(f"topology: checkpoint mask shape {tuple(saved.shape)} != {tuple(m.shape)}")
            m.copy_(saved)
        self.changed()
        self.apply_()


def _keep_largest_(w: torch.Tensor, k: int) -> None:
    """Zero all but the k largest-|w| entries of w (in place; w may be a strided view).

    Same result as a stable descending sort keeping the first k (ties: the lower flat index
    stays), without sorting: the (numel−k)-th smallest |w| is the threshold v; everything
    below v goes, and of the entries equal to v the highest-indexed go until numel−k are gone.
    """
    a = w.abs().flatten()
    n_drop = a.numel() - k
    if n_drop <= 0:
        return
    v = torch.kthvalue(a, n_drop).values
    drop = a < v
    ties = (a == v).nonzero().squeeze(1)
    n_ties = n_drop - int(drop.sum())
    drop[ties[ties.numel() - n_ties:]] = True
    w.masked_fill_(drop.view(w.shape), 0.0)


def _host_array(t: torch.Tensor) -> np.ndarray:
    """A numpy array of `t`: the same memory on CPU (writes go through), a copy from a GPU."""
    return t.numpy() if t.device.type == "cpu" else t.cpu().numpy()


def _keep_largest_off_mask_(w: torch.Tensor, k: int, off: np.ndarray, entry_bound: float | None = None) -> bool:
    """`_keep_largest_(w, k)` where `off` (flat float32, 1.0 where) marks the positions the online layer does
    not use; returns True when no weight is left there.

    Let θ be the largest |w| off the mask. The online layer has k connections, so at least
    nnz − k nonzeros lie off the mask, all ≤ θ: any entry > θ has nnz − k entries below it and
    survives. The selection therefore runs only among the few nonzeros ≤ θ (old weights of
    dropped connections, tiny new ones), with the same tie rule as `_keep_largest_` (the lower
    flat index stays).

    `entry_bound` tightens θ after a soft update θ' ← (1−τ)θ' + τθ: the weights that just
    entered the target (zero before, now τ·w_online) are ≤ τ·max|w_online|, and there are at
    least nnz − k of them, so that bound works as well — and it is tiny, while old weights of
    dropped connections decay slowly and keep θ large.

    Written in numpy: this runs on every target update for hundreds of steps after each
    topology change, and at these sizes numpy's per-call cost is a fraction of torch's.
    """
    host = _host_array(w)
    a = np.abs(host).ravel()
    off_max = float((a * off).max())  # (np.max's where= is an order of magnitude slower)
    if off_max == 0.0:
        return True
    theta = off_max if entry_bound is None else min(off_max, entry_bound)
    n_drop = int(np.count_nonzero(a)) - k
    if n_drop <= 0:
        return False
    candidates = np.flatnonzero((a <= theta) & (a > 0))[::-1]  # highest flat index first
    values = a[candidates]
    v = np.partition(values, n_drop - 1)[n_drop - 1]  # the n_drop-th smallest value
    below = values < v
    ties = np.flatnonzero(values == v)[: n_drop - int(below.sum())]  # a tie drops the higher index
    dropped = np.concatenate([candidates[below], candidates[ties]])
    if w.device.type == "cpu":
        host[np.unravel_index(dropped, host.shape)] = 0.0
    else:
        flat = torch.zeros(w.numel(), dtype=torch.bool, device=w.device)
        flat[torch.from_numpy(dropped).to(w.device)] = True
        w.masked_fill_(flat.view(w.shape), 0.0)
    # done when no weight is left off the mask: none above θ, and every candidate off it dropped
    return bool(off_max <= theta and off[candidates].sum() == off[dropped].sum())


def sparsify_target_(target_layers: list[SparseLayer], online: Topology, tau: float | None = None) -> None:
    """Sokar et al. 2022: after each soft target update θ' ← τθ + (1−τ)θ', every target layer
    keeps only its k largest-magnitude weights, k = the online layer's number of connections,
    so the target networks stay as sparse as the online ones.

    Shortcut (exact, same result as the full top-k every call): once a target layer's nonzeros
    all lie inside the online mask, the top-k keeps all of them (there are ≤ k, and |w| > 0
    beats every zero) and changes nothing; and it stays that way, because the online weights
    are zero off the mask (SparseTraining applies the masks after every optimizer step), so a
    soft or hard update cannot add weights off the mask. The layer remembers the topology
    `version` at which this was checked and skips all work until the online masks change; only
    then (for the steps after a topology update, while the target still carries weights at
    dropped positions) is the support checked and the top-k run.
    Assumes the target changes only by such updates between calls; after modifying it in
    another way, pass fresh SparseLayer objects.
    """
    if len(target_layers) != len(online.layers):
        raise ValueError(f"target_layers: {len(target_layers)} layers for {len(online.layers)} online layers")
    version, nnz = online.version, online.nnz()
    with torch.no_grad():
        for i, layer in enumerate(target_layers):
            if layer._in_mask_at == version:
                continue
            if layer._off_mask_at != version:  # the online mask changed: recompute its complement
                layer._off_mask = _host_array(1.0 - online.mask(i)).ravel().astype(np.float32)
                layer._off_mask_at = version
            # with τ < 1, new entries are τ·w_online (the 1e-6 slack only widens the candidates)
            bound = (None if tau is None or tau >= 1
                     else float(np.abs(_host_array(online.layers[i].weight)).max()) * tau * (1 + 1e-6))
            if _keep_largest_off_mask_(layer.weight, nnz[i], layer._off_mask, bound):
                layer._in_mask_at = version
