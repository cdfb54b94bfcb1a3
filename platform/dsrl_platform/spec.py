"""Experiment specs: experiments/*.yaml → validated `ExperimentSpec` → list of `Trial`.

A spec names an experiment (its MLflow experiment), the grid of trials (algorithms × methods ×
environments × sparsity levels × budgets × seeds), options for every trial, overrides for the
trials matching a condition (Sokar's λ per environment, DS-SAC's drop fraction and hard target
update), and the resources of one trial. Option names are the run options (config/), the ones
`dsrl-platform run --set` takes; each trial is built as its algorithm's config.

A grid holds at most MAX_TRIALS (100,000) trials, counted before it is expanded.
Everything is checked before anything runs: unknown keys, wrong types, unknown environment ids,
impossible combinations (every expanded trial is built as its algorithm's config and resolved,
its environment's spaces checked and its networks' shapes built on the meta device). A mistake
raises `SpecError` (a `ValueError`, exit code 2 in the CLI) reading `<file>: <key.path>: <problem>`.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from dsrl_platform import config, names
from dsrl_platform.config import Resolved, RunConfig, first_error
from dsrl_platform.envs import check_env_id
from dsrl_platform.methods import METHODS, MethodName
from dsrl_platform.yamlfile import read_mapping

# Grid axes: set in `grid`, matched in `overrides[].when`, never set as options (one place each).
AXES = ("algo", "method", "env", "sparsity", "steps", "seed")

def _algorithm_names() -> tuple[str, ...]:
    return tuple(config.config_classes())


Algo = Literal[_algorithm_names()]  # type: ignore[valid-type]


def _sparse_only() -> frozenset[str]:
    """Options that only mean something for a sparse agent. They are not applied to dense trials,
    so one dense baseline (one run key) serves every spec whatever its sparse options."""
    every = set(config.option_owners())
    return frozenset(config.SPARSE_ONLY) | {n for n in every if n.endswith("_sparsity")} | {"sparse_targets"}


SPARSE_ONLY = _sparse_only()
# The most trials one spec may expand to. A bigger grid is almost surely a slip (`seed: 1000000`)
# and would take minutes and gigabytes to expand and track; split a bigger study into several specs.
MAX_TRIALS = 100_000


class SpecError(ValueError):
    """A mistake in a spec file: `<file>: <key.path>: <problem>`."""


def _as_list(value: Any) -> Any:
    """YAML convenience: a scalar where a list is expected means a list of one."""
    return value if isinstance(value, list) else [value]


def _seed_count(value: Any) -> Any:
    """`seed: 5` means seeds 0..4."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(f"a seed count must be at least 1 (got {value}); or list the seeds, e.g. [0]")
        if value > MAX_TRIALS:  # refused before a list that long is made
            raise ValueError(f"{value:,} seeds exceed the limit of {MAX_TRIALS:,} trials per spec")
        return list(range(value))
    return value


def _method_entry(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


def _options_model() -> type[BaseModel]:
    """Every algorithm's options other than the grid axes, all optional, no cross-field checks.

    Cross-field checks (steps > warmup_steps, an option of another algorithm, …) run per
    expanded trial, where all values meet.
    """
    fields: dict[str, Any] = {}
    for cls in config.config_classes().values():
        for name, info in cls.model_fields.items():
            if name in AXES or name in fields:
                continue
            field = info._copy()  # keeps the constraints (gt=0, …) and the description
            field.default = None
            fields[name] = (info.annotation, field)
    return create_model(
        "RunOptions",
        __config__=ConfigDict(extra="forbid"),
        __doc__="Run options (the names `dsrl-platform run --set` takes).",
        **fields,
    )


RunOptions = _options_model()


def _set_options(options: BaseModel) -> dict[str, Any]:
    return options.model_dump(exclude_unset=True)


EnvId = Annotated[str, Field(min_length=1)]


class MethodEntry(BaseModel):
    """A method of the grid, with options that apply to its trials only."""

    model_config = ConfigDict(extra="forbid")

    name: MethodName = Field(description="dense | dense_matched | static | ds | set | rigl | prune | rlx2")
    label: str | None = Field(
        None, min_length=1,
        description="variant name, tagged on the runs; needed when a method is listed twice",
    )
    options: RunOptions = Field(default_factory=RunOptions, description="RunConfig options for this method's trials")  # type: ignore[valid-type]


class Grid(BaseModel):
    """The trials: every combination of the axes (dense trials ignore the sparsity axis)."""

    model_config = ConfigDict(extra="forbid")

    algo: Annotated[list[Algo], BeforeValidator(_as_list)] = Field(min_length=1, description="algorithms: td3, sac, …")
    method: Annotated[list[Annotated[MethodEntry, BeforeValidator(_method_entry)]], BeforeValidator(_as_list)] = Field(
        min_length=1, description="methods: a name, or {name, label, options}")
    env: Annotated[list[EnvId], BeforeValidator(_as_list)] = Field(
        min_length=1, description="gymnasium ids, e.g. HalfCheetah-v4 (MuJoCo -v4 or -v5)")
    seed: Annotated[list[Annotated[int, Field(ge=0)]], BeforeValidator(_seed_count)] = Field(
        min_length=1, description="seeds: a list, or a count n meaning seeds 0..n-1")
    sparsity: Annotated[list[Annotated[float, Field(ge=0, lt=1)] | None], BeforeValidator(_as_list)] = Field(
        [None], min_length=1,
        description="sparsity levels of sparse methods; null = the papers' default (Sokar's λ, "
                    "Graesser's 0.9). Dense trials are not multiplied by this axis")
    steps: Annotated[list[Annotated[int, Field(gt=0)]], BeforeValidator(_as_list)] = Field(
        [1_000_000], min_length=1, description="training budgets in environment steps")
    options: dict[str, Annotated[list[Any], BeforeValidator(_as_list), Field(min_length=1)]] = Field(
        {}, description="more axes, over run options: {option: [values]}, e.g. {actor_sparsity: [0.5, 0.9], "
                        "critic_sparsity: [0.5, 0.9]} or {width: [1, 2, 4]}; every combination is a trial")

    @field_validator("options")
    @classmethod
    def _option_axes(cls, axes: dict[str, list[Any]]) -> dict[str, list[Any]]:
        owners = config.option_owners()
        for name in axes:
            if name in AXES:
                raise ValueError(f"{name} is a grid axis of its own: list it under grid.{name}")
            if name not in owners:
                close = difflib.get_close_matches(name, list(owners), n=2)
                raise ValueError(f"{name}: unknown option" + (f" (did you mean {' or '.join(close)}?)" if close else ""))
        return axes

    @field_validator("env")
    @classmethod
    def _known_envs(cls, envs: list[str]) -> list[str]:
        for i, env in enumerate(envs):
            try:
                check_env_id(env, field_name=None)
            except ValueError as err:
                raise _ItemError(i, str(err)) from None
        return envs

    def size(self) -> int:
        """The number of trials, counted without expanding (dense is not multiplied by sparsity)."""
        per_level = len(self.algo) * len(self.env) * len(self.steps) * len(self.seed)
        return sum(per_level * (len(self.sparsity) if METHODS[m.name].crosses_sparsity_axis else 1)
                   * math.prod(len(v) for k, v in self.options.items() if _keeps(m.name, k)) for m in self.method)

    @model_validator(mode="after")
    def _bounded(self) -> Grid:
        n = self.size()
        if n > MAX_TRIALS:
            raise ValueError(f"{n:,} trials exceed the limit of {MAX_TRIALS:,} per spec; split the experiment "
                             f"into several specs")
        return self

    @field_validator("method")
    @classmethod
    def _variants_named(cls, methods: list[MethodEntry]) -> list[MethodEntry]:
        seen: dict[str, int] = {}
        for i, m in enumerate(methods):
            given = set(_set_options(m.options)) & SPARSE_ONLY
            if METHODS[m.name].matches_sparsity:
                given = {k for k in given if not k.endswith("sparsity")}
            if not METHODS[m.name].sparse and given:
                bad = sorted(given)[0]
                raise _ItemError(i, "the dense method takes no sparsity options", f"options.{bad}")
            key = f"{m.name}/{m.label}"
            if key in seen:
                raise _ItemError(i, f"{m.name} is listed twice; give each entry a distinct label")
            seen[key] = i
        return methods


class _ItemError(ValueError):
    """A problem with item `index` of a list field (so the key path can name it)."""

    def __init__(self, index: int, problem: str, subpath: str = ""):
        super().__init__(problem)
        self.index, self.problem, self.subpath = index, problem, subpath


def _scalar_or_list(item):
    return Annotated[list[item], BeforeValidator(_as_list)] | None


class When(BaseModel):
    """Which trials an override applies to: each named axis must match (a value or a list)."""

    model_config = ConfigDict(extra="forbid")

    algo: _scalar_or_list(Algo) = Field(None, description="algorithm(s)")
    method: _scalar_or_list(MethodName) = Field(None, description="method name(s)")
    label: _scalar_or_list(str) = Field(None, description="method variant label(s)")
    env: _scalar_or_list(EnvId) = Field(None, description="environment id(s)")
    sparsity: _scalar_or_list(float | None) = Field(None, description="sparsity level(s) of the grid")
    steps: _scalar_or_list(int) = Field(None, description="budget(s)")
    seed: _scalar_or_list(int) = Field(None, description="seed(s)")

    @field_validator("env")
    @classmethod
    def _known_envs(cls, envs: list[str] | None) -> list[str] | None:
        for i, env in enumerate(envs or []):
            try:
                check_env_id(env, field_name=None)
            except ValueError as err:
                raise _ItemError(i, str(err)) from None
        return envs

    def matches(self, point: dict[str, Any]) -> bool:
        return all(
            getattr(self, axis) is None or point[axis] in getattr(self, axis)
            for axis in (*AXES, "label")
        )


class Override(BaseModel):
    """Options for the trials that match `when` (later overrides win)."""

    model_config = ConfigDict(extra="forbid")

    when: When = Field(description="grid axes to match, e.g. {env: Ant-v4, algo: td3}")
    set: RunOptions = Field(description="RunConfig options to set on the matching trials")  # type: ignore[valid-type]


class Resources(BaseModel):
    """What one trial gets, how many run at once, and how failures are handled."""

    model_config = ConfigDict(extra="forbid")

    cpus_per_trial: float = Field(1, gt=0, description="CPUs Ray reserves per trial (torch uses `options.threads` threads)")
    gpus_per_trial: float = Field(0, ge=0, description="GPUs Ray reserves per trial (fractions share a GPU)")
    max_concurrent: int | None = Field(None, gt=0, description="trials running at once (None: as many as the resources allow)")
    max_failures: int = Field(3, ge=0, description="retries of a failed trial, each from its last checkpoint")
    checkpoint_every: int = Field(1, gt=0, description="checkpoint at every n-th evaluation point (and always at the end)")
    group: Literal["auto", "none", "seeds"] | Annotated[int, Field(ge=1)] = Field(
        "auto", description="train the seeds of one configuration together in one trial, with stacked networks: "
                            "none (one trial each), seeds (all of them), a group size, or auto (a few per CPU "
                            "trial, more per GPU trial). Grouping changes neither the runs nor what they log")

    def group_size(self, gpus: float | None = None) -> int | None:
        """Members per group (None: as many as there are seeds)."""
        if self.group == "auto":
            return AUTO_GROUP_GPU if (self.gpus_per_trial if gpus is None else gpus) > 0 else AUTO_GROUP_CPU
        return {"none": 1, "seeds": None}.get(self.group, self.group)  # type: ignore[arg-type]


# `group: auto`: members per trial. On a CPU a few: per-operation overhead is shared, the
# arithmetic is not; on a GPU many small agents fill the device (issue 12's bench measures both).
AUTO_GROUP_CPU, AUTO_GROUP_GPU = 4, 16


def group_trials(trials: list[Trial], size: int | None) -> list[list[Trial]]:
    """Trials that differ only in their seed, in groups of at most `size` (grid order kept).
    A group is what one Tune trial trains; each member keeps its own run."""
    by_config: dict[str, list[Trial]] = {}
    for t in trials:
        if t.resolved.ungroupable():  # trains alone: a group of one
            by_config[t.run_key] = [t]
            continue
        key = json.dumps([t.label, t.resolved.model_dump(mode="json", exclude={"seed"})], sort_keys=True)
        by_config.setdefault(key, []).append(t)
    groups = []
    for members in by_config.values():
        step = size or len(members)
        groups += [members[i:i + step] for i in range(0, len(members), step)]
    return sorted(groups, key=lambda g: g[0].index)


def group_name(members: list[Trial]) -> str:
    """A group's name: its members' common name with their seeds, e.g. td3-ds-Pendulum-v1-s0+1+2."""
    if len(members) == 1:
        return members[0].name
    common = members[0].name.rsplit("-s", 1)[0]
    return f"{common}-s{'+'.join(str(t.config.seed) for t in members)}"


class ExperimentSpec(BaseModel):
    """One experiment: an MLflow experiment and the grid of Ray Tune trials that fill it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200,
                      description="experiment name (the MLflow experiment): letters, digits, _ . - and spaces")
    description: str = Field("", description="what the experiment shows")
    grid: Grid = Field(description="the axes whose combinations are the trials")
    options: RunOptions = Field(default_factory=RunOptions, description="RunConfig options for every trial")  # type: ignore[valid-type]
    overrides: list[Override] = Field([], description="options for the trials matching a condition, in order")
    resources: Resources = Field(default_factory=Resources, description="per-trial resources and fault tolerance")
    _warnings: list[str] = PrivateAttr(default_factory=list)  # questionable settings found by load_trials

    @property
    def warnings(self) -> list[str]:
        return list(self._warnings)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\- ]*", name):
            raise ValueError("use letters, digits, _ . - and spaces, starting with a letter or digit")
        return name

    def trials(self, source: str = "<spec>") -> list[Trial]:
        return expand(self, source)


@dataclass(frozen=True)
class Trial:
    """One grid point: the options as the spec sets them, resolved, and the run's identity."""

    index: int
    config: RunConfig  # as the spec sets it (None = the papers' default)
    resolved: Resolved  # what the run uses and logs
    run_key: str
    label: str | None = None  # method variant
    axes: tuple[tuple[str, Any], ...] = ()  # values of the grid's option axes

    @property
    def method_name(self) -> str:
        return f"{self.config.method}:{self.label}" if self.label else self.config.method

    @property
    def name(self) -> str:
        """Readable and unique within a grid, e.g. td3-ds-HalfCheetah-v4-s0."""
        c = self.config
        parts = [c.algo, self.method_name, c.env]
        if c.sparsity is not None:
            parts.append(f"sp{c.sparsity:g}")
        parts += [f"{k}{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else f"{k}{v}"
                  for k, v in self.axes]
        return "-".join([*parts, f"s{c.seed}"])

    @property
    def sparsity_text(self) -> str:
        """The sparsity as configured: a level, Sokar's λ pair, or '-' for dense."""
        r = self.resolved
        if METHODS[r.method].matches_sparsity:
            return f"≙ {r.sparsity:g}"
        if not METHODS[r.method].sparse:
            return "-"
        if r.distribution == "er":
            return f"λ {r.lambda1:g}/{r.lambda2:g}"
        return f"{r.sparsity:g} {r.distribution}"

    def tags(self) -> dict[str, str]:
        """Tags known before the run starts (the trainable adds the initial sparsity)."""
        c = self.config
        tags = {
            names.TAG_ALGO: c.algo, names.TAG_METHOD: c.method, names.TAG_ENV: c.env,
            names.TAG_SEED: str(c.seed), names.TAG_BUDGET: str(c.steps),
            names.TAG_RUN_KEY: self.run_key,
        }
        if self.label:
            tags[names.TAG_VARIANT] = self.label
        return tags

    def row(self) -> dict[str, Any]:
        """One line of the expanded grid (dry-run table, grid artifact)."""
        c = self.config
        row = {"trial": self.index, "algo": c.algo, "method": self.method_name, "env": c.env,
               "sparsity": self.sparsity_text}
        row.update({k: v for k, v in self.axes})
        return {**row, "steps": c.steps, "seed": c.seed, "run_key": self.run_key}


# --- loading ---------------------------------------------------------------------------------
def load_spec(path: str | Path) -> ExperimentSpec:
    """Parse and validate a spec file (the grid is not expanded yet; see `load_trials`)."""
    path = Path(path)
    raw = read_mapping(path, str(path), "name, grid, …", SpecError)
    try:
        return ExperimentSpec.model_validate(raw)
    except ValidationError as err:
        raise SpecError(_describe(err, path)) from None


def load_trials(path: str | Path) -> tuple[ExperimentSpec, list[Trial]]:
    """Parse, validate and expand a spec; every trial is checked down to its layer densities."""
    spec = load_spec(path)
    trials = spec.trials(str(path))
    spec._warnings = check_buildable(trials, str(path), gpus_per_trial=spec.resources.gpus_per_trial)
    return spec, trials


def _describe(err: ValidationError, path: Path) -> str:
    problems = [_one(e) for e in err.errors()]
    more = f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})" if len(problems) > 1 else ""
    return f"{path}: {problems[0]}{more}"


def _one(e: dict[str, Any]) -> str:
    loc = list(e["loc"])
    ctx_err = (e.get("ctx") or {}).get("error")
    msg = e["msg"].removeprefix("Value error, ")
    if isinstance(ctx_err, _ItemError):
        loc += [ctx_err.index, *filter(None, ctx_err.subpath.split("."))]
        msg = ctx_err.problem
    if e["type"] == "extra_forbidden":
        msg = "unknown key" + _suggest(str(loc[-1]), _model_at(loc[:-1]))
    elif e["type"] == "missing":
        msg = "required key is missing"
    value = e.get("input")
    shown = "" if e["type"] in ("extra_forbidden", "missing") or isinstance(value, (dict, list)) or value is None \
        or isinstance(ctx_err, _ItemError) else f" (got {value!r})"
    return f"{_key_path(loc)}: {msg}{shown}"


def _key_path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("MethodEntry",) or str(part).startswith(("list[", "function-")):
            continue  # pydantic's names for union members and validators, not keys of the file
        else:
            out += f".{part}" if out else str(part)
    return out or "top level"


def _model_at(loc: list[Any]) -> type[BaseModel] | None:
    """The spec model that holds the key at `loc` (to suggest its own keys)."""
    model: type[BaseModel] | None = ExperimentSpec
    for part in loc:
        if isinstance(part, int):
            continue
        if model is None or part not in model.model_fields:
            return None
        model = _model_in(model.model_fields[part].annotation)
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _suggest(key: str, model: type[BaseModel] | None) -> str:
    if key in AXES and model is RunOptions:
        return f" here ({key} is a grid axis: list it under grid.{key})"
    known = list(model.model_fields) if model is not None else []
    close = difflib.get_close_matches(key, known, n=2)
    return f" (did you mean {' or '.join(close)}?)" if close else ""


# --- expansion -------------------------------------------------------------------------------
def expand(spec: ExperimentSpec, source: str = "<spec>") -> list[Trial]:
    """Every grid point as a validated, resolved trial. Dense is not multiplied by sparsity.

    A seed changes neither validation nor resolution: a configuration is built and resolved once,
    and the seeds after the first that get the same options are copies of it (tens of thousands
    of trials in seconds).
    """
    g = spec.grid
    used = [False] * len(spec.overrides)
    trials: list[Trial] = []
    by_key: dict[str, Trial] = {}
    checked = False
    for algo, env, entry in itertools.product(g.algo, g.env, g.method):
        levels = g.sparsity if METHODS[entry.name].crosses_sparsity_axis else [None]
        for sparsity, steps, axes in itertools.product(levels, g.steps, _option_points(g, entry)):
            base: tuple[dict[str, Any], RunConfig, Resolved, dict[str, Any]] | None = None
            for seed in g.seed:
                point = {"algo": algo, "method": entry.name, "label": entry.label, "env": env,
                         "sparsity": sparsity, "steps": steps, "seed": seed}
                options = _options(spec, entry, point, used) | dict(axes)
                if base is None or options != base[0]:  # an override may set options per seed
                    configured, resolved = _build(options, point, source)
                    base = options, configured, resolved, resolved.model_dump(mode="json")
                    trial = Trial(len(trials), configured, resolved, resolved.run_key(), entry.label, axes)
                else:
                    configured = base[1].model_copy(update={"seed": seed})
                    trial = Trial(len(trials), configured, base[2].model_copy(update={"seed": seed}),
                                  _run_key({**base[3], "seed": seed}), entry.label, axes)
                    if not checked:  # once per spec: a copy's key is the key RunConfig computes
                        assert trial.run_key == configured.run_key(), "resolution depends on the seed"
                        checked = True
                if trial.run_key in by_key:
                    raise SpecError(f"{source}: grid: trials {by_key[trial.run_key].name} and {trial.name} "
                                    f"resolve to the same run (run key {trial.run_key})")
                by_key[trial.run_key] = trial
                trials.append(trial)
    for i, hit in enumerate(used):
        if not hit:
            raise SpecError(f"{source}: overrides[{i}].when: matches no trial of the grid")
    return trials


def _keeps(method_name: str, option: str) -> bool:
    """Whether a trial of this method takes the option (dense ones drop sparse-only options; a
    width-matched one keeps the sparsity it matches)."""
    method = METHODS[method_name]
    return method.sparse or option not in SPARSE_ONLY or (method.matches_sparsity and option.endswith("sparsity"))


def _option_points(grid: Grid, entry: MethodEntry) -> list[tuple[tuple[str, Any], ...]]:
    """The option-axis combinations of a method: a dense method is not multiplied by sparse-only
    axes, as it is not multiplied by the sparsity levels."""
    kept = {k: v for k, v in grid.options.items() if _keeps(entry.name, k)}
    return [tuple(zip(kept, values)) for values in itertools.product(*kept.values())]


def _options(spec: ExperimentSpec, entry: MethodEntry, point: dict[str, Any], used: list[bool]) -> dict[str, Any]:
    """The options a grid point sets: spec, then method, then matching overrides (marked used)."""
    options = _set_options(spec.options) | _set_options(entry.options)
    for i, override in enumerate(spec.overrides):
        if override.when.matches(point):
            used[i] = True
            options |= _set_options(override.set)
    return {k: v for k, v in options.items() if _keeps(entry.name, k)}


def _build(options: dict[str, Any], point: dict[str, Any], source: str) -> tuple[RunConfig, Resolved]:
    """The trial's config as the spec sets it, and resolved; SpecError naming the trial."""
    axes = {k: point[k] for k in AXES if not (k == "sparsity" and point[k] is None)}
    trial_name = "-".join(str(point[k]) for k in ("algo", "method", "env")) + f" seed {point['seed']}"
    try:
        configured = config.build(**options, **axes)
        return configured, configured.resolve()
    except ValidationError as err:
        problem = first_error(err).removeprefix("config: ")
        raise SpecError(f"{source}: grid: trial {trial_name}: {problem}") from None
    except ValueError as err:
        raise SpecError(f"{source}: grid: trial {trial_name}: {err}") from None


def _run_key(resolved: dict[str, Any]) -> str:
    """RunConfig.run_key of an already resolved config's dump (expand checks they agree)."""
    return hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()[:16]


_SEED_FREE = {"seed", "steps", "topology_end", "prune_start", "prune_end"}


def check_buildable(trials: list[Trial], source: str = "<spec>", *, gpus_per_trial: float | None = None) -> list[str]:
    """What only the environment and the networks' shapes reveal (a discrete-action env for
    TD3, a λ that asks a layer for density > 1, …), once per distinct configuration (seeds and
    budgets change no shape). Returns the warnings of the distinct configurations."""
    from dsrl_platform.agents.registry import check_run  # lazy: imports torch

    seen: set[str] = set()
    warnings: list[str] = []
    for t in trials:
        key = t.resolved.model_dump_json(exclude=_SEED_FREE)  # field order is fixed: a fine dedupe key
        if key in seen:
            continue
        seen.add(key)
        try:
            if gpus_per_trial is not None and t.resolved.device == "cuda" and gpus_per_trial <= 0:
                raise ValueError("device: cuda needs resources.gpus_per_trial > 0 (Ray hides the GPUs "
                                 "from a trial that reserves none)")
            found = check_run(t.resolved, local_device=False) + t.config.warnings()
            warnings += [w for w in found if w not in warnings]
        except ValueError as err:
            raise SpecError(f"{source}: grid: trial {t.name}: {err}") from None
    return warnings


def launch_key(spec: ExperimentSpec, trials: list[Trial]) -> str:
    """Identity of a launch: the experiment and its set of trials (order and resources aside)."""
    payload = json.dumps({"name": spec.name, "runs": sorted(t.run_key for t in trials)})
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def grid_record(trials: list[Trial]) -> list[dict[str, Any]]:
    """The expanded grid as a launch records it (its grid artifact): each trial's row and name."""
    return [{"name": t.name, **t.row()} for t in trials]


# --- presentation ----------------------------------------------------------------------------
def describe_grid(spec: ExperimentSpec, trials: list[Trial]) -> str:
    """'150 trials: 2 algo × 3 method × 5 env × 5 seed (dense not multiplied by sparsity)' + table."""
    g = spec.grid
    dims = [f"{len(g.algo)} algo", f"{len(g.method)} method", f"{len(g.env)} env"]
    if len(g.sparsity) > 1:
        dims.append(f"{len(g.sparsity)} sparsity (sparse methods only)")
    if len(g.steps) > 1:
        dims.append(f"{len(g.steps)} budgets")
    dims += [f"{len(values)} {name}" for name, values in g.options.items()]
    dims.append(f"{len(g.seed)} seed")
    head = f"{spec.name}: {len(trials)} trials = {' × '.join(dims)}"
    notes = "".join(f"\nwarning: {w}" for w in spec.warnings)
    return head + notes + "\n" + format_table([t.row() for t in trials])


def format_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no trials)"
    cols = list(rows[0])
    extra = list(dict.fromkeys(c for r in rows for c in r if c not in cols))  # option axes dense rows lack
    at = cols.index("sparsity") + 1 if "sparsity" in cols else len(cols)
    cols[at:at] = extra
    rows = [{c: r.get(c, "-") for c in cols} for r in rows]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    line = lambda r: "  ".join(str(r[c]).ljust(widths[c]) for c in cols).rstrip()  # noqa: E731
    return "\n".join([line({c: c for c in cols}), line({c: "-" * widths[c] for c in cols}), *map(line, rows)])
