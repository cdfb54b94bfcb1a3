"""Published numbers, transcribed from the papers (../shared/reference/papers.md).

Shown beside measured values, marked "published", only where the environment family and the
budget match (1e6 environment steps). The papers used MuJoCo -v3 environments; this platform
defaults to -v4 (same dynamics and rewards as -v3 by gymnasium's changelog), which the report
states in a footnote.
"""

from __future__ import annotations

from dataclasses import dataclass

from dsrl_platform.config import env_family

PUBLISHED_BUDGET = 1_000_000
# LCA sums every evaluation, so it is comparable only at Sokar's evaluation interval.
PUBLISHED_EVAL_EVERY = 5_000
PAPER_ENV_VERSION = "v3"
SOKAR = "Sokar et al. 2022"
GRAESSER = "Graesser et al. 2022"


@dataclass(frozen=True)
class Published:
    return_mean: float
    return_std: float
    lca: float
    source: str


def _table(algo: str, method: str, source: str, rows: dict[str, tuple[float, float, float]]):
    return {(algo, method, family): Published(*values, source) for family, values in rows.items()}


# Sokar et al. 2022, Table 1 (return: mean ± std of the last 10 evaluations over 5 seeds) and
# Table 2 (learning-curve area). Family: (return mean, return std, LCA).
_TD3 = {"HalfCheetah": (11153.48, 473.29, 1.7686), "Walker2d": (4042.36, 576.57, 0.5264),
        "Hopper": (2184.78, 1224.14, 0.4788), "Ant": (4287.69, 1080.88, 0.5524),
        "Humanoid": (3809.15, 1053.40, 0.3635)}
_STATIC_TD3 = {"HalfCheetah": (10583.84, 307.03, 1.7666), "Walker2d": (3951.01, 443.78, 0.5167),
               "Hopper": (3570.88, 43.71, 0.4984), "Ant": (4148.61, 801.34, 0.5807),
               "Humanoid": (4989.47, 546.32, 0.5182)}
_DS_TD3 = {"HalfCheetah": (11459.88, 482.55, 1.9560), "Walker2d": (4870.57, 525.33, 0.6956),
           "Hopper": (3587.17, 70.62, 0.5435), "Ant": (5011.56, 596.95, 0.6623),
           "Humanoid": (5238.16, 121.71, 0.6089)}
# SAC column of Tables 1/2. Kept for reference; the SAC row shown in reports is the appendix's,
# which was run together with DS-SAC and so is the like-for-like baseline.
TABLE1_SAC = {"HalfCheetah": (11415.23, 357.22, 1.7297), "Walker2d": (4566.18, 448.25, 0.6128),
              "Hopper": (3387.36, 148.73, 0.5572), "Ant": (5848.64, 385.85, 0.7969),
              "Humanoid": (5518.61, 97.03, 0.5639)}
# Sokar et al. 2022, appendix: SAC vs DS-SAC.
_SAC = {"HalfCheetah": (11645.12, 425.59, 1.6229), "Walker2d": (3858.20, 689.91, 0.5368),
        "Hopper": (3100.39, 374.45, 0.4441), "Ant": (5899.30, 197.15, 0.7504),
        "Humanoid": (5425.56, 196.33, 0.3776)}
_DS_SAC = {"HalfCheetah": (11084.39, 445.15, 1.7081), "Walker2d": (4216.77, 236.23, 0.5906),
           "Hopper": (3229.39, 135.82, 0.4875), "Ant": (5943.54, 169.95, 0.8229),
           "Humanoid": (5584.64, 109.40, 0.6777)}

SOKAR_PUBLISHED: dict[tuple[str, str, str], Published] = {
    **_table("td3", "dense", f"{SOKAR}, Tables 1-2", _TD3),
    **_table("td3", "static", f"{SOKAR}, Tables 1-2", _STATIC_TD3),
    **_table("td3", "ds", f"{SOKAR}, Tables 1-2", _DS_TD3),
    **_table("sac", "dense", f"{SOKAR}, appendix (SAC vs DS-SAC)", _SAC),
    **_table("sac", "ds", f"{SOKAR}, appendix (SAC vs DS-SAC)", _DS_SAC),
}

# Graesser et al. 2022: IQM of dense-normalised SAC scores over the five MuJoCo tasks at 90%
# sparsity, read off a figure (approximate). Keyed by (algo, method, sparsity level); the
# width-matched dense network ("matched dense 0.90") sits at the level it matches, the standard
# dense network at 0. Their dense-100% is 1.12, not 1: their normaliser was not the dense
# agent's mean score (the code normalises nothing; papers.md D7).
GRAESSER_IQM_APPROX: dict[tuple[str, str, float], float] = {
    ("sac", "static", 0.9): 0.24, ("sac", "set", 0.9): 1.03, ("sac", "rigl", 0.9): 1.10,
    ("sac", "prune", 0.9): 1.16, ("sac", "dense_matched", 0.9): 0.90, ("sac", "dense", 0.0): 1.12,
}
GRAESSER_FAMILIES = frozenset({"HalfCheetah", "Hopper", "Walker2d", "Ant", "Humanoid"})
GRAESSER_SCORE = "last_10_percent"  # their score: the mean of the last 10% of evaluations
GRAESSER_PRESET = "graesser"  # their TF-Agents SAC setup (agents/sac.py)


def sokar_published(algo: str, method: str, env: str, budget: int) -> Published | None:
    """Sokar's numbers for this row, or None where environment family or budget differ."""
    if budget != PUBLISHED_BUDGET:
        return None
    return SOKAR_PUBLISHED.get((algo, method, env_family(env)))


def graesser_iqm(algo: str, method: str, sparsity: float, envs: list[str], budget: int,
                 score: str, presets: set[str]) -> float | None:
    """Graesser's approximate IQM where the protocol matches theirs: every task one of their
    MuJoCo tasks, 1e6 steps, their training setup (every run `preset: graesser`) and their
    score (the mean of the last 10% of evaluations)."""
    if (budget != PUBLISHED_BUDGET or score != GRAESSER_SCORE or presets != {GRAESSER_PRESET}
            or not envs or not {env_family(e) for e in envs} <= GRAESSER_FAMILIES):
        return None
    return GRAESSER_IQM_APPROX.get((algo, method, round(sparsity, 2)))


def version_footnote(source: str, envs: list[str]) -> str:
    """The papers' -v3 versus the ids measured here."""
    ours = ", ".join(sorted(set(envs)))
    return (f"Published values: {source}, 1e6 steps, MuJoCo -{PAPER_ENV_VERSION} "
            f"environments; measured here on {ours} (-v4 has the same dynamics and rewards as -v3, "
            "which current gymnasium no longer ships).")
