"""RL-agnostic sparse training for torch modules: layer densities, masks, topology updaters,
parameter and FLOP accounting. Imports only torch (no RL, Ray or MLflow)."""

from .distributions import DISTRIBUTIONS, er, er_density, erk, uniform
from .flops import (ParamCounts, linear_forward_flops, mlp_forward_flops, param_counts,
                    rigl_training_flops, rigl_update_extra_flops, split_weights_biases, training_flops)
from .init import sparse_fans, sparse_init_
from .network import SparseNetwork, WeightLayer
from .topology import SparseLayer, Topology, sparsify_target_
from .updaters import (DROP_RULES, SCHEDULES, UPDATERS, DenseUpdater, GradualPruningUpdater,
                       RigLUpdater, SETUpdater, SparseTraining, StaticUpdater, Updater)

__all__ = [
    "DISTRIBUTIONS", "er", "er_density", "erk", "uniform",
    "ParamCounts", "linear_forward_flops", "mlp_forward_flops", "param_counts",
    "rigl_training_flops", "rigl_update_extra_flops", "split_weights_biases", "training_flops",
    "sparse_fans", "sparse_init_", "SparseNetwork", "WeightLayer", "SparseLayer", "Topology", "sparsify_target_",
    "DROP_RULES", "SCHEDULES", "UPDATERS", "DenseUpdater", "GradualPruningUpdater",
    "RigLUpdater", "SETUpdater", "SparseTraining", "StaticUpdater", "Updater",
]
