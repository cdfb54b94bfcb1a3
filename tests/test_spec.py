"""Experiment specs: the shipped grids, expansion rules, and one clear error per mistake."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from dsrl_platform import config
from dsrl_platform.spec import SpecError, describe_grid, launch_key, load_spec, load_trials

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
MUJOCO = ["HalfCheetah-v4", "Hopper-v4", "Walker2d-v4", "Ant-v4", "Humanoid-v4"]


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def trials_of(tmp_path: Path, text: str):
    return load_trials(write(tmp_path, text))[1]


BASE = "name: t\ngrid: {algo: td3, method: [dense, static, ds], env: Pendulum-v1, seed: 1, steps: 3000}\n" \
       "options: {warmup_steps: 1000}\n"


# --- the shipped specs ----------------------------------------------------------------------
def test_paper_grid_is_sokars_comparison():
    spec, trials = load_trials(EXPERIMENTS / "paper_grid.yaml")
    assert len(trials) == 2 * 3 * 5 * 5 == 150
    cells = Counter((t.config.algo, t.config.method, t.config.env) for t in trials)
    assert set(cells.values()) == {5}  # 5 seeds everywhere
    assert {env for _, _, env in cells} == set(MUJOCO)
    assert {t.config.steps for t in trials} == {1_000_000}
    assert {t.config.seed for t in trials} == set(range(5))
    lam = {(t.config.algo, t.config.env): (t.resolved.lambda1, t.resolved.lambda2)
           for t in trials if t.config.method == "ds"}
    # Sokar et al. 2022: TD3 λ1 per environment, λ2 = 64; DS-SAC's table from the appendix.
    assert lam[("td3", "HalfCheetah-v4")] == lam[("td3", "Hopper-v4")] == lam[("td3", "Walker2d-v4")] == (7, 64)
    assert lam[("td3", "Humanoid-v4")] == (61, 64)
    # Ant-v4 lost v3's 84 always-zero contact-force inputs (111-D → 27-D): the paper's λ1 = 40
    # (SAC: 30) is restated as the same first-layer density on 27 inputs.
    assert lam[("td3", "Ant-v4")] == (12.6, 64) and lam[("sac", "Ant-v4")] == (9.5, 64)
    assert lam[("sac", "HalfCheetah-v4")] == lam[("sac", "Walker2d-v4")] == (12, 80)
    assert lam[("sac", "Hopper-v4")] == (7, 20)
    assert lam[("sac", "Humanoid-v4")] == (61, 64)
    for t in trials:
        r = t.resolved
        if (r.algo, r.method) == ("sac", "ds"):
            assert (r.drop_fraction, r.tau, r.target_update_every) == (0.1, 1.0, 1000)
        elif (r.algo, r.method) == ("td3", "ds"):
            assert r.drop_fraction == 0.05 and r.tau == 0.005
        if r.method == "dense":
            assert r.lambda1 is None and r.distribution is None
        if r.method == "static":
            assert r.distribution == "er" and r.sparse_layers == "hidden"
    # The overrides restate the papers' defaults: the same runs as RunConfig's own defaults.
    for t in trials:
        c = t.config
        if c.env == "Ant-v4" and c.method != "dense":
            continue
        plain = config.build(algo=c.algo, method=c.method, env=c.env, seed=c.seed, steps=c.steps)
        assert plain.run_key() == t.run_key, t.name
    assert len({t.run_key for t in trials}) == 150


def test_quickstart_and_smoke_are_small_comparisons():
    _, quick = load_trials(EXPERIMENTS / "quickstart.yaml")
    assert {t.config.method for t in quick} == {"dense", "static", "ds"}
    assert sum(t.config.steps for t in quick) <= 300_000
    smoke_spec, smoke = load_trials(EXPERIMENTS / "smoke.yaml")
    assert len(smoke) == 4 and {t.config.method for t in smoke} == {"dense", "ds"}
    assert {t.config.algo for t in smoke} == {"td3", "sac"}
    assert all(t.config.steps <= 3000 for t in smoke)
    assert smoke_spec.resources.max_failures >= 1


# --- expansion ------------------------------------------------------------------------------
def test_dense_is_not_multiplied_by_sparsity(tmp_path):
    trials = trials_of(tmp_path, BASE.replace("steps: 3000}", "steps: 3000, sparsity: [0.5, 0.8]}")
                       .replace("seed: 1", "seed: [3, 4]"))
    per_method = Counter(t.config.method for t in trials)
    assert per_method == {"dense": 2, "static": 4, "ds": 4}
    assert {t.config.sparsity for t in trials if t.config.method == "dense"} == {None}
    assert {(t.config.sparsity, t.config.seed) for t in trials if t.config.method == "ds"} == \
        {(0.5, 3), (0.5, 4), (0.8, 3), (0.8, 4)}
    assert {t.sparsity_text for t in trials if t.config.method == "ds"} == {"0.5 erk", "0.8 erk"}


def test_grid_size_is_counted_before_expanding(tmp_path):
    text = BASE.replace("steps: 3000}", "steps: [3000, 4000], sparsity: [0.5, 0.8]}").replace("seed: 1", "seed: 3")
    spec, trials = load_trials(write(tmp_path, text))
    assert spec.grid.size() == len(trials) == (1 + 2 * 2) * 2 * 3  # dense once, static and ds per level


def test_seed_copies_are_the_trials_runconfig_builds(tmp_path):
    trials = trials_of(tmp_path, BASE.replace("seed: 1", "seed: 4"))
    for t in trials:  # expansion builds one config per seed-free point and copies it per seed
        c = t.config
        rebuilt = config.build(**c.model_dump(exclude_unset=True))
        assert (rebuilt, rebuilt.resolve(), rebuilt.run_key()) == (c, t.resolved, t.run_key)


def test_option_precedence_and_overrides(tmp_path):
    text = """
name: t
grid:
  algo: [td3, sac]
  method: [dense, {name: ds, options: {lr: 0.002, drop_fraction: 0.2}}]
  env: [Pendulum-v1, HalfCheetah-v4]
  seed: 1
  steps: 3000
options: {warmup_steps: 1000, lr: 0.001, batch_size: 64, topology_interval: 500}
overrides:
  - when: {env: HalfCheetah-v4}
    set: {batch_size: 128}
  - when: {env: HalfCheetah-v4, algo: sac, method: ds}
    set: {batch_size: 256, lr: 0.003}
"""
    by = {(t.config.algo, t.config.method, t.config.env): t.config for t in trials_of(tmp_path, text)}
    assert by[("td3", "dense", "Pendulum-v1")].lr == 0.001  # options
    assert by[("td3", "ds", "Pendulum-v1")].lr == 0.002  # method options beat options
    assert by[("sac", "ds", "HalfCheetah-v4")].lr == 0.003  # overrides beat both, in file order
    assert by[("sac", "ds", "HalfCheetah-v4")].batch_size == 256
    assert by[("td3", "ds", "HalfCheetah-v4")].batch_size == 128
    assert by[("td3", "dense", "Pendulum-v1")].batch_size == 64
    # Sparse-only options never reach dense trials: one dense baseline for any sparse setting.
    dense = by[("td3", "dense", "Pendulum-v1")]
    assert dense.topology_interval is None and dense.resolve().topology_interval is None
    assert by[("td3", "ds", "Pendulum-v1")].topology_interval == 500


def test_seed_count_and_scalars(tmp_path):
    trials = trials_of(tmp_path, BASE.replace("seed: 1", "seed: 3").replace("[dense, static, ds]", "dense"))
    assert [t.config.seed for t in trials] == [0, 1, 2]
    trials = trials_of(tmp_path, BASE.replace("seed: 1", "seed: [7]").replace("[dense, static, ds]", "dense"))
    assert [t.config.seed for t in trials] == [7]


def test_variants_are_labelled_and_tagged(tmp_path):
    text = BASE.replace("[dense, static, ds]",
                        "[{name: ds, label: paper}, {name: ds, label: code, options: {drop_rule: code}}]")
    trials = trials_of(tmp_path, text)
    assert [t.label for t in trials] == ["paper", "code"]
    assert trials[1].tags()["dsrl.variant"] == "code"
    assert trials[0].name == "td3-ds:paper-Pendulum-v1-s0"


def test_launch_key_ignores_order_and_resources(tmp_path):
    a = load_trials(write(tmp_path, BASE, "a.yaml"))
    b_text = BASE.replace("[dense, static, ds]", "[ds, dense, static]") + "resources: {max_concurrent: 3}\n"
    b = load_trials(write(tmp_path, b_text, "b.yaml"))
    assert launch_key(*a) == launch_key(*b)
    c = load_trials(write(tmp_path, BASE.replace("seed: 1", "seed: 2"), "c.yaml"))
    assert launch_key(*a) != launch_key(*c)


def test_describe_grid_counts_and_table(tmp_path):
    spec, trials = load_trials(write(tmp_path, BASE))
    text = describe_grid(spec, trials)
    lines = text.splitlines()
    assert lines[0] == "t: 3 trials = 1 algo × 3 method × 1 env × 1 seed"
    assert lines[1].split() == ["trial", "algo", "method", "env", "sparsity", "steps", "seed", "run_key"]
    assert len(lines) == 3 + 3 and trials[2].run_key in lines[-1]


# --- errors: `<file>: <key.path>: <problem>` ------------------------------------------------
GRID = "grid: {algo: td3, method: ds, env: Pendulum-v1, seed: 1, steps: 30000}\n"
ERRORS = {
    "unknown top key": ("name: t\n" + GRID + "option: {}\n", "option: unknown key (did you mean options?)"),
    "unknown option": ("name: t\n" + GRID + "options: {lamda1: 3}\n", "options.lamda1: unknown key (did you mean lambda1"),
    "axis as option": ("name: t\n" + GRID + "options: {seed: 3}\n", "options.seed: unknown key here (seed is a grid axis"),
    "wrong type": ("name: t\n" + GRID + "options: {batch_size: many}\n", "options.batch_size: Input should be a valid integer"),
    "bad algo": ("name: t\ngrid: {algo: [td3, a2c], method: ds, env: Pendulum-v1, seed: 1}\n", "grid.algo[1]: Input should be 'td3', 'sac'"),
    "unknown env": ("name: t\ngrid: {algo: td3, method: ds, env: [Pendulum-v1, Hoper-v4], seed: 1}\n", "grid.env[1]: unknown environment 'Hoper-v4' (did you mean Hopper-v4"),
    "mujoco-py env": ("name: t\ngrid: {algo: td3, method: ds, env: Walker2d-v3, seed: 1}\n", "grid.env[0]: Walker2d-v3 needs mujoco-py"),
    "override env": ("name: t\n" + GRID + "overrides: [{when: {env: Ant-v9}, set: {lr: 0.1}}]\n", "overrides[0].when.env[0]: unknown environment 'Ant-v9'"),
    "override option": ("name: t\n" + GRID + "overrides: [{when: {algo: td3}, set: {lr: -1}}]\n", "overrides[0].set.lr: Input should be greater than 0"),
    "override unmatched": ("name: t\n" + GRID + "overrides: [{when: {algo: sac}, set: {lr: 0.1}}]\n", "overrides[0].when: matches no trial of the grid"),
    "impossible": ("name: t\n" + GRID.replace("30000", "100"), "grid: trial td3-ds-Pendulum-v1 seed 0: steps: the budget (100) must exceed warmup_steps (25000)"),
    "no lambda": ("name: t\n" + GRID + "options: {distribution: er, warmup_steps: 10}\n", "grid: trial td3-ds-Pendulum-v1 seed 0: lambda1: no published λ for Pendulum-v1"),
    "impossible λ": ("name: t\n" + GRID.replace("Pendulum-v1", "Hopper-v4") + "options: {lambda1: 300}\n",
                     "grid: trial td3-ds-Hopper-v4-s0: lambda1: λ=300.0 gives density 28.44>1 for a 11×256 layer"),
    "sparsity range": ("name: t\ngrid: {algo: td3, method: ds, env: Pendulum-v1, seed: 1, sparsity: [0.5, 1.2]}\n", "grid.sparsity[1]: Input should be less than 1"),
    "seed count": ("name: t\ngrid: {algo: td3, method: ds, env: Pendulum-v1, seed: 0}\n", "grid.seed: a seed count must be at least 1"),
    "missing": ("name: t\ngrid: {algo: td3, method: ds, seed: 1}\n", "grid.env: required key is missing"),
    "dense sparsity": ("name: t\ngrid: {algo: td3, method: [{name: dense, options: {lambda1: 3}}], env: Pendulum-v1, seed: 1}\n",
                       "grid.method[0].options.lambda1: the dense method takes no sparsity options"),
    "method twice": ("name: t\ngrid: {algo: td3, method: [ds, ds], env: Pendulum-v1, seed: 1}\n", "grid.method[1]: ds is listed twice"),
    "same run": ("name: t\ngrid: {algo: td3, method: ds, env: Pendulum-v1, seed: [1, 1], steps: 30000}\n", "resolve to the same run"),
    "resources": ("name: t\n" + GRID + "resources: {cpus_per_trial: 0}\n", "resources.cpus_per_trial: Input should be greater than 0"),
    "name": ("name: 'a/b'\n" + GRID, "name: use letters, digits"),
    "yaml syntax": ("name: t\ngrid: {algo: [td3\n", "line 3:"),
    "not a mapping": ("- 1\n", "top level: expected a mapping"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_mistakes_name_file_key_and_problem(tmp_path, case):
    text, expected = ERRORS[case]
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as err:
        load_trials(path)
    message = str(err.value)
    assert message.startswith(f"{path}: "), message
    assert expected in message, message
    assert "\n" not in message


def test_missing_file():
    with pytest.raises(SpecError, match="nope.yaml: no such file"):
        load_spec("nope.yaml")


# --- CLI --------------------------------------------------------------------------------------
MAIN = "import sys; from dsrl_platform.cli import main; sys.exit(main(sys.argv[1:]))"

def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", MAIN, *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_cli_validate_and_dry_run_print_the_grid_and_touch_nothing(tmp_path):
    out = cli("validate", str(EXPERIMENTS / "smoke.yaml"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("smoke: 4 trials = 2 algo × 2 method × 1 env × 1 seed")
    dry = cli("launch", str(EXPERIMENTS / "paper_grid.yaml"), "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[0].startswith("sokar2022-paper-grid: 150 trials")
    assert len(dry.stdout.splitlines()) == 3 + 150  # title, header, rule, trials
    assert list(tmp_path.iterdir()) == []  # no tracking store, no Ray results


def test_cli_bad_spec_exits_2_with_one_line(tmp_path):
    path = write(tmp_path, "name: t\n" + GRID + "options: {lamda1: 3}\n")
    for command in (["validate", str(path)], ["launch", str(path), "--dry-run"]):
        out = cli(*command, cwd=tmp_path)
        assert out.returncode == 2
        assert out.stderr.strip().count("\n") == 0
        assert f"{path}: options.lamda1: unknown key" in out.stderr


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_experiment_validates(path):
    spec, trials = load_trials(path)
    assert trials and len({t.run_key for t in trials}) == len(trials)


LEVELS = {0.5, 0.7, 0.8, 0.9, 0.95, 0.96, 0.97, 0.98, 0.99}


def test_graesser_sac_grid_is_their_tf_agents_setup_over_sparsity_levels():
    spec, trials = load_trials(EXPERIMENTS / "graesser2022_sac.yaml")
    assert len(trials) == 5 * (1 + 5 * 9) * 10
    sparse = [t.resolved for t in trials if t.resolved.method not in ("dense", "dense_matched")]
    assert {(t.distribution, t.sparse_layers, t.fixed_sparse_init or t.method == "prune") for t in sparse} == \
        {("erk", "all", True)}
    assert {t.sparsity for t in sparse} == LEVELS
    rigl = next(t for t in sparse if t.method == "rigl")
    assert (rigl.drop_fraction, rigl.drop_schedule, rigl.topology_end, rigl.update_replaces_step,
            rigl.sparse_targets) == (0.5, "cosine", 800_000, False, "mask")
    prune = next(t for t in sparse if t.method == "prune")
    assert (prune.prune_start, prune.prune_end, prune.weight_decay) == (200_000, 800_000, 1e-4)
    assert (rigl.learn_alpha, rigl.reward_scale, rigl.warmup_steps, rigl.weight_decay) == (True, 0.1, 1000, 1e-6)
    matched = [t for t in trials if t.resolved.method == "dense_matched"]
    assert {t.resolved.sparsity for t in matched} == LEVELS and all(t.resolved.critic_width < 1 for t in matched)
    assert {t.sparsity_text for t in matched} == {f"≙ {s:g}" for s in LEVELS}


@pytest.mark.parametrize("name,algo,steps", [("graesser2022_ppo.yaml", "ppo", 1_001_472),
                                             ("graesser2022_dqn_classic.yaml", "dqn", 100_000)])
def test_graesser_ppo_and_dqn_grids_cross_every_method_with_their_levels(name, algo, steps):
    _, trials = load_trials(EXPERIMENTS / name)
    assert {t.resolved.algo for t in trials} == {algo} and {t.resolved.steps for t in trials} == {steps}
    sparse = [t.resolved for t in trials if t.resolved.method not in ("dense", "dense_matched")]
    assert {t.sparsity for t in sparse} == LEVELS and {t.sparse_layers for t in sparse} == {"all"}


def test_option_axes_cross_run_options_and_dense_is_not_multiplied_by_sparse_ones(tmp_path):
    text = BASE.replace("steps: 3000}", "steps: 3000, options: {actor_sparsity: [0.5, 0.9], critic_sparsity: [0.8],"
                        " policy_noise: [0.1, 0.2]}}").replace("[dense, static, ds]", "[dense, ds]")
    spec, trials = load_trials(write(tmp_path, text))
    assert spec.grid.size() == len(trials) == 2 + 2 * 1 * 2  # dense: policy_noise only
    ds = {(t.resolved.actor_sparsity, t.resolved.critic_sparsity, t.resolved.policy_noise) for t in trials
          if t.config.method == "ds"}
    assert ds == {(0.5, 0.8, 0.1), (0.5, 0.8, 0.2), (0.9, 0.8, 0.1), (0.9, 0.8, 0.2)}
    assert {t.resolved.policy_noise for t in trials if t.config.method == "dense"} == {0.1, 0.2}
    names = {t.name for t in trials}
    assert "td3-ds-Pendulum-v1-actor_sparsity0.5-critic_sparsity0.8-policy_noise0.1-s0" in names
    assert "actor_sparsity" in describe_grid(spec, trials).splitlines()[1]
    for bad, message in (("{seed: [1]}", "seed is a grid axis"), ("{polcy_noise: [1]}", "unknown option")):
        with pytest.raises(SpecError, match=message):
            load_trials(write(tmp_path, BASE.replace("steps: 3000}", f"steps: 3000, options: {bad}}}")))


def test_rlx2_grid_compares_it_with_rigl_ds_and_dense_in_its_setup():
    _, trials = load_trials(EXPERIMENTS / "rlx2_mujoco.yaml")
    assert len(trials) == 2 * 5 * (1 + 3 * 3) * 5
    by_method = {m: [t.resolved for t in trials if t.resolved.method == m] for m in ("dense", "ds", "rigl", "rlx2")}
    assert {(t.lr, t.batch_size, t.weight_decay, t.steps) for ts in by_method.values() for t in ts} == \
        {(3e-4, 256, 0.0, 3_000_000)}
    rlx2 = by_method["rlx2"]
    assert {(t.n_step, t.n_step_start, t.dynamic_buffer, t.topology_interval, t.mask_init) for t in rlx2} == \
        {(3, 325_000, True, 10_000, "magnitude")}
    assert {t.buffer_min_size for t in rlx2 if t.algo == "sac"} == {200_000}
    assert {t.sparsity for t in rlx2} == {0.87, 0.9, 0.95} and {t.sparse_layers for t in rlx2} == {"all"}
    for method in ("dense", "ds", "rigl"):  # RLx2's parts are its own
        assert {(t.n_step, t.dynamic_buffer) for t in by_method[method]} == {(1, False)}
    sac = [t for t in rlx2 if t.algo == "sac"]
    assert {(t.env, t.target_entropy) for t in sac if t.env in ("Hopper-v4", "Humanoid-v4")} == \
        {("Hopper-v4", -3.0), ("Humanoid-v4", -17.0)} and all(t.learn_alpha for t in sac)


def test_rlx2_ablation_switches_off_one_part_per_variant():
    _, trials = load_trials(EXPERIMENTS / "rlx2_ablation.yaml")
    parts = {(t.method_name, (t.resolved.method == "rlx2", t.resolved.n_step, t.resolved.dynamic_buffer))
             for t in trials}
    assert parts == {("dense", (False, 1, False)), ("rlx2", (True, 3, True)),
                     ("rlx2:no-multistep", (True, 1, True)), ("rlx2:no-buffer", (True, 3, False)),
                     ("rlx2:topology-only", (True, 1, False)), ("static:no-topology", (False, 3, True))}
    static = next(t.resolved for t in trials if t.method_name == "static:no-topology" and t.resolved.algo == "sac")
    assert (static.mask_init, static.sparse_targets, static.n_step_start, static.buffer_min_size) == \
        ("magnitude", "mask", 325_000, 200_000)


@pytest.mark.parametrize("name,envs,seeds", [("scaling_dqn_classic.yaml", 2, 5), ("scaling_dqn_minatar.yaml", 3, 3)])
def test_scaling_grids_cross_width_with_sparsity_and_method(name, envs, seeds):
    spec, trials = load_trials(EXPERIMENTS / name)
    points = Counter((t.resolved.method, t.resolved.sparsity, t.resolved.width) for t in trials)
    widths = {1.0, 2.0, 4.0, 8.0}
    assert set(points) == {("dense", None, w) for w in widths} | \
        {("prune", s, w) for s in (0.9, 0.95, 0.99) for w in widths}
    assert set(points.values()) == {envs * seeds} and spec.grid.size() == len(trials)
