"""Per-layer densities of sparse weight matrices: uniform, Erdős–Rényi (λ per layer), ERK.

Every function takes the layers' weight shapes — (n_out, n_in) for a linear layer, as torch
stores them; ERK also accepts conv shapes (n_out, n_in, kh, kw) — and returns one density
(fraction of connections kept) per layer, in layer order. Densities are exact floats; the
topology turns them into whole connection counts with round(density · numel).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

Shape = Sequence[int]


def _check_sparsity(sparsity: float) -> None:
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity: must be in [0, 1), got {sparsity}")


def er_density(n_in: int, n_out: int, lam: float) -> float:
    """Erdős–Rényi connection probability of an n_in → n_out layer (no clipping).

    Mocanu et al. 2018 (SET) / Sokar et al. 2022, eq. for the initial topology:
        p = λ · (n_in + n_out) / (n_in · n_out)
    so the layer holds λ·(n_in + n_out) connections on average: the number of connections
    grows linearly with the number of neurons, not with their product.
    """
    return lam * (n_in + n_out) / (n_in * n_out)


def uniform(shapes: Sequence[Shape], *, sparsity: float) -> list[float]:
    """Every layer at the same density 1 − sparsity."""
    _check_sparsity(sparsity)
    return [1.0 - sparsity] * len(shapes)


def er(shapes: Sequence[Shape], *, lambdas: Sequence[float]) -> list[float]:
    """Sokar et al.: one λ per layer (λ1 for the first sparse layer, λ2 for the second, …).

    A λ that would need more connections than the layer has is a configuration error (the
    paper clips to 1, which silently makes the layer dense): raise, naming the option.
    """
    if len(lambdas) != len(shapes):
        raise ValueError(f"lambdas: {len(lambdas)} values for {len(shapes)} sparse layers")
    densities = []
    for i, (shape, lam) in enumerate(zip(shapes, lambdas)):
        n_out, n_in = shape[0], shape[1]
        if lam <= 0:
            raise ValueError(f"lambda{i + 1}: must be > 0, got {lam}")
        d = er_density(n_in, n_out, lam)
        if d > 1.0:
            raise ValueError(
                f"lambda{i + 1}: λ={lam} gives density {d:.4g}>1 for a {n_in}×{n_out} layer")
        densities.append(d)
    return densities


def erk(shapes: Sequence[Shape], *, sparsity: float) -> list[float]:
    """Erdős–Rényi(-Kernel) densities that meet a global sparsity target (Evci et al. 2020, RigL).

    density_l = ε · Σ(shape_l) / Π(shape_l)      — for a linear layer ε·(n_in+n_out)/(n_in·n_out),
    i.e. ER with one shared λ = ε (for MLPs ERK == ER); conv kernels add kh + kw to the sum.
    ε solves  Σ_l density_l · numel_l = (1 − sparsity) · Σ_l numel_l.
    A layer whose density would exceed 1 is made dense and ε is solved again for the others
    with the dense layers' weights taken out of the budget; repeat until every density ≤ 1
    (RigL's `get_sparsities_erdos_renyi`, which makes the layer(s) with the largest raw
    probability dense at each round). The loop ends: each round removes ≥1 layer, and a last
    remaining layer always fits because the budget is < its numel when sparsity > 0.
    """
    _check_sparsity(sparsity)
    numels = [math.prod(s) for s in shapes]
    raw = [sum(s) / n for s, n in zip(shapes, numels)]
    target = (1.0 - sparsity) * sum(numels)
    dense: set[int] = set()
    while len(dense) < len(shapes):
        free = [i for i in range(len(shapes)) if i not in dense]
        budget = target - sum(numels[i] for i in dense)
        eps = budget / sum(raw[i] * numels[i] for i in free)
        top = max(raw[i] for i in free)
        if eps * top <= 1.0:
            return [1.0 if i in dense else eps * raw[i] for i in range(len(shapes))]
        dense.update(i for i in free if raw[i] == top)
    return [1.0] * len(shapes)  # sparsity 0: everything dense


Distribution = Callable[..., list[float]]

DISTRIBUTIONS: dict[str, Distribution] = {"uniform": uniform, "er": er, "erk": erk}
