"""Sparse training of a group of networks held in stacked parameters (one optimizer for all).

The group's masks live in one `Topology` over every member's layers (regions of the stacked
parameters), so masking gradients and weights costs one operation per parameter for the whole
group. Each member keeps its own updater, generator and schedule state, working on a
`TopologyView` of its own layers: a member's topology update drops and grows only its
connections and resets only its optimizer state. Members step in lockstep (same gradient-step
count), so a schedule is due for all of them at once.
"""

from __future__ import annotations

import itertools

import torch

from .topology import SparseLayer, Topology
from .updaters import SparseTraining, Updater

_versions = itertools.count(1 << 40)  # disjoint from Topology's own version numbers


class TopologyView:
    """Member `indices` of a group topology, with the interface the updaters use."""

    def __init__(self, group: Topology, indices: list[int]):
        self.group, self.indices = group, indices
        self.layers: list[SparseLayer] = [group.layers[i] for i in indices]
        self.version = next(_versions)

    def mask(self, i: int) -> torch.Tensor:
        return self.group.mask(self.indices[i])

    def param_mask(self, param: torch.nn.Parameter) -> torch.Tensor | None:
        return self.group.param_mask(param)

    @property
    def params(self) -> list[torch.nn.Parameter]:
        return self.group.params

    def changed(self) -> None:
        self.group.changed()
        self.version = next(_versions)

    def apply_(self) -> None:
        self.group.apply_()

    def nnz(self) -> list[int]:
        all_nnz = self.group.nnz()
        return [all_nnz[i] for i in self.indices]

    def numel(self) -> list[int]:
        return [self.group.numel()[i] for i in self.indices]

    def sparsity(self) -> list[float]:
        return [1.0 - k / n for k, n in zip(self.nnz(), self.numel())]


class GroupTraining:
    """Replaces `optimizer.step()` for a group: mask, one optimizer step, mask, then each
    member's topology update when due (the `SparseTraining.step` contract, per member)."""

    def __init__(self, topology: Topology | None, updaters: list[Updater], optimizer: torch.optim.Optimizer,
                 *, replaces_step: bool = False):
        self.topology, self.updaters, self.optimizer = topology, updaters, optimizer
        self.replaces_step = replaces_step
        self.steps_taken = 0

    def step(self, step: int) -> None:
        self.steps_taken += 1
        topo = self.topology
        if topo is None:
            self.optimizer.step()
            return
        due = [u for u in self.updaters if u.is_due(step)]
        if due and self.replaces_step:
            for u in due:
                u.update(step, self.optimizer)
            return
        dense = ([None if p.grad is None else p.grad.clone() for p in topo.params]
                 if due and any(u.uses_gradient for u in due) else None)
        topo.mask_grads_()
        # No second pass over the weights: an element-wise optimizer (Adam, AdamW, SGD…) leaves
        # an absent weight at 0 — its gradient is masked and its moments are 0 (reset whenever a
        # topology update drops or grows it), so its update is 0, weight decay included.
        self.optimizer.step()
        if due:
            if dense is not None:
                for p, g in zip(topo.params, dense):
                    if g is not None:
                        p.grad.copy_(g)
            for u in due:
                u.update(step, self.optimizer)

    def member(self, g: int) -> MemberTraining:
        return MemberTraining(self, g)

    def state_dict(self) -> dict:
        return {"topology": None if self.topology is None else self.topology.state_dict(),
                "updaters": [u.state_dict() for u in self.updaters], "steps_taken": self.steps_taken}

    def load_state_dict(self, state: dict) -> None:
        if self.topology is not None:
            self.topology.load_state_dict(state["topology"])
        for u, s in zip(self.updaters, state["updaters"], strict=True):
            u.load_state_dict(s)
        self.steps_taken = int(state["steps_taken"])


class MemberTraining:
    """One member's view of a group's training: its counters and its updater."""

    def __init__(self, group: GroupTraining, g: int):
        self.group, self.g = group, g

    @property
    def updater(self) -> Updater:
        return self.group.updaters[self.g]

    @property
    def steps_taken(self) -> int:
        return self.group.steps_taken

    @property
    def updates_done(self) -> int:
        return self.updater.updates_done

    @property
    def last_churn(self) -> int:
        return self.updater.last_churn


__all__ = ["GroupTraining", "MemberTraining", "SparseTraining", "TopologyView"]


class GroupNetwork:
    """A group's network: the stacked module, its training, and each member as a SparseNetwork
    (its layers are regions of the stacked parameters; accounting and metrics are per member)."""

    def __init__(self, name: str, module: torch.nn.Module, topology: Topology | None, training: GroupTraining,
                 members: list):
        self.name, self.module, self.topology, self.training, self.members = name, module, topology, training, members
