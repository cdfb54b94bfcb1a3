"""From a run's options to one network's sparse training (topology + updater + optimizer).

The sparse library counts in its caller's gradient steps (first update = step 1). The run's
options put some schedule points in environment steps (`topology_end`, `prune_start`,
`prune_end`); with one update per environment step after warm-up, gradient step =
environment step − warmup_steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from dsrl_platform.agents.networks import WeightLayer
from dsrl_platform.config import RunConfig
from dsrl_platform.sparse import distributions, updaters
from dsrl_platform.sparse.topology import Topology


@dataclass
class NetworkSparsity:
    """A network's weight layers, which of them are sparse, and how they are trained."""

    layers: list[WeightLayer]  # every weight matrix, sparse or not
    topology: Topology | None  # masks of the sparse ones (None: dense method)
    training: updaters.SparseTraining

    def nnz(self) -> dict[str, int]:
        """Nonzero weights per layer (dense layers count in full)."""
        counts = {w.layer.name: w.layer.weight.numel() for w in self.layers}
        if self.topology is not None:
            counts.update(zip((l.name for l in self.topology.layers), self.topology.nnz()))
        return counts


def _grad_step(cfg: RunConfig, env_step: int) -> int:
    return max(env_step - cfg.warmup_steps, 0)


def _densities(cfg: RunConfig, sparse: list[WeightLayer], sparsity: float | None) -> list[float]:
    shapes = [tuple(w.layer.shape) for w in sparse]
    if cfg.distribution == "er":
        # Sokar: λ1 for the first layer, λ2 for every later one.
        lambdas = [cfg.lambda1 if w.depth == 0 else cfg.lambda2 for w in sparse]
        return distributions.er(shapes, lambdas=lambdas)
    return distributions.DISTRIBUTIONS[cfg.distribution](shapes, sparsity=sparsity)


# How a method's options reach its updater; which class serves a method is the sparse
# library's registry (updaters.UPDATERS). Each takes (topology, resolved config, generator,
# final densities).
def _set_like(drop_rule: Callable[[RunConfig], str]):
    def build(topology, cfg: RunConfig, g: torch.Generator, final: list[float]) -> updaters.Updater:
        return updaters.UPDATERS[cfg.method](
            topology, generator=g, interval=cfg.topology_interval, end_step=_grad_step(cfg, cfg.topology_end),
            drop_fraction=cfg.drop_fraction, schedule=cfg.drop_schedule, drop_rule=drop_rule(cfg))
    return build


def _prune(topology, cfg: RunConfig, g: torch.Generator, final: list[float]) -> updaters.Updater:
    return updaters.UPDATERS[cfg.method](
        topology, generator=g, interval=cfg.prune_interval, start_step=_grad_step(cfg, cfg.prune_start),
        end_step=_grad_step(cfg, cfg.prune_end), final_densities=final)


def _fixed(topology, cfg: RunConfig, g: torch.Generator, final: list[float]) -> updaters.Updater:
    return updaters.UPDATERS[cfg.method](topology, generator=g)


UPDATER_BUILDERS = {
    "dense": _fixed,
    "static": _fixed,
    "ds": _set_like(lambda cfg: cfg.drop_rule),  # Sokar: the paper's or the code's sign split
    "set": _set_like(lambda cfg: "magnitude"),  # Graesser: smallest |w| regardless of sign
    "rigl": _set_like(lambda cfg: "magnitude"),
    "prune": _prune,
}


def check_densities(cfg: RunConfig, obs_dim: int, act_dim: int) -> None:
    """Raise ValueError naming the option if a network's layer densities are impossible
    (e.g. a λ giving density > 1); builds only the weight shapes, not an agent."""
    from dsrl_platform.agents import ALGORITHMS
    from dsrl_platform.agents.networks import MLP, TwinCritic

    cfg = cfg.resolve()
    if cfg.method == "dense":
        return
    g = torch.Generator().manual_seed(0)
    out_dim = act_dim * ALGORITHMS[cfg.algo].actor_out_dim_factor
    for net, sparsity in ((MLP(obs_dim, cfg.hidden_sizes, out_dim, g, "actor"), cfg.actor_sparsity),
                          (TwinCritic(obs_dim + act_dim, cfg.hidden_sizes, g), cfg.critic_sparsity)):
        layers = net.weight_layers()
        _densities(cfg, [w for w in layers if cfg.sparse_layers == "all" or not w.is_output], sparsity)


def build_network_sparsity(
    layers: list[WeightLayer], optimizer: torch.optim.Optimizer, cfg: RunConfig,
    sparsity: float | None, generator: torch.Generator,
) -> NetworkSparsity:
    """Masks and updater for one network (actor, or both critics), from the resolved config."""
    if cfg.method == "dense":
        training = updaters.SparseTraining(None, updaters.DenseUpdater(None, generator=generator), optimizer)
        return NetworkSparsity(layers, None, training)
    sparse = [w for w in layers if cfg.sparse_layers == "all" or not w.is_output]
    final = _densities(cfg, sparse, sparsity)
    # Pruning starts dense and reaches `final` by prune_end; all other methods start sparse.
    initial = [1.0] * len(final) if cfg.method == "prune" else final
    topology = Topology([w.layer for w in sparse], initial, generator)
    updater = UPDATER_BUILDERS[cfg.method](topology, cfg, generator, final)
    training = updaters.SparseTraining(topology, updater, optimizer, replaces_step=bool(cfg.update_replaces_step))
    return NetworkSparsity(layers, topology, training)
