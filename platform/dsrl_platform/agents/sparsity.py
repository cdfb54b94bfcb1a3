"""From a run's options to one network's sparse training (densities, masks, updater, optimizer).

What a method does comes from its registry entry (dsrl_platform.methods): whether it is sparse,
starts dense, and which options build its updater. The sparse library counts in the network's
own gradient steps; options given in environment steps (`topology_end`, `prune_start`, …) are
converted by the algorithm's `grad_step_at`.
"""

from __future__ import annotations

import torch
from torch import nn

from dsrl_platform.config import Resolved
from dsrl_platform.methods import METHODS
from dsrl_platform.sparse import distributions, updaters
from dsrl_platform.sparse.group import GroupNetwork, GroupTraining, TopologyView
from dsrl_platform.sparse.init import magnitude_masks_, sparse_init_
from dsrl_platform.sparse.kernels import Kernels, attach
from dsrl_platform.sparse.network import SparseNetwork, WeightLayer
from dsrl_platform.sparse.topology import Topology


def sparse_layers(cfg: Resolved, layers: list[WeightLayer]) -> list[WeightLayer]:
    """The layers a sparse method masks: all, or all but the output (Sokar)."""
    return [w for w in layers if cfg.sparse_layers == "all" or not w.is_output]


def densities(cfg: Resolved, sparse: list[WeightLayer], sparsity: float | None) -> list[float]:
    """Final density of each sparse layer (ValueError naming the option if impossible)."""
    shapes = [tuple(w.layer.shape) for w in sparse]
    if cfg.distribution == "er":
        # Sokar: λ1 for the first layer, λ2 for every later one.
        lambdas = [cfg.lambda1 if w.depth == 0 else cfg.lambda2 for w in sparse]
        return distributions.er(shapes, lambdas=lambdas)
    return distributions.DISTRIBUTIONS[cfg.distribution](shapes, sparsity=sparsity)


def network_sparsity(cfg: Resolved, name: str) -> float | None:
    """The sparsity option of network `name`: `<name>_sparsity` where the algorithm has one."""
    own = getattr(cfg, f"{name}_sparsity", None)
    return cfg.sparsity if own is None else own


def check_densities(cfg: Resolved, modules: dict[str, nn.Module]) -> None:
    """Raise ValueError naming the option if a network's layer densities are impossible
    (e.g. a λ giving density > 1). `modules` may live on the meta device: only shapes are read."""
    if not METHODS[cfg.method].sparse:
        return
    for name, module in modules.items():
        densities(cfg, sparse_layers(cfg, module.weight_layers()), network_sparsity(cfg, name))


def build_sparse_network(name: str, module: nn.Module, optimizer: torch.optim.Optimizer, cfg: Resolved,
                         generator: torch.Generator, batch_size: int, update_rate: float = 1.0) -> SparseNetwork:
    """Masks and updater for one network, from the resolved config."""
    method = METHODS[cfg.method]
    layers = module.weight_layers()
    if not method.sparse:
        training = updaters.SparseTraining(None, updaters.DenseUpdater(None, generator=generator), optimizer)
        return SparseNetwork(name, module, layers, module.biases(), None, training, batch_size, update_rate)
    sparse = sparse_layers(cfg, layers)
    final = densities(cfg, sparse, network_sparsity(cfg, name))
    # Pruning starts dense and reaches `final` by prune_end; all other methods start sparse.
    initial = [1.0] * len(final) if method.starts_dense else final
    dense = [w.layer.weight.clone() for w in sparse] if cfg.mask_init == "magnitude" else None
    topology = Topology([w.layer for w in sparse], initial, generator)
    if dense is not None:  # RLx2: the largest initial weights instead of random positions
        magnitude_masks_(topology, dense)
    if cfg.fixed_sparse_init and not method.starts_dense:
        sparse_init_(topology, generator)
    options = method.updater_options(cfg) if method.updater_options else {}
    if method.starts_dense:
        options["final_densities"] = final
    updater = updaters.UPDATERS[method.updater](topology, generator=generator, **options)
    kernels = None
    if cfg.sparse_kernels != "dense":  # the module asks its Paths how to multiply (networks.py)
        kernels = Kernels(name, module, topology, cfg.sparse_kernels, batch_size, updater.uses_gradient)
        attach(module, kernels.view(module))
    training = updaters.SparseTraining(topology, updater, optimizer, replaces_step=bool(cfg.update_replaces_step),
                                       kernels=kernels)
    return SparseNetwork(name, module, layers, module.biases(), topology, training, batch_size, update_rate,
                         kernels)


def build_group_network(name: str, modules: list[nn.Module], cfgs: list[Resolved], generators: list[torch.Generator],
                        make_optimizer, batch_size: int, update_rate: float, device: torch.device) -> GroupNetwork:
    """A group's network from its members' modules (built one by one, each from its own
    generator): each member gets its masks and updater exactly as an ungrouped run would, then
    the members are stacked and their masks gathered into one group topology."""
    from dsrl_platform.agents.stacked import stack  # the stacked forms of the networks

    singles = [build_sparse_network(name, m, torch.optim.Adam(m.parameters()), c, g, batch_size, update_rate)
               for m, c, g in zip(modules, cfgs, generators)]
    module = stack(modules).to(device)
    optimizer = make_optimizer(module)
    G = len(modules)
    per_member = [module.weight_layers(g) for g in range(G)]
    if singles[0].topology is None:
        training = GroupTraining(None, [s.training.updater for s in singles], optimizer)
        views: list[TopologyView | None] = [None] * G
        topology = None
    else:
        sparse_names = [layer.name for layer in singles[0].topology.layers]
        layers, masks, indices = [], [], []
        for g, single in enumerate(singles):
            by_name = {w.layer.name: w.layer for w in per_member[g]}
            indices.append(list(range(len(layers), len(layers) + len(sparse_names))))
            layers += [by_name[n] for n in sparse_names]
            masks += [single.topology.mask(i).to(device) for i in range(len(sparse_names))]
        topology = Topology(layers, None, None, masks=masks)
        views = [TopologyView(topology, idx) for idx in indices]
        for single, view in zip(singles, views):
            single.training.updater.topology = view
        training = GroupTraining(topology, [s.training.updater for s in singles], optimizer,
                                 replaces_step=bool(cfgs[0].update_replaces_step))
    members = [SparseNetwork(name, module, per_member[g], module.biases(g), views[g], training.member(g),
                             batch_size, update_rate) for g in range(G)]
    return GroupNetwork(name, module, topology, training, members)
