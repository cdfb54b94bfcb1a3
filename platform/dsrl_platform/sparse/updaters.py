"""Topology updaters: dense, static, SET (Sokar's DS and Graesser's SET), RigL, gradual pruning.

Modelled on JaxPruner's base updater: `update` runs schedule → scores → masks once for every
sparse layer, and each method overrides one hook:
  - `_layer_change(i, step)` says which connections of layer i to drop and which to grow;
  - SET implements it as "drop by the drop rule, grow by `_grow_scores`" (random scores);
  - RigL only replaces `_grow_scores` with the dense gradient magnitude;
  - gradual pruning drops towards a cubic sparsity schedule and never grows.
The base class does the bookkeeping common to all: write the masks, zero regrown weights, reset
the optimizer moments of every changed position, count churn.

All step arguments are the caller's gradient-step counter (1-based). Every random draw comes
from the CPU `torch.Generator` given to the updater.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .kernels import Kernels
from .kernels import adam as sparse_adam
from .topology import Topology

Schedule = Callable[[float, int, int | None], float]


def _constant(fraction: float, step: int, end_step: int | None) -> float:
    return fraction


def _cosine(fraction: float, step: int, end_step: int | None) -> float:
    # Graesser et al. 2022 (after RigL, Evci et al. 2020): the drop fraction decays from its
    # initial value to 0 at end_step:  η_t = η · (1 + cos(π · t / T_end)) / 2.
    assert end_step is not None, "cosine schedule needs end_step"
    return fraction * (1.0 + math.cos(math.pi * min(step, end_step) / end_step)) / 2.0


SCHEDULES: dict[str, Schedule] = {"constant": _constant, "cosine": _cosine}


# --- selection helpers (deterministic ties: stable sorts keep the lower flat index first) ------
def _smallest(scores: torch.Tensor, candidates: torch.Tensor, n: int) -> torch.Tensor:
    """Flat indices of the n candidates with the smallest scores."""
    idx = candidates.nonzero().squeeze(1)
    return idx[torch.sort(scores[idx], stable=True).indices[:n]]


def _largest(scores: torch.Tensor, candidates: torch.Tensor, n: int) -> torch.Tensor:
    idx = candidates.nonzero().squeeze(1)
    return idx[torch.sort(scores[idx], descending=True, stable=True).indices[:n]]


def _positions(idx: torch.Tensor, n: int, like: torch.Tensor) -> torch.Tensor:
    out = torch.zeros(n, dtype=torch.bool, device=like.device)
    out[idx] = True
    return out


# --- drop rules: (weights, active, count budget η) -> flat bool of dropped positions ----------
# Weights exactly 0 count with the positives (they are the "smallest positive" ones).
def _drop_magnitude(w: torch.Tensor, active: torch.Tensor, eta: float, cap: int) -> torch.Tensor:
    # Graesser et al. (SET/RigL, as in Evci et al.): the round(η·nnz) smallest |w|, any sign.
    n = min(round(eta * int(active.sum())), cap)
    return _positions(_smallest(w.abs(), active, n), w.numel(), w)


def _drop_paper(w: torch.Tensor, active: torch.Tensor, eta: float, cap: int) -> torch.Tensor:
    # Sokar et al. 2022 (paper): c = round(η·nnz) connections removed, half of them the
    # smallest positive weights and half the negative weights closest to zero (odd c: the
    # extra one is positive). If one sign has too few weights, the other makes up the rest.
    pos, neg = active & (w >= 0), active & (w < 0)
    c = min(round(eta * int(active.sum())), cap)
    n_pos, n_neg = int(pos.sum()), int(neg.sum())
    k_neg = min(c // 2, n_neg)
    k_pos = min(c - k_neg, n_pos)
    k_neg = c - k_pos
    a = w.abs()
    return _positions(torch.cat([_smallest(a, pos, k_pos), _smallest(a, neg, k_neg)]), w.numel(), w)


def _drop_code(w: torch.Tensor, active: torch.Tensor, eta: float, cap: int) -> torch.Tensor:
    # Sokar et al.'s code (changeConnectivitySET): fraction ζ = η of the positive weights
    # (the smallest) and ζ of the negative weights (those closest to zero), each rounded.
    pos, neg = active & (w >= 0), active & (w < 0)
    k_pos, k_neg = round(eta * int(pos.sum())), round(eta * int(neg.sum()))
    # Fewer empty positions than drops (very dense layers): shrink to `cap`, splitting it as
    # evenly as the two counts allow; a no-op when k_pos + k_neg <= cap.
    k_pos = min(k_pos, cap - min(k_neg, cap // 2))
    k_neg = min(k_neg, cap - k_pos)
    a = w.abs()
    return _positions(torch.cat([_smallest(a, pos, k_pos), _smallest(a, neg, k_neg)]), w.numel(), w)


DropRule = Callable[[torch.Tensor, torch.Tensor, float, int], torch.Tensor]
DROP_RULES: dict[str, DropRule] = {"paper": _drop_paper, "code": _drop_code,
                                   "magnitude": _drop_magnitude}


class Updater:
    """Base: schedule (`is_due`) → per layer `_layer_change` → write masks, reset state."""

    uses_gradient = False  # True: `update` reads the dense param.grad (RigL)

    def __init__(self, topology: Topology | None, *, generator: torch.Generator,
                 interval: int = 1000, end_step: int | None = None, start_step: int = 0):
        if interval <= 0:
            raise ValueError(f"interval: must be > 0, got {interval}")
        if end_step is not None and end_step < start_step:
            raise ValueError(f"end_step: {end_step} comes before start_step {start_step}")
        self.topology = topology
        self.generator = generator
        self.interval = interval
        self.start_step = start_step
        self.end_step = end_step
        self.updates_done = 0
        self.last_churn = 0

    def is_due(self, step: int) -> bool:
        """Every `interval` gradient steps (1-based count), from start_step up to end_step."""
        return (step > 0 and step % self.interval == 0 and step >= self.start_step
                and (self.end_step is None or step <= self.end_step))

    def _layer_change(self, i: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat bool (dropped, grown) positions of layer i; dropped ⊆ active, grown ⊆ empty."""
        raise NotImplementedError

    def update(self, step: int, optimizer: torch.optim.Optimizer | None) -> int:
        """Change the masks, apply them, zero regrown weights, reset the optimizer's per-weight
        state (Adam's exp_avg / exp_avg_sq / …) at every dropped and regrown position.
        Returns the number of connections regrown."""
        topo = self.topology
        assert topo is not None, f"{type(self).__name__} has no topology to update"
        churn = 0
        touched = {id(p): torch.zeros(p.shape, dtype=torch.bool, device=p.device)
                   for p in topo.params}
        with torch.no_grad():
            changes = [self._layer_change(i, step) for i in range(len(topo.layers))]
            for i, (dropped, grown) in enumerate(changes):
                layer, mask = topo.layers[i], topo.mask(i)
                dropped, grown = dropped.view(mask.shape), grown.view(mask.shape)
                mask.masked_fill_(dropped, 0.0).masked_fill_(grown, 1.0)
                either = dropped | grown
                layer.weight.masked_fill_(either, 0.0)  # regrown connections start at 0
                t = touched[id(layer.param)]
                if layer.index is None:
                    t |= either
                else:
                    t[layer.index] |= either
                churn += int(grown.sum())
            topo.changed()
            topo.apply_()
            if optimizer is not None:
                _reset_state(optimizer, topo.params, touched)
        self.updates_done += 1
        self.last_churn = churn
        return churn

    def state_dict(self) -> dict:
        return {"updates_done": self.updates_done, "last_churn": self.last_churn,
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.updates_done = int(state["updates_done"])
        self.last_churn = int(state["last_churn"])
        self.generator.set_state(state["generator"])


def _reset_state(optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter],
                 touched: dict[int, torch.Tensor]) -> None:
    # Every tensor of the parameter's shape in its optimizer state is per-weight state
    # (Adam: exp_avg, exp_avg_sq, max_exp_avg_sq; SGD: momentum_buffer); scalars like 'step' stay.
    for p in params:
        state = optimizer.state.get(p)
        if not state:
            continue
        for v in state.values():
            if torch.is_tensor(v) and v.shape == p.shape:
                v.masked_fill_(touched[id(p)], 0)


class DenseUpdater(Updater):
    """No topology at all (dense baseline). Other methods' options are accepted and ignored."""

    def __init__(self, topology: Topology | None = None, *, generator: torch.Generator,
                 interval: int = 1000, end_step: int | None = None, **_ignored):
        super().__init__(topology, generator=generator, interval=interval, end_step=end_step)

    def is_due(self, step: int) -> bool:
        return False


class StaticUpdater(DenseUpdater):
    """Fixed random mask (Sokar's Static-TD3, Graesser's static): never updated."""


class SETUpdater(Updater):
    """Drop by a drop rule, regrow as many at random empty positions, new weights = 0.

    Sokar et al.'s DS-TD3/DS-SAC (drop_rule "paper" or "code", constant schedule) and
    Graesser et al.'s SET (drop_rule "magnitude", cosine schedule). Regrowth only considers
    positions that were empty before this update (a just-dropped connection is not regrown),
    so the drop count is capped by the number of empty positions and the layer's number of
    connections never changes.
    """

    def __init__(self, topology: Topology, *, generator: torch.Generator, interval: int = 1000,
                 end_step: int | None = None, drop_fraction: float = 0.5,
                 schedule: str = "constant", drop_rule: str = "magnitude"):
        super().__init__(topology, generator=generator, interval=interval, end_step=end_step)
        if not 0.0 < drop_fraction <= 1.0:
            raise ValueError(f"drop_fraction: must be in (0, 1], got {drop_fraction}")
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule: unknown {schedule!r} (choose from {sorted(SCHEDULES)})")
        if drop_rule not in DROP_RULES:
            raise ValueError(f"drop_rule: unknown {drop_rule!r} (choose from {sorted(DROP_RULES)})")
        if schedule == "cosine" and not end_step:
            raise ValueError("end_step: the cosine drop schedule needs an end step > 0")
        self.drop_fraction = drop_fraction
        self.schedule = schedule
        self.drop_rule = drop_rule

    def fraction(self, step: int) -> float:
        """Drop fraction η at `step` (the schedule hook)."""
        return SCHEDULES[self.schedule](self.drop_fraction, step, self.end_step)

    def _grow_scores(self, i: int) -> torch.Tensor:
        """Flat score per position of layer i; the highest-scoring empty positions are grown.
        SET: i.i.d. uniform scores, i.e. a uniformly random subset of the empty positions."""
        mask = self.topology.mask(i)
        return torch.rand(mask.numel(), generator=self.generator).to(mask.device)

    def _layer_change(self, i: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.topology.layers[i].weight.reshape(-1)
        active = self.topology.mask(i).reshape(-1) > 0
        empty = ~active
        dropped = DROP_RULES[self.drop_rule](w, active, self.fraction(step), int(empty.sum()))
        grown = _positions(_largest(self._grow_scores(i), empty, int(dropped.sum())),
                           w.numel(), w)
        return dropped, grown


class RigLUpdater(SETUpdater):
    """Evci et al. 2020: drop the smallest |w| (as SET "magnitude"), grow where the dense
    gradient |∂L/∂w| is largest among the empty positions (ties: lower index first)."""

    uses_gradient = True

    def __init__(self, topology: Topology, *, generator: torch.Generator, interval: int = 1000,
                 end_step: int | None = None, drop_fraction: float = 0.5,
                 schedule: str = "constant", drop_rule: str = "magnitude"):
        super().__init__(topology, generator=generator, interval=interval, end_step=end_step,
                         drop_fraction=drop_fraction, schedule=schedule, drop_rule=drop_rule)

    def _grow_scores(self, i: int) -> torch.Tensor:
        g = self.topology.layers[i].grad
        if g is None:
            raise RuntimeError(f"RigL: layer {self.topology.layers[i].name} has no gradient "
                               "(call update after loss.backward(), before masking the grads)")
        return g.abs().reshape(-1)


class GradualPruningUpdater(Updater):
    """Zhu & Gupta 2017 gradual magnitude pruning, as used by Graesser et al. 2022.

    Between start_step t0 and end_step t1 the sparsity of each layer follows
        s_t = s_f + (s_i − s_f) · (1 − (t − t0)/(t1 − t0))³
    (s_i: initial sparsity, 0 by default; s_f = 1 − final density of the layer): fast pruning
    early, when many redundant weights exist, slowing as the target is approached. Every
    `interval` steps (and at t1, so the final sparsity is always reached) the smallest-|w|
    remaining weights are removed until the layer has round(s_t · numel) zeros. Nothing regrows.
    The topology starts dense (built with density 1.0); final densities are given here.
    """

    def __init__(self, topology: Topology, *, generator: torch.Generator,
                 final_densities: list[float], start_step: int, end_step: int,
                 interval: int = 1000, initial_sparsity: float = 0.0):
        if end_step is None or not start_step < end_step:
            raise ValueError(f"end_step: must come after start_step ({start_step} >= {end_step})")
        super().__init__(topology, generator=generator, interval=interval, end_step=end_step,
                         start_step=start_step)
        if len(final_densities) != len(topology.layers):
            raise ValueError(f"final_densities: {len(final_densities)} values for "
                             f"{len(topology.layers)} layers")
        for d in final_densities:
            if not 0.0 <= d <= 1.0:
                raise ValueError(f"final_densities: {d} outside [0, 1]")
        if not 0.0 <= initial_sparsity < 1.0:
            raise ValueError(f"initial_sparsity: must be in [0, 1), got {initial_sparsity}")
        self.final_sparsities = [1.0 - d for d in final_densities]
        self.initial_sparsity = initial_sparsity

    def is_due(self, step: int) -> bool:
        return super().is_due(step) or step == self.end_step

    def target_sparsity(self, i: int, step: int) -> float:
        """s_t of layer i (the schedule hook); s_i before t0, s_f after t1."""
        s_i, s_f = self.initial_sparsity, self.final_sparsities[i]
        progress = min(max((step - self.start_step) / (self.end_step - self.start_step), 0.0), 1.0)
        return s_f + (s_i - s_f) * (1.0 - progress) ** 3

    def _layer_change(self, i: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.topology.layers[i].weight.reshape(-1)
        active = self.topology.mask(i).reshape(-1) > 0
        zeros_now = w.numel() - int(active.sum())
        n = max(round(self.target_sparsity(i, step) * w.numel()) - zeros_now, 0)
        dropped = _positions(_smallest(w.abs(), active, n), w.numel(), w)
        return dropped, torch.zeros_like(dropped)


UPDATERS: dict[str, type[Updater]] = {
    "dense": DenseUpdater,
    "static": StaticUpdater,
    "ds": SETUpdater,
    "set": SETUpdater,
    "rigl": RigLUpdater,
    "prune": GradualPruningUpdater,
}


class SparseTraining:
    """One network's sparse training: topology + updater + its optimizer.
    Replaces `optimizer.step()`: call `step(grad_step)` after `loss.backward()`.

    With `kernels` (sparse_kernels auto/sparse), the layers on a sparse path got their gradient
    at the nonzeros only, Adam steps only there (kernels/adam.py), and on RigL's update steps
    their dense gradient is computed from the backward's record."""

    def __init__(self, topology: Topology | None, updater: Updater,
                 optimizer: torch.optim.Optimizer, *, replaces_step: bool = False,
                 kernels: Kernels | None = None):
        self.topology = topology
        self.updater = updater
        self.optimizer = optimizer
        self.replaces_step = replaces_step
        self.kernels = kernels
        self.steps_taken = 0  # calls of `step`: the network's gradient steps (accounting)

    @property
    def last_churn(self) -> int:
        return self.updater.last_churn

    @property
    def updates_done(self) -> int:
        return self.updater.updates_done

    def step(self, step: int) -> None:
        topo, updater, kernels = self.topology, self.updater, self.kernels
        self.steps_taken += 1
        if topo is None:
            self.optimizer.step()
            return
        due = updater.is_due(step)
        dense_grad = due and updater.uses_gradient
        if due and self.replaces_step:
            # Graesser et al.: the mask update replaces that step's gradient update; RigL reads
            # the dense gradient still in param.grad.
            if dense_grad and kernels is not None:
                kernels.write_dense_grads()
            updater.update(step, self.optimizer)
            self._done()
            return
        # RigL after a normal step needs the dense gradient the masking is about to destroy:
        # keep a copy on the (rare) update steps only.
        dense = ([None if p.grad is None else p.grad.clone() for p in topo.params]
                 if dense_grad else None)
        # Parameters Adam steps at their nonzeros only need no masking: their gradient off the
        # mask is never read, their weights there never written.
        nonzeros = self._nonzeros()
        topo.mask_grads_(skip=nonzeros)
        # No second pass over the weights: an element-wise optimizer (Adam, AdamW, SGD…) leaves
        # an absent weight at 0 — its gradient is masked and its moments are 0 (reset whenever a
        # topology update drops or grows it), so its update is 0, weight decay included.
        if nonzeros:
            sparse_adam.step_on_nonzeros(self.optimizer, nonzeros)
        else:
            self.optimizer.step()
        if due:
            if dense is not None:
                for p, g in zip(topo.params, dense):
                    if g is not None:
                        p.grad.copy_(g)
                if kernels is not None:  # the sparse-path layers never had theirs: compute it
                    kernels.write_dense_grads()
            updater.update(step, self.optimizer)
        self._done()

    def _nonzeros(self) -> dict[int, torch.Tensor]:
        """id → nonzero positions of the parameters on a sparse path (if Adam can step there)."""
        if self.kernels is None or not sparse_adam.supports(self.optimizer):
            return {}
        return self.kernels.nonzeros()

    def _done(self) -> None:
        if self.kernels is not None:
            self.kernels.clear_records()

    def state_dict(self) -> dict:
        return {"topology": None if self.topology is None else self.topology.state_dict(),
                "updater": self.updater.state_dict(), "steps_taken": self.steps_taken}

    def load_state_dict(self, state: dict) -> None:
        if self.topology is not None:
            self.topology.load_state_dict(state["topology"])
        self.updater.load_state_dict(state["updater"])
        self.steps_taken = int(state["steps_taken"])
