"""Statistics of the papers' comparisons, in numpy/scipy only (rliable needs pandas < 3).

Agarwal et al. 2021 ("Deep RL at the Edge of the Statistical Precipice"), as used by Graesser
et al. 2022: the interquartile mean (IQM) of run scores pooled over tasks, with 95% percentile
confidence intervals from a stratified bootstrap (runs resampled with replacement within each
task), and the probability of improvement P(X > Y) averaged over tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

DEFAULT_REPS = 2000
DEFAULT_CONFIDENCE = 0.95

ScoresByTask = Mapping[str, np.ndarray]  # task (environment) -> one score per run


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float


def iqm(scores: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """Interquartile mean: mean of the middle 50% (25% trimmed from each end, as rliable)."""
    return sps.trim_mean(scores, proportiontocut=0.25, axis=axis)


def _check(scores: ScoresByTask) -> dict[str, np.ndarray]:
    out = {task: np.asarray(s, dtype=float).ravel() for task, s in scores.items()}
    empty = [task for task, s in out.items() if s.size == 0]
    assert out and not empty, f"every task needs at least one run (empty: {empty or 'all'})"
    return out


def _percentile_ci(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def stratified_bootstrap(scores: ScoresByTask, statistic: Callable[[np.ndarray], np.ndarray], *,
                         reps: int = DEFAULT_REPS, seed: int = 0,
                         confidence: float = DEFAULT_CONFIDENCE) -> Estimate:
    """`statistic` of all runs pooled, with a stratified-bootstrap percentile CI.

    `statistic(matrix)` maps a (reps, runs) array to one value per row. Each replicate draws,
    within every task, as many runs as that task has, with replacement.
    """
    by_task = _check(scores)
    rng = np.random.default_rng(seed)
    pooled = np.concatenate(list(by_task.values()))
    resampled = np.concatenate(
        [s[rng.integers(0, s.size, size=(reps, s.size))] for s in by_task.values()], axis=1)
    value = float(statistic(pooled[None, :])[0])
    return Estimate(value, *_percentile_ci(statistic(resampled), confidence))


def iqm_ci(scores: ScoresByTask, *, reps: int = DEFAULT_REPS, seed: int = 0,
           confidence: float = DEFAULT_CONFIDENCE) -> Estimate:
    """IQM over all runs of all tasks, with its stratified-bootstrap CI."""
    return stratified_bootstrap(scores, lambda m: iqm(m, axis=1), reps=reps, seed=seed,
                                confidence=confidence)


def _pairwise(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """S[i, j] = 1 if x_i > y_j, 0.5 if equal, 0 otherwise (Mann-Whitney U kernel)."""
    return (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])


def probability_of_improvement(x: ScoresByTask, y: ScoresByTask, *, reps: int = DEFAULT_REPS,
                               seed: int = 0, confidence: float = DEFAULT_CONFIDENCE) -> Estimate:
    """P(X > Y) + 0.5·P(X = Y) per task, averaged over the tasks both have, with a CI.

    Bootstrap: runs of X and of Y resampled independently within each task. A replicate's
    per-task value is w_x·S·w_y / (n·m), w = how often each run was drawn.
    """
    x, y = _check(x), _check(y)
    tasks = sorted(set(x) & set(y))
    if not tasks:
        raise ValueError("probability of improvement: the two methods share no environment")
    rng = np.random.default_rng(seed)
    point, boot = [], []
    for task in tasks:
        s = _pairwise(x[task], y[task])
        n, m = s.shape
        point.append(s.mean())
        wx = rng.multinomial(n, np.full(n, 1 / n), size=reps)
        wy = rng.multinomial(m, np.full(m, 1 / m), size=reps)
        boot.append(np.einsum("rn,nm,rm->r", wx, s, wy) / (n * m))
    samples = np.mean(boot, axis=0)
    return Estimate(float(np.mean(point)), *_percentile_ci(samples, confidence))


def mean_ci_halfwidth(values: np.ndarray, confidence: float = DEFAULT_CONFIDENCE) -> float:
    """Half-width of the t-interval of the mean over seeds (0 for a single seed)."""
    values = np.asarray(values, dtype=float)
    n = values.size
    if n < 2:
        return 0.0
    return float(sps.t.ppf(0.5 + confidence / 2, n - 1) * values.std(ddof=1) / np.sqrt(n))
