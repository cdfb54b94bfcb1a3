"""One training run's options: the ones every algorithm has, and how defaults are resolved.

Each algorithm subclasses `RunConfig` with its own options (agents/td3.py: `TD3Config`, …) and
names the papers' defaults it follows. Options left at `None` take those defaults when the
config is resolved; `resolve()` returns a `Resolved` config (frozen, its own type): what a run
actually uses, what workers receive and what MLflow logs. Option names are flat and public:
the YAML and `--set` use them as they are (`config.build` picks the algorithm's class and
refuses an option that does not apply to it).

Sources: ../shared/reference/papers.md (Sokar et al. 2022 for TD3/SAC/static/ds; Graesser et
al. 2022 and their code for set/rigl/prune and the DQN/PPO agents).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dsrl_platform.config.papers import RLX2_TD3, GraesserDefaults, RLx2Defaults, SokarDefaults
from dsrl_platform.methods import METHODS, MethodName

Distribution = Literal["er", "erk", "uniform"]

# Options that only mean something for a sparse agent: a dense trial ignores them (spec.py drops
# them from dense trials, so one dense baseline serves every spec whatever its sparse options).
SPARSE_ONLY = (
    "sparsity", "distribution", "lambda1", "lambda2", "sparse_layers", "topology_interval",
    "drop_fraction", "drop_schedule", "drop_rule", "topology_end", "prune_start", "prune_end",
    "prune_interval", "update_replaces_step", "fixed_sparse_init", "mask_init", "sparse_kernels",
)
SPARSITY_SUFFIX = "_sparsity"  # per-network sparsity options: actor_sparsity, critic_sparsity, …


class Resolved:
    """Marker of a resolved config: every default filled in, frozen."""


class RunConfig(BaseModel):
    """Options of one training run that every algorithm has. `None`: the papers' default."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # Set by each algorithm's subclass ------------------------------------------------------
    networks: ClassVar[tuple[str, ...]] = ()  # trained networks, e.g. ("actor", "critic")
    sokar: ClassVar[SokarDefaults | None] = None  # Sokar's setting, where the paper has one
    graesser: ClassVar[GraesserDefaults] = GraesserDefaults()
    rlx2: ClassVar[RLx2Defaults] = RLX2_TD3  # RLx2's topology schedule (its buffer parts: TD3 and SAC)

    # --- what to run -------------------------------------------------------------------------
    algo: str = Field(description="RL algorithm (`dsrl-platform options` lists them)")
    method: MethodName = Field("dense", description="dense | static | ds (Sokar's dynamic sparse) | set | rigl | prune (Graesser) | rlx2 (Tan et al.)")
    env: str = Field(description="gymnasium environment id")
    seed: int = Field(0, ge=0, description="seed of every random choice in the run")
    steps: int = Field(1_000_000, gt=0, description="training budget in environment steps")

    # --- evaluation protocol -----------------------------------------------------------------
    eval_every: int = Field(5_000, gt=0, description="evaluate every this many environment steps (and at step 0)")
    eval_episodes: int = Field(10, gt=0, description="episodes of the deterministic policy per evaluation")
    eval_seed_offset: int = Field(100, ge=0, description="the evaluation environment is seeded with seed + this")
    final_evals: int = Field(10, gt=0, description="final return = mean of the last this many evaluations")

    # --- networks and optimisation -----------------------------------------------------------
    hidden_sizes: list[int] | None = Field(None, min_length=1, description="hidden layer widths of every network")
    width: float = Field(1.0, gt=0, description="multiplier of every hidden width (conv channels too); per network: <network>_width")
    lr: float | None = Field(None, gt=0, description="Adam learning rate")
    weight_decay: float | None = Field(None, ge=0, description="L2 weight decay")
    gamma: float = Field(0.99, gt=0, le=1, description="discount factor")

    # --- sparsity ----------------------------------------------------------------------------
    sparsity: float | None = Field(None, ge=0, lt=1, description="target sparsity of every network (None: Sokar's λ, or 0.9 for Graesser's methods)")
    distribution: Distribution | None = Field(None, description="layer densities: er (Sokar's λ per layer), erk (global target), uniform")
    lambda1: float | None = Field(None, gt=0, description="ER λ of the first sparse layer (Sokar: per environment)")
    lambda2: float | None = Field(None, gt=0, description="ER λ of the later sparse layers (Sokar: 64)")
    sparse_layers: Literal["hidden", "all"] | None = Field(None, description="hidden: all but the output layer (Sokar); all: every layer (Graesser)")
    topology_interval: int | None = Field(None, gt=0, description="gradient steps between topology updates")
    drop_fraction: float | None = Field(None, gt=0, lt=1, description="fraction of connections dropped per update (ds-td3 0.05, ds-sac 0.1, set/rigl 0.5)")
    drop_schedule: Literal["constant", "cosine"] | None = Field(None, description="drop fraction over time: constant (Sokar) or cosine decay to 0 (Graesser)")
    drop_rule: Literal["paper", "code"] = Field("paper", description="ds: 'paper' drops η·nnz split half positive/half negative; 'code' drops η of each sign")
    topology_end: int | None = Field(None, ge=0, description="environment step after which the topology is frozen (ds: 0.95·steps, Sokar's code stops 50k of 1M before the end; set/rigl: Graesser's 0.8·steps)")
    prune_start: int | None = Field(None, ge=0, description="prune: environment step where pruning begins (0.2·steps)")
    prune_end: int | None = Field(None, ge=0, description="prune: environment step where the target sparsity is reached (0.8·steps)")
    prune_interval: int | None = Field(None, gt=0, description="prune: gradient steps between mask updates")
    update_replaces_step: bool | None = Field(None, description="a topology update replaces that step's gradient update (Graesser's code: Atari RigL only)")
    fixed_sparse_init: bool | None = Field(None, description="redraw the active weights with Glorot bounds over the active fans (Graesser's fixed_sparse_init; default for their methods and setting)")
    mask_init: Literal["random", "magnitude"] | None = Field(None, description="initial masks: random positions (Sokar, Graesser) or the largest |w| of the initial weights (RLx2's code; default for rlx2)")

    # --- dormant neurons and ReDo (Sokar et al. 2023) -----------------------------------------
    dormant_metrics: bool = Field(True, description="log the τ-dormant fraction per network and layer and the srank of the penultimate features at every evaluation, on the latest training batch")
    dormant_threshold: float = Field(0.0, ge=0, description="τ: a unit is dormant when its normalised mean |activation| is ≤ τ (metrics and ReDo; Dopamine's labs/redo default 0)")
    redo: bool = Field(False, description="ReDo: recycle τ-dormant neurons every redo_every gradient steps (fresh incoming weights, zero outgoing weights and bias, their optimizer state reset; masks kept)")
    redo_every: int | None = Field(None, gt=0, description="ReDo: gradient steps between recyclings (Dopamine's SAC-on-MuJoCo config: 1000)")

    # --- execution ---------------------------------------------------------------------------
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when present, else CPU")
    threads: int = Field(1, gt=0, description="torch intra-op threads")
    sparse_kernels: Literal["auto", "dense", "sparse"] = Field("dense", description="how masked layers compute: dense (masked dense matrices, bit-reproducible), sparse (sparse kernels on every masked linear layer) or auto (per layer, whichever measures faster on this device; equal to dense to float tolerance)")

    @model_validator(mode="after")
    def _check_consistency(self) -> RunConfig:
        method = METHODS[self.method]
        if not method.sparse:
            set_ = [n for n in self.sparsity_options() if getattr(self, n) is not None]
            if set_ and not method.matches_sparsity:
                raise ValueError(f"{set_[0]}: the dense method takes no sparsity "
                                 f"(choose dense_matched, static, ds, set, rigl or prune)")
            widths = [n for n in self.width_options() if getattr(self, n) not in (None, 1.0)]
            if widths and method.matches_sparsity and not isinstance(self, Resolved):
                raise ValueError(f"{widths[0]}: dense_matched solves its widths from the sparsity")
        if self.distribution == "er" and any(getattr(self, n) is not None for n in self.sparsity_options()):
            raise ValueError("distribution: 'er' takes lambda1/lambda2, not sparsity (use erk or uniform)")
        if any(h <= 0 for h in self.hidden_sizes or []):
            raise ValueError(f"hidden_sizes: every width must be a positive integer (got {self.hidden_sizes})")
        return self

    def width_of(self, network: str) -> float:
        own = getattr(self, f"{network}_width", None)
        return self.width if own is None else own

    def hidden_for(self, network: str) -> list[int]:
        """Hidden widths of `network`: hidden_sizes scaled by its width multiplier, floored, at
        least 1 (TF-Agents' `int(max(1, n·width))`; output layers are never scaled)."""
        w = self.width_of(network)
        return list(self.hidden_sizes) if w == 1.0 else [int(max(1, h * w)) for h in self.hidden_sizes]

    @classmethod
    def width_options(cls) -> list[str]:
        return ["width", *(n for n in cls.model_fields if n.endswith("_width"))]

    @classmethod
    def sparsity_options(cls) -> list[str]:
        """'sparsity' and the per-network ones this algorithm has (actor_sparsity, …)."""
        return ["sparsity", *(n for n in cls.model_fields if n.endswith(SPARSITY_SUFFIX) and n != "sparsity")]

    # --- hooks of an algorithm ---------------------------------------------------------------
    def algorithm_defaults(self) -> dict[str, Any]:
        """The paper's values of this algorithm's own options (applied where they are None)."""
        return {}

    @classmethod
    def drop_unused(cls, values: dict[str, Any]) -> None:
        """Fill or clear the options of switches (redo, …) in resolved `values`: an option of a
        feature that is off changes nothing, so it must not change the run's identity."""
        _fill(values, {"redo_every": REDO_EVERY} if values["redo"] else {})
        if not values["redo"]:
            values["redo_every"] = None

    def graesser_setting(self) -> bool:
        """The run follows Graesser et al.'s training setup (their agents, or a preset)."""
        return self.sokar is None

    def graesser_defaults(self) -> GraesserDefaults:
        """Graesser et al.'s sparse schedule for this agent (some depend on the environment)."""
        return self.graesser

    def grad_step_at(self, env_step: int) -> int:
        """Gradient steps done by environment step `env_step` (schedules are set in env steps,
        the sparse library counts gradient steps)."""
        raise NotImplementedError

    def ungroupable(self) -> str | None:
        """Why runs of this config must train one at a time (a feature groups do not take), or None."""
        if getattr(self, "redo", False):
            return "redo (ReDo recycles one agent's units)"
        if getattr(self, "sparse_kernels", "dense") != "dense":
            return "sparse_kernels (the kernels run one agent's layers)"
        return None

    def first_update_step(self) -> int:
        """Environment steps before the first gradient update (a random warm-up, a first rollout)."""
        return 0

    def check(self) -> None:
        """Cross-option checks of the resolved config (ValueError naming the option); an
        algorithm adds its own."""
        for name in ("topology_end", "prune_start", "prune_end"):
            value = getattr(self, name)
            if value is not None and value > self.steps:
                raise ValueError(f"{name}: {value} is past the budget (steps = {self.steps})")

    def warnings(self) -> list[str]:
        """Legal but probably unintended settings the user made, one line each."""
        resolved = self.resolve()
        evaluations = resolved.steps // resolved.eval_every + 1 + (resolved.steps % resolved.eval_every > 0)
        out = []
        if "final_evals" in self.model_fields_set and self.final_evals > evaluations:
            out.append(f"final_evals: {self.final_evals}, but the run has {evaluations} evaluations "
                       f"(the final return averages all of them)")
        return out

    # --- resolution --------------------------------------------------------------------------
    def resolve(self) -> Resolved:
        """Every `None` replaced by the papers' default for this algorithm, method and env."""
        if isinstance(self, Resolved):
            return self
        values = self.model_dump()
        _fill(values, self.algorithm_defaults())
        _fill_sparse(type(self), values, self.graesser_defaults(), self.graesser_setting())
        if METHODS[self.method].matches_sparsity:
            _fill(values, {"sparsity": self.graesser_defaults().sparsity})
            _fill(values, {n: values["sparsity"] for n in self.sparsity_options()})
            from dsrl_platform.agents.widths import matched_widths  # shapes: the agents and the env

            values.update(matched_widths(resolved_type(type(self)).model_validate(values)))
        type(self).drop_unused(values)
        resolved = resolved_type(type(self)).model_validate(values)
        type(self).check(resolved)
        return resolved

    def run_key(self) -> str:
        """Stable identity of the resolved config: same options, same key."""
        payload = json.dumps(self.resolve().model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


REDO_EVERY = 1000  # Dopamine labs/redo, SAC on MuJoCo (SparseSacAgent.reset_freq)


def _fill(values: dict[str, Any], defaults: dict[str, Any]) -> None:
    for name, value in defaults.items():
        if values.get(name) is None:
            values[name] = value


def _fill_sparse(cls: type[RunConfig], c: dict[str, Any], graesser: GraesserDefaults, graesser_setting: bool) -> None:
    """Sparse options a method uses get the paper's default; the others stay None."""
    m = METHODS[c["method"]]
    if not m.sparse:
        c["sparse_kernels"] = "dense"  # no masks, nothing to run sparse: one identity for every dense run
        return
    sokar = cls.sokar if m.family == "sokar" and not graesser_setting else None
    rlx2 = cls.rlx2 if m.family == "rlx2" else None
    # Graesser's code redraws sparse weights with sparse fans; a no-op for pruning (starts dense).
    # RLx2's keeps the init and masks its largest weights.
    _fill(c, {"fixed_sparse_init": not m.starts_dense and rlx2 is None and (m.family == "graesser" or graesser_setting),
              "mask_init": None if m.starts_dense else "magnitude" if rlx2 else "random"})
    if m.starts_dense:  # pruning starts from full masks
        c["mask_init"] = None
    steps = c["steps"]
    lambdas = sokar.lambdas_for(c["env"]) if sokar else None
    per_net = cls.sparsity_options()
    explicit = any(c.get(n) is not None for n in per_net)
    uses_lambda = sokar is not None and not explicit and (lambdas is not None or c["lambda1"] is not None)
    _fill(c, {"sparse_layers": "hidden" if sokar else "all", "distribution": "er" if uses_lambda else "erk"})
    if c["distribution"] == "er":
        l1, l2 = lambdas or (None, 64)
        _fill(c, {"lambda1": l1, "lambda2": l2})
        if c["lambda1"] is None:
            raise ValueError(f"lambda1: no published λ for {c['env']}; set lambda1/lambda2 or sparsity")
    else:
        _fill(c, {"sparsity": sokar.fallback_sparsity if sokar else rlx2.sparsity if rlx2 else graesser.sparsity})
        _fill(c, {n: c["sparsity"] for n in per_net})
    # Options of a schedule the method does not have are dropped: they change nothing, so they
    # must not change the run's identity (a grid sets topology_interval for static trials too).
    unused = (() if m.dynamic else _TOPOLOGY_OPTIONS) + (() if m.starts_dense else _PRUNING_OPTIONS)
    c.update({name: None for name in unused})
    if rlx2:
        _fill(c, {"topology_interval": rlx2.topology_interval, "drop_fraction": rlx2.drop_fraction,
                  "drop_schedule": "cosine", "topology_end": int(rlx2.topology_end * steps),
                  "update_replaces_step": True})
    if m.dynamic:
        ds = sokar is not None  # Sokar's dynamic sparsity (DS-TD3, DS-SAC)
        _fill(c, {"topology_interval": graesser.topology_interval,
                  "drop_fraction": sokar.drop_fraction if ds else graesser.drop_fraction,
                  "drop_schedule": "constant" if m.family == "sokar" else "cosine",
                  "topology_end": int((sokar.topology_end if ds else graesser.topology_end) * steps),
                  "update_replaces_step": graesser.rigl_replaces_step and m.dense_gradient and sokar is None})
    if m.starts_dense:
        _fill(c, {"prune_start": int(graesser.prune_start * steps), "prune_end": int(graesser.prune_end * steps),
                  "prune_interval": graesser.prune_interval})
        if not c["prune_start"] < c["prune_end"]:
            raise ValueError(f"prune_end: must come after prune_start ({c['prune_start']} >= {c['prune_end']})")


_TOPOLOGY_OPTIONS = ("topology_interval", "drop_fraction", "drop_schedule", "topology_end", "update_replaces_step")
_PRUNING_OPTIONS = ("prune_start", "prune_end", "prune_interval")
_RESOLVED: dict[type, type] = {}


def resolved_type(cls: type[RunConfig]) -> type:
    """The frozen `Resolved` twin of an algorithm's config class (same fields, same checks)."""
    if cls not in _RESOLVED:
        _RESOLVED[cls] = type(f"Resolved{cls.__name__}", (cls, Resolved),
                              {"__module__": cls.__module__, "model_config": ConfigDict(cls.model_config, frozen=True),
                               "__doc__": f"{cls.__name__}, resolved: every default filled in."})
    return _RESOLVED[cls]
