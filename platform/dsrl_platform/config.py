"""One training run's configuration: every option, its default and what it means.

`RunConfig` is what `dsrl-platform run --set name=value` and the experiment YAML set (same
names). Options left at `None` take the papers' defaults for the chosen algorithm, method and
environment when the config is resolved (`RunConfig.resolve()`); the resolved config is what a
run actually used and is what gets logged. Sources: ../shared/reference/papers.md
(Sokar et al. 2022 for TD3/SAC/static/ds; Graesser et al. 2022 for set/rigl/prune).
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Algo = Literal["td3", "sac"]
Method = Literal["dense", "static", "ds", "set", "rigl", "prune"]
Distribution = Literal["er", "erk", "uniform"]

# Sokar et al.: (λ1, λ2) per environment family, for TD3 (also Static-TD3) and DS-SAC.
SOKAR_LAMBDAS: dict[str, dict[str, tuple[float, float]]] = {
    "td3": {"HalfCheetah": (7, 64), "Hopper": (7, 64), "Walker2d": (7, 64),
            "Ant": (40, 64), "Humanoid": (61, 64)},
    "sac": {"HalfCheetah": (12, 80), "Walker2d": (12, 80), "Hopper": (7, 20),
            "Ant": (30, 64), "Humanoid": (61, 64)},
}
# Ant-v4 drops v3's 84 contact-force inputs (always zero under MuJoCo ≥ 2): 27-D, not 111-D.
# The paper's λ1 would ask for first-layer density > 1 there; these keep the paper's density
# (td3: 40·(111+256)/(111·256) = 0.517 → λ1 = 0.517·27·256/(27+256) = 12.6; sac: 30 → 9.5).
SOKAR_LAMBDAS_BY_ENV: dict[str, dict[str, tuple[float, float]]] = {
    "td3": {"Ant-v4": (12.6, 64)},
    "sac": {"Ant-v4": (9.5, 64)},
}
# Where no λ is published (e.g. Pendulum) sparse methods default to this ERK sparsity,
# close to the ~51% that Sokar's λ give on HalfCheetah.
FALLBACK_SPARSITY = 0.5
# Graesser et al. report their main comparisons at 90% sparsity.
GRAESSER_SPARSITY = 0.9

SOKAR_METHODS = ("static", "ds")
GRAESSER_METHODS = ("set", "rigl", "prune")
DYNAMIC_METHODS = ("ds", "set", "rigl")


def env_family(env: str) -> str:
    """'HalfCheetah-v4' -> 'HalfCheetah' (the key of the papers' per-environment tables)."""
    return env.split("-")[0].split("/")[-1]


class RunConfig(BaseModel):
    """Options of one training run. `None` means: the papers' default (see `resolve`)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    # --- what to run -------------------------------------------------------------------
    algo: Algo = Field("td3", description="RL algorithm: td3 or sac")
    method: Method = Field("dense", description="dense | static | ds (Sokar's dynamic sparse) | set | rigl | prune (Graesser)")
    env: str = Field("HalfCheetah-v4", description="gymnasium environment id (MuJoCo -v4 reproduces the papers' -v3)")
    seed: int = Field(0, ge=0, description="seed of every random choice in the run")
    steps: int = Field(1_000_000, gt=0, description="training budget in environment steps")

    # --- evaluation protocol (Sokar) ----------------------------------------------------
    warmup_steps: int = Field(25_000, ge=0, description="random-action steps before the first update")
    eval_every: int = Field(5_000, gt=0, description="evaluate every this many environment steps (and at step 0)")
    eval_episodes: int = Field(10, gt=0, description="episodes of the deterministic policy per evaluation")
    eval_seed_offset: int = Field(100, description="the evaluation environment is seeded with seed + this")
    final_evals: int = Field(10, gt=0, description="final return = mean of the last this many evaluations")

    # --- algorithm hyper-parameters (None: the paper's value for the algorithm) --------
    hidden_sizes: list[int] = Field([256, 256], min_length=1, description="hidden layer widths of actor and critics")
    batch_size: int | None = Field(None, gt=0, description="minibatch size (td3 100, sac 256)")
    lr: float | None = Field(None, gt=0, description="Adam learning rate, actor and critic (td3 1e-3, sac 3e-4)")
    weight_decay: float | None = Field(None, ge=0, description="Adam L2 weight decay (td3 2e-4, sac 0)")
    gamma: float = Field(0.99, gt=0, le=1, description="discount factor")
    tau: float | None = Field(None, gt=0, le=1, description="target update rate (0.005; ds-sac: 1, a hard update)")
    target_update_every: int | None = Field(None, gt=0, description="gradient steps between target updates (1; ds-sac: 1000)")
    buffer_size: int = Field(1_000_000, gt=0, description="replay capacity in transitions")
    policy_delay: int = Field(2, gt=0, description="td3: critic updates per actor and target update")
    policy_noise: float = Field(0.2, ge=0, description="td3: target policy smoothing noise, times max action")
    noise_clip: float = Field(0.5, ge=0, description="td3: clip of the smoothing noise, times max action")
    exploration_noise: float = Field(0.1, ge=0, description="td3: Gaussian exploration noise, times max action")
    alpha: float = Field(0.2, ge=0, description="sac: fixed entropy temperature")

    # --- sparsity ------------------------------------------------------------------------
    sparsity: float | None = Field(None, ge=0, lt=1, description="target sparsity of actor and critic (None: Sokar's λ, or 0.9 for Graesser's methods)")
    actor_sparsity: float | None = Field(None, ge=0, lt=1, description="actor's sparsity, overriding `sparsity`")
    critic_sparsity: float | None = Field(None, ge=0, lt=1, description="critics' sparsity, overriding `sparsity`")
    distribution: Distribution | None = Field(None, description="layer densities: er (Sokar's λ per layer), erk (global target), uniform")
    lambda1: float | None = Field(None, gt=0, description="ER λ of the first sparse layer (Sokar: per environment)")
    lambda2: float | None = Field(None, gt=0, description="ER λ of the second sparse layer (Sokar: 64)")
    sparse_layers: Literal["hidden", "all"] | None = Field(None, description="hidden: all but the output layer (Sokar); all: every layer (Graesser)")
    topology_interval: int = Field(1000, gt=0, description="gradient steps between topology updates")
    drop_fraction: float | None = Field(None, gt=0, lt=1, description="fraction of connections dropped per update (ds-td3 0.05, ds-sac 0.1, set/rigl 0.5)")
    drop_schedule: Literal["constant", "cosine"] | None = Field(None, description="drop fraction over time: constant (Sokar) or cosine decay to 0 (Graesser)")
    drop_rule: Literal["paper", "code"] = Field("paper", description="ds: 'paper' drops η·nnz split half positive/half negative; 'code' drops η of each sign")
    topology_end: int | None = Field(None, ge=0, description="environment step after which the topology is frozen (ds: 0.95·steps, Sokar's code stops 50k of 1M before the end; set/rigl: 0.8·steps)")
    prune_start: int | None = Field(None, ge=0, description="prune: environment step where pruning begins (0.2·steps)")
    prune_end: int | None = Field(None, ge=0, description="prune: environment step where the target sparsity is reached (0.8·steps)")
    prune_interval: int = Field(1000, gt=0, description="prune: gradient steps between mask updates")
    sparse_targets: Literal["off", "topk", "mask"] | None = Field(None, description="target networks' sparsity: topk keeps each target layer's k largest weights, k = online nonzeros (Sokar; default for ds); mask multiplies targets by the online masks (cheaper); off")
    update_replaces_step: bool | None = Field(None, description="a topology update replaces that step's gradient update (Graesser: on for set/rigl)")

    # --- execution -----------------------------------------------------------------------
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when present, else CPU")
    threads: int = Field(1, gt=0, description="torch intra-op threads")

    @model_validator(mode="after")
    def _check_consistency(self) -> "RunConfig":
        if self.steps <= self.warmup_steps:
            raise ValueError(f"steps: the budget ({self.steps}) must exceed warmup_steps ({self.warmup_steps})")
        if self.method == "dense" and any(
            v is not None for v in (self.sparsity, self.actor_sparsity, self.critic_sparsity)
        ):
            raise ValueError("sparsity: the dense method takes no sparsity (choose static, ds, set, rigl or prune)")
        if self.distribution == "er" and (self.sparsity is not None):
            raise ValueError("distribution: 'er' takes lambda1/lambda2, not sparsity (use erk or uniform)")
        return self

    # ---------------------------------------------------------------------------------------
    def resolve(self) -> "RunConfig":
        """A copy with every `None` replaced by the papers' default for this algo/method/env."""
        c = self.model_copy(deep=True)
        sokar, graesser = c.method in SOKAR_METHODS, c.method in GRAESSER_METHODS
        td3 = c.algo == "td3"
        set_ = lambda name, value: getattr(c, name) is None and object.__setattr__(c, name, value)  # noqa: E731

        set_("batch_size", 100 if td3 else 256)
        set_("lr", 1e-3 if td3 else 3e-4)
        set_("weight_decay", 2e-4 if td3 else 0.0)
        ds_sac = c.algo == "sac" and c.method == "ds"
        set_("tau", 1.0 if ds_sac else 0.005)
        set_("target_update_every", 1000 if ds_sac else 1)

        if c.method != "dense":
            lambdas = SOKAR_LAMBDAS_BY_ENV[c.algo].get(c.env) or SOKAR_LAMBDAS[c.algo].get(env_family(c.env))
            explicit = any(v is not None for v in (c.sparsity, c.actor_sparsity, c.critic_sparsity))
            uses_lambda = sokar and not explicit and (lambdas is not None or c.lambda1 is not None)
            set_("sparse_layers", "hidden" if sokar else "all")
            set_("distribution", "er" if uses_lambda else "erk")
            if c.distribution == "er":
                l1, l2 = lambdas or (None, 64)
                set_("lambda1", l1)
                set_("lambda2", l2)
                if c.lambda1 is None:
                    raise ValueError(f"lambda1: no published λ for {c.env}; set lambda1/lambda2 or sparsity")
            else:
                set_("sparsity", GRAESSER_SPARSITY if graesser else FALLBACK_SPARSITY)
                set_("actor_sparsity", c.sparsity)
                set_("critic_sparsity", c.sparsity)
        set_("drop_fraction", (0.05 if td3 else 0.1) if c.method == "ds" else 0.5)
        set_("drop_schedule", "cosine" if graesser else "constant")
        if c.method == "ds":
            set_("topology_end", int(0.95 * c.steps))
        else:
            set_("topology_end", int(0.8 * c.steps))
        set_("prune_start", int(0.2 * c.steps))
        set_("prune_end", int(0.8 * c.steps))
        set_("sparse_targets", "topk" if c.method == "ds" else "off")
        set_("update_replaces_step", c.method in ("set", "rigl"))
        if c.method == "prune" and not c.prune_start < c.prune_end:
            raise ValueError(f"prune_end: must come after prune_start ({c.prune_start} >= {c.prune_end})")
        return c

    def run_key(self) -> str:
        """Stable identity of the resolved config: same options, same key."""
        payload = json.dumps(self.resolve().model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def option_names() -> list[str]:
    return list(RunConfig.model_fields)


def parse_assignments(pairs: list[str]) -> dict[str, object]:
    """['batch_size=64', 'sparsity=0.8'] -> typed values (YAML scalars), names checked."""
    out: dict[str, object] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep:
            raise ValueError(f"--set {pair!r}: expected name=value")
        if name not in RunConfig.model_fields:
            raise ValueError(f"--set {name}: unknown option (known: {', '.join(option_names())})")
        out[name] = yaml.safe_load(raw) if raw.strip() else None
    return out


def first_error(err: ValidationError, prefix: str = "") -> str:
    """One line naming the option and the problem, from a pydantic error."""
    e = err.errors()[0]
    msg = e["msg"].removeprefix("Value error, ")
    if not e["loc"]:  # a model-level check: its message starts with the option's name
        return f"{prefix}{msg}"
    where = ".".join(str(p) for p in e["loc"])
    value = e.get("input")
    shown = "" if isinstance(value, dict) or value is None else f" (got {value!r})"
    return f"{prefix}{where}: {msg}{shown}"
