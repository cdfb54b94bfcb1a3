"""Issue 14's figures from a synthetic SQLite MLflow store: widths, parameters, dormant neurons.

Experiment "scaling" (dqn, CartPole-v1, budget 100, evaluations every 10, final_evals 3):
dense and prune at 90% x widths 1, 2, 4 x seeds 0, 1; final return = 100·width + 10·seed
(+50 for prune), nonzero parameters = 1000·width² (dense) / 100·width² (prune); dormant/q
logged at every evaluation as step / 1000 (dense) and step / 2000 (prune).
"""

from __future__ import annotations

import contextlib
import io

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from report_synth import T0, write_trial

from dsrl_platform import names
from dsrl_platform.cli import main
from dsrl_platform.report import beyond
from dsrl_platform.report.data import load_experiment
from dsrl_platform.report.scores import Analysis

WIDTHS, SEEDS = (1, 2, 4), (0, 1)
PNG = b"\x89PNG\r\n\x1a\n"


def final(method: str, width: int, seed: int) -> float:
    return 100.0 * width + 10 * seed + (50 if method == "prune" else 0)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("beyond")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("scaling", artifact_location=(root / "artifacts").as_uri())
    for method in ("dense", "prune"):
        for width in WIDTHS:
            for seed in SEEDS:
                level = 0.9 if method == "prune" else 0.0
                rid = write_trial(client, exp, algo="dqn", method=method, env="CartPole-v1", seed=seed,
                                  sparsity=str(level), budget=100, eval_every=10, final_evals=3,
                                  curve=lambda t, s, m=method, w=width: final(m, w, s),
                                  flops_per_step=1.0, params=(1000.0 if method == "dense" else 100.0) * width**2,
                                  name=f"dqn-{method}-w{width}-s{seed}")
                client.set_tag(rid, names.TAG_RUN_KEY, f"{method}-{width}-{seed}")
                scale = 1000 if method == "dense" else 2000
                dormant = [Metric(names.dormant_metric("q"), t / scale, T0 + t, t) for t in range(0, 101, 10)]
                layer = [Metric(names.dormant_metric("q.0"), 0.5, T0 + t, t) for t in range(0, 101, 10)]
                client.log_batch(rid, metrics=dormant + layer, params=[Param("width", str(float(width)))])
    return uri


@pytest.fixture(scope="module")
def analysis(store):
    return Analysis(load_experiment("scaling", store))


def test_scaling_points_are_per_width_and_sparsity(analysis):
    points = beyond._scaling_points(analysis).set_index(["method", "level", "width"])
    for method, level in (("dense", 0.0), ("prune", 0.9)):
        for width in WIDTHS:
            p = points.loc[(method, level, float(width))]
            assert p["mean"] == pytest.approx(final(method, width, 0.5)) and p["seeds"] == 2
            assert p["params"] == (1000.0 if method == "dense" else 100.0) * width**2
            assert p["ci"] > 0  # two seeds 10 apart


def test_dormant_histories_are_per_network_not_per_layer(analysis):
    h = beyond.dormant_histories(analysis)
    assert set(h["network"]) == {"q"} and len(h) == 12 * 11
    dense = h.merge(analysis.runs[["run_id", "method"]], on="run_id").query("method == 'dense' and step == 50")
    assert set(dense["fraction"]) == {0.05}


def test_scaling_dashboard_draws_its_figures(store, tmp_path):
    out = tmp_path / "report"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["report", "scaling", "--dashboard", "dashboards/scaling.yaml", "--out", str(out),
                     "--tracking-uri", store])
    assert code == 0, buf.getvalue()
    for stem in ("return_vs_width_dqn", "return_vs_params_dqn", "dormant_fraction_dqn", "learning_curves_dqn"):
        assert (out / "figures" / f"{stem}.png").read_bytes().startswith(PNG)
    page = (out / "index.html").read_text()
    assert "final return vs width" in page and "dormant neurons" in page
