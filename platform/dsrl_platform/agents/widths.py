"""Width-matched dense baselines (Graesser et al.): the dense network with as many parameters as
the sparse one.

Per network, the width multiplier w whose dense parameter count — Graesser's counting, weights
plus biases — is closest to the sparse network's at the run's sparsity (ERK over every layer:
its masks' sums plus every bias). Hidden widths are int(max(1, n·w)) as in TF-Agents; the
counts are read off networks built on the meta device, so the architecture is written once.
"""

from __future__ import annotations

from typing import Any

import torch

from dsrl_platform.sparse import distributions

_STEPS = 30  # bisection steps over w in (0, 1]: far below one unit of width


def _counts(cfg: Any, widths: dict[str, float]) -> dict[str, int]:
    from dsrl_platform.agents.registry import ALGORITHMS
    from dsrl_platform.envs import env_spaces

    trial = cfg.model_copy(update=widths)
    with torch.device("meta"):
        modules = ALGORITHMS[cfg.algo].agent.build_modules(trial, env_spaces(cfg.env), None)
    return {name: sum(p.numel() for p in m.parameters()) for name, m in modules.items()}, modules


def _field(cfg: Any, network: str) -> str:
    return f"{network}_width" if f"{network}_width" in type(cfg).model_fields else "width"


def sparse_count(module: torch.nn.Module, sparsity: float) -> int:
    """Parameters of `module` sparse at `sparsity` with ERK over every weight tensor."""
    layers = module.weight_layers()
    shapes = [tuple(w.layer.shape) for w in layers]
    kept = sum(round(d * w.layer.weight.numel()) for d, w in zip(distributions.erk(shapes, sparsity=sparsity), layers))
    return kept + sum(b.numel() for b in module.biases())


def matched_widths(cfg: Any) -> dict[str, float]:
    """{width option: multiplier} of every network of `cfg` (a resolved dense_matched config)."""
    _, modules = _counts(cfg, {})
    out: dict[str, float] = {}
    for name, module in modules.items():
        own = getattr(cfg, f"{name}_sparsity", None)
        target = sparse_count(module, cfg.sparsity if own is None else own)
        field = _field(cfg, name)
        count = lambda w: _counts(cfg, {**out, field: w})[0][name]  # noqa: E731
        low, high = 1e-6, 1.0
        for _ in range(_STEPS):
            mid = (low + high) / 2
            low, high = (mid, high) if count(mid) < target else (low, mid)
        best = min((low, high), key=lambda w: (abs(count(w) - target), w))
        out[field] = float(f"{best:.6g}")
    return out
