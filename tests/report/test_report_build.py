"""`dsrl-platform report` end to end: files, their numbers, artifacts, errors, atomic output."""

import re

import numpy as np
import pandas as pd
import pytest
from report_synth import BUDGET, ENV_A, ONLY_FAILED, SOKAR_1M, SYNTH, g_score, row

from dsrl_platform import names
from dsrl_platform.cli import main
from dsrl_platform.report import build

SOKAR_TABLES = ["returns", "costs", "steps_to_dense", "runs", "unfinished"]
GRAESSER_TABLES = ["iqm", "improvement", "actor_critic", "normalised", "costs", "runs", "unfinished"]
GRAESSER_FIGURES = [f"{figure}_{algo}" for figure in ("return_vs_sparsity", "improvement_vs_sparsity",
                                                      "final_return_vs_sparsity") for algo in ("dqn", "ppo", "sac")]
GRAESSER_FIGURES += ["actor_critic_sac", "learning_curves_dqn", "learning_curves_ppo", "learning_curves_sac"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _files(out):
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())


@pytest.mark.parametrize("name, tables, pngs, runs", [
    ("sokar", SOKAR_TABLES, ["learning_curves_td3", "return_vs_flops_td3", "return_vs_sparsity_td3"], (21, 3)),
    ("graesser", GRAESSER_TABLES, GRAESSER_FIGURES, (50, 0)),
])
def test_report_files(reports, name, tables, pngs, runs):
    out, stdout = reports[name]
    expected = sorted([f"tables/{t}.{x}" for t in tables for x in ("csv", "md", "tex")]
                      + [f"figures/{p}.png" for p in pngs] + ["index.html"])
    assert _files(out) == expected
    assert f"wrote {len(expected)} files to {out}" in stdout
    assert f"{runs[0]} finished runs, {runs[1]} unfinished" in stdout
    for p in pngs:
        assert (out / "figures" / f"{p}.png").read_bytes().startswith(PNG_MAGIC)
    page = (out / "index.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(pngs)  # figures embedded
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from a network
    assert not list(out.parent.glob(f".{name}.*"))  # no temporary directories left behind


def test_csv_tables_hold_the_numbers(reports):
    out = reports["sokar"][0] / "tables"
    returns = pd.read_csv(out / "returns.csv")
    ds = row(returns, env=ENV_A, method="ds")
    assert (ds.return_mean, ds.lca_mean, ds.seeds) == (pytest.approx(190.0), pytest.approx(12.1), 3)
    costs = pd.read_csv(out / "costs.csv")
    ds_costs = row(costs, env=ENV_A, method="ds")
    assert ds_costs.flops_rel == pytest.approx(0.4)
    assert (ds_costs.update_ms, ds_costs.update_ms_rel) == (pytest.approx(6.0), pytest.approx(0.6))
    assert ds_costs.update_wall_s == pytest.approx(6.0 * BUDGET / 1000)
    untimed = pd.read_csv(reports["graesser"][0] / "tables" / "costs.csv")  # runs that logged no timing
    assert untimed["update_ms"].isna().all()  # a dash, not a 0
    steps = pd.read_csv(out / "steps_to_dense.csv")
    assert row(steps, env=ENV_A, method="ds").steps_to_dense == 50
    unfinished = pd.read_csv(out / "unfinished.csv")
    assert sorted(unfinished["run_name"]) == ["crashed", "failed-after-summary", "still-running"]
    graesser = reports["graesser"][0] / "tables"
    iqm = pd.read_csv(graesser / "iqm.csv")  # the dashboard scores the last 10%: (195c + o)/215
    assert row(iqm, algo="sac", method="dense_matched", level=0.9).iqm == pytest.approx((195 * 0.6 + 18.75) / 215)
    cells = pd.read_csv(graesser / "actor_critic.csv")
    assert row(cells, x_sparsity=0.9, y_sparsity=0.5).iqm == pytest.approx((195 * 1.05 + 18.75) / 215)
    runs = pd.read_csv(graesser / "runs.csv")
    assert set(runs["score_evals"]) == {2} and set(runs["evaluations"]) == {21}
    normalised = pd.read_csv(graesser / "normalised.csv")
    assert row(normalised, algo="sac", env="Hopper-v4", method="rigl", level=0.5).score_mean == pytest.approx(
        np.mean([g_score(1.1, s) for s in range(3)]))


def test_markdown_and_latex(reports):
    out = reports["sokar"][0] / "tables"
    md = (out / "returns.md").read_text()
    assert "| td3 | HalfCheetah-v4 | 100 | ds | 51.0% | 3 | 190.00 ± 8.16 | 12.1000 ± 0.8981 |" in md
    assert "published" not in md  # budget 100 steps: nothing to compare with
    tex = (out / "returns.tex").read_text()
    assert r"td3 & HalfCheetah-v4 & 100 & ds & 51.0\% & 3 & 190.00 $\pm$ 8.16 & 12.1000 $\pm$ 0.8981 \\" in tex
    assert r"\toprule" in tex and r"\bottomrule" in tex
    steps = (out / "steps_to_dense.md").read_text()
    assert "| 50 | 50.0% |" in steps and "not reached" in steps
    iqm = (reports["graesser"][0] / "tables" / "iqm.md").read_text()
    assert "| sac | 200 | Dense (matched) | 90% | 6 | 2 | 0.631 | [" in iqm  # (117 + 18.75)/215
    assert "| sac | 200 | dense | 0% | 6 | 2 | 0.994 | [" in iqm
    assert "(published)" not in iqm  # 200 steps
    tex = (reports["graesser"][0] / "tables" / "actor_critic.tex").read_text()
    assert r"sac & 200 & rigl & actor $\times$ critic & 50\% & 90\% & 6 & 2 & 0.722 & [" in tex


def test_published_iqm_beside_measured(reports):
    md = (reports["graesser1m"][0] / "tables" / "iqm.md").read_text()
    assert "IQM (published)" in md
    assert "| sac | 1,000,000 | Dense (matched) | 90% | 2 | 1 | 0.801 | [0.796, 0.806] | 0.90 |" in md
    assert "| sac | 1,000,000 | rigl | 90% | 2 | 1 | 1.100 | [1.095, 1.104] | 1.10 |" in md
    assert "| sac | 1,000,000 | dense | 0% | 2 | 1 | 1.000 | [0.995, 1.005] | 1.12 |" in md


def test_published_values_beside_measured(reports):
    out, _ = reports["sokar1m"]
    md = (out / "tables" / "returns.md").read_text()
    assert "return (published)" in md and "LCA (published)" in md
    assert "| 9,825.00 ± 50.00 | 1.0151 ± 0.0101 | 11,153.48 ± 473.29 | 1.7686 |" in md
    assert "11,459.88 ± 482.55 | 1.9560 |" in md
    assert "-v3" in md and "HalfCheetah-v4" in md  # the footnote on environment versions
    assert "return (published)" in (out / "index.html").read_text()


def test_artifacts_on_the_newest_launch_run(store, reports):
    client = store.client
    logged = {a.path for a in client.list_artifacts(store.newer_parent, "report/sokar2022")}
    assert {"report/sokar2022/index.html", "report/sokar2022/tables",
            "report/sokar2022/figures"} <= logged
    assert client.list_artifacts(store.graesser_parent, "report/graesser2022")
    assert not client.list_artifacts(store.older_parent)
    # sokar-1m had no launch run: one was created for the report
    launches = client.search_runs([store.sokar_id], f"tags.`{names.TAG_ROLE}` = 'launch'")
    assert len(launches) == 1
    assert client.list_artifacts(launches[0].info.run_id, "report/sokar2022")


@pytest.mark.parametrize("dashboard", ["sokar2022", "graesser2022"])
def test_an_experiment_without_finished_runs_still_reports(store, tmp_path, dashboard):
    out = tmp_path / "r"
    assert main(["report", ONLY_FAILED, "--dashboard", dashboard, "--out", str(out),
                 "--tracking-uri", store.uri]) == 0
    assert len(pd.read_csv(out / "tables" / "unfinished.csv")) == 1
    assert pd.read_csv(out / "tables" / "runs.csv").empty
    page = (out / "index.html").read_text()
    assert "No rows." in page and "No finished runs to plot." in page


def test_unknown_experiment_exits_2_naming_it(store, tmp_path, capsys):
    code = main(["report", "no-such-exp", "--out", str(tmp_path / "r"), "--tracking-uri", store.uri])
    assert code == 2
    assert "experiment 'no-such-exp': not found" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("yaml_text, message", [
    ("name: x\ntitle: t\ntables: [returns, bogus]\n", "tables.1: unknown table 'bogus'"),
    ("name: x\ntitle: t\nfigures: [nope]\n", "figures.0: unknown figure 'nope'"),
    ("name: x\ntitle: t\ncolour: red\n", "colour: Extra inputs are not permitted"),
    ("name: x\ntitle: t\nbootstrap_reps: 100\n", "bootstrap_reps: Input should be greater than or equal to 2000"),
    ("name: x\ntitle: t\nscore: last_5\n", "score: Input should be 'last_final_evals' or 'last_10_percent'"),
])
def test_dashboard_is_validated(store, tmp_path, capsys, yaml_text, message):
    dash = tmp_path / "d.yaml"
    dash.write_text(yaml_text)
    code = main(["report", SYNTH, "--dashboard", str(dash), "--out", str(tmp_path / "r"),
                 "--tracking-uri", store.uri])
    assert code == 2
    assert message in capsys.readouterr().err


def test_default_out_dir_and_tracking_uri_from_environment(store, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    assert main(["report", SOKAR_1M]) == 0  # default dashboard found from any directory
    assert (tmp_path / "reports" / SOKAR_1M / "index.html").is_file()
    assert str(tmp_path / "reports" / SOKAR_1M) in capsys.readouterr().out


def test_refuses_to_replace_a_directory_that_is_not_a_report(store, tmp_path, capsys):
    precious = tmp_path / "work"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    code = main(["report", SYNTH, "--out", str(precious), "--tracking-uri", store.uri])
    assert code == 2 and "not a report directory" in capsys.readouterr().err
    assert _files(precious) == ["notes.txt"]


def test_a_failed_build_leaves_the_previous_report(store, tmp_path, monkeypatch):
    out = tmp_path / "r"
    args = ["report", SOKAR_1M, "--out", str(out), "--tracking-uri", store.uri]
    assert main(args) == 0
    (out / "stale.txt").write_text("from an older report")

    def boom(*args):  # fails after the tables and figures were written to the temporary dir
        raise RuntimeError("page failed")

    monkeypatch.setattr(build, "render_page", boom)
    with pytest.raises(RuntimeError, match="page failed"):
        main(args)
    assert (out / "stale.txt").exists() and (out / "index.html").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["r"]  # no temporary directory left
    monkeypatch.undo()
    assert main(args) == 0  # a successful rebuild replaces the directory as a whole
    assert not (out / "stale.txt").exists()
