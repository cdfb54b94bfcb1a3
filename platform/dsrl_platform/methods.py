"""Sparse-training methods by name, each with the traits the rest of the platform asks about.

This is the only place that knows what a method *is*. Code elsewhere asks a trait
(`METHODS[cfg.method].dynamic`), never compares method names. A new method is one updater in
`sparse/updaters.py` (its math) plus one entry here (its traits and how the run's options reach
its updater). Torch-free: specs and configs read the traits without importing the agents.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Family = Literal["sokar", "graesser", "rlx2"]


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    sparse: bool = True  # has masks: parameters, FLOPs and targets follow the nonzeros
    dynamic: bool = False  # the topology changes during training (drop and grow: churn)
    dense_gradient: bool = False  # a topology update reads the dense gradient (RigL's FLOP charge)
    starts_dense: bool = False  # masks begin full and thin out (gradual pruning)
    matches_sparsity: bool = False  # dense, with widths solved to the parameter count of a sparse net
    family: Family | None = None  # whose defaults apply: Sokar's (λ, hidden layers), Graesser's or RLx2's
    target_rule: str = "off"  # default sparsity of its target networks (off | topk | mask); Graesser's
    # code keeps targets masked (they copy the masks with the weights), Sokar's DS keeps the top-k
    updater: str = "dense"  # key of sparse.updaters.UPDATERS
    # Options that build its updater, from the resolved run config: (config) -> keyword arguments
    # beside the topology, generator and final densities. None: the updater takes none.
    updater_options: Callable[[Any], dict[str, Any]] | None = None

    @property
    def crosses_sparsity_axis(self) -> bool:
        """Multiplied by a grid's sparsity levels (a dense trial is one run whatever the levels)."""
        return self.sparse or self.matches_sparsity


def _topology_options(drop_rule: Callable[[Any], str]) -> Callable[[Any], dict[str, Any]]:
    def options(cfg: Any) -> dict[str, Any]:
        return {"interval": cfg.topology_interval, "end_step": cfg.grad_step_at(cfg.topology_end),
                "drop_fraction": cfg.drop_fraction, "schedule": cfg.drop_schedule, "drop_rule": drop_rule(cfg)}
    return options


def _pruning_options(cfg: Any) -> dict[str, Any]:
    return {"interval": cfg.prune_interval, "start_step": cfg.grad_step_at(cfg.prune_start),
            "end_step": cfg.grad_step_at(cfg.prune_end)}


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("dense", "no masks: the dense baseline", sparse=False),
    Method("dense_matched", "dense with hidden widths scaled so that its parameter count matches the sparse "
           "network at the given sparsity (Graesser's width-matched baseline)", sparse=False,
           matches_sparsity=True, family="graesser"),
    Method("static", "a fixed random sparse mask (Sokar's Static-TD3, Graesser's static)",
           family="sokar", updater="static"),
    Method("ds", "Sokar's dynamic sparsity: SET-style drop by sign-split magnitude, random regrowth",
           dynamic=True, family="sokar", updater="ds", target_rule="topk",
           updater_options=_topology_options(lambda cfg: cfg.drop_rule)),
    Method("set", "SET (Graesser): drop the smallest |w|, regrow at random, cosine drop fraction",
           dynamic=True, family="graesser", updater="set", target_rule="mask",
           updater_options=_topology_options(lambda cfg: "magnitude")),
    Method("rigl", "RigL (Evci et al.): drop the smallest |w|, regrow at the largest dense gradient",
           dynamic=True, dense_gradient=True, family="graesser", updater="rigl", target_rule="mask",
           updater_options=_topology_options(lambda cfg: "magnitude")),
    Method("prune", "gradual magnitude pruning (Zhu & Gupta), from dense to the target sparsity",
           starts_dense=True, family="graesser", updater="prune", target_rule="mask",
           updater_options=_pruning_options),
    # RLx2's topology evolution is RigL's updater with their schedule; their other two parts
    # (multi-step targets, dynamic-capacity replay) are actor-critic options it switches on.
    Method("rlx2", "RLx2 (Tan et al. 2023): RigL's topology evolution on their schedule (every 10k steps, "
           "cosine drop from 0.5 to the end, magnitude-initialised masks), with 3-step targets and the "
           "dynamic-capacity buffer on by default (TD3, SAC)", dynamic=True, dense_gradient=True, family="rlx2",
           updater="rigl", target_rule="mask", updater_options=_topology_options(lambda cfg: "magnitude")),
)}

MethodName = Literal["dense", "dense_matched", "static", "ds", "set", "rigl", "prune", "rlx2"]
assert set(MethodName.__args__) == set(METHODS), "MethodName must list every registered method"  # type: ignore[attr-defined]


def method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"method: unknown {name!r} (choose from {', '.join(METHODS)})") from None
