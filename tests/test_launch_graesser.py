"""End to end: Graesser's smoke grid launched through real Ray Tune into a real SQLite store, then
`dsrl-platform report --dashboard graesser2022` on what it logged.

The harness (a CLI subprocess in its own directory, a local Ray of two CPUs, leftovers killed by
PID) is test_launch.py's.
"""

from __future__ import annotations

import pandas as pd
import pytest

from dsrl_platform.spec import load_trials

from test_launch import ROOT, work  # noqa: F401  (work: the fixture)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SMOKE = ROOT / "experiments" / "smoke_graesser.yaml"


def test_graesser_smoke_grid_reports_matched_dense_beside_the_sparse_methods(work):  # noqa: F811
    spec, trials = load_trials(SMOKE)
    launch = work.run(work.launch_args(SMOKE))
    assert launch.returncode == 0, launch.stdout + launch.stderr
    assert f"{spec.name}: {len(trials)}/{len(trials)} trials finished (finished)" in launch.stdout

    out = work.dir / "report"
    report = work.run(work.command("report", spec.name, "--dashboard", "graesser2022", "--out", str(out),
                                   "--tracking-uri", work.uri), timeout=300)
    assert report.returncode == 0, report.stdout + report.stderr
    assert f"{len(trials)} finished runs, 0 unfinished" in report.stdout

    # One IQM row per agent family × method, the matched dense network at the level it matches.
    grid = {(t.config.algo, t.config.method) for t in trials}
    iqm = pd.read_csv(out / "tables" / "iqm.csv")
    assert sorted(zip(iqm["algo"], iqm["method"], iqm["level"])) == sorted(
        (algo, method, 0.0 if method == "dense" else 0.9) for algo, method in grid)
    assert (iqm["runs"] == 1).all() and (iqm["ci_low"] <= iqm["iqm"]).all() and (iqm["iqm"] <= iqm["ci_high"]).all()
    assert (iqm.loc[iqm["method"] == "dense", "iqm"] == 1.0).all()  # each family against its own dense
    md = (out / "tables" / "iqm.md").read_text()
    for algo in ("ppo", "sac"):
        assert f"| {algo} | 2,048 | Dense (matched) | 90% | 1 | 1 | " in md
    assert "here 1 of 3." in md  # last 10% of 3 evaluations: at least one

    # What the runs logged, read back: per-network options (dense: null -> 0) and parameter counts.
    runs = pd.read_csv(out / "tables" / "runs.csv").set_index(["algo", "method"])
    assert runs.loc[("sac", "rigl"), ["actor_sparsity", "critic_sparsity"]].tolist() == [0.9, 0.9]
    assert runs.loc[("ppo", "dense_matched"), ["actor_sparsity", "value_sparsity"]].tolist() == [0.9, 0.9]
    assert runs.loc[("ppo", "dense"), "value_sparsity"] == 0.0 and pd.isna(runs.loc[("ppo", "dense"), "critic_sparsity"])
    assert (runs["score_evals"] == 1).all() and (runs["evaluations"] == 3).all()
    costs = pd.read_csv(out / "tables" / "costs.csv").set_index(["algo", "method"])
    for algo, other in (("sac", "params_critic"), ("ppo", "params_value")):
        matched, dense = costs.loc[(algo, "dense_matched")], costs.loc[(algo, "dense")]
        assert matched[other] > 0 and matched["params_with_biases"] < 0.25 * dense["params_with_biases"]

    improvement = pd.read_csv(out / "tables" / "improvement.csv")
    assert len(improvement) == len(grid) - 2  # every method but dense, per family
    page = (out / "index.html").read_text()
    assert "Dense (matched)" in page
    for figure in ("return_vs_sparsity", "improvement_vs_sparsity", "final_return_vs_sparsity", "learning_curves"):
        for algo in ("ppo", "sac"):
            assert (out / "figures" / f"{figure}_{algo}.png").is_file()
