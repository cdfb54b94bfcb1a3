"""Sokar's and Graesser's numbers on the synthetic store, each computed by hand (see conftest)."""

import math

import numpy as np
import pytest

from dsrl_platform.report.data import load_experiment
from dsrl_platform.report.scores import Analysis

from report_synth import ENV_A, ENV_B, SOKAR_1M, row

A = dict(algo="td3", env=ENV_A, budget=100)
B = dict(algo="td3", env=ENV_B, budget=100)
SD3 = math.sqrt(200 / 3)  # population std of (x - 10, x, x + 10): the seeds' offsets 0, 10, 20
SD_LCA = math.sqrt((1.1**2 + 0 + 1.1**2) / 3)  # LCA offsets 110·s/100 = 0, 1.1, 2.2


def test_final_return_and_lca(synth):
    s = synth.summary
    # dense HalfCheetah: R(t) = t + 10s; last 3 evaluations t = 80, 90, 100 -> 90 + 10s
    d = row(s, **A, method="dense")
    assert (d.seeds, d.return_mean, d.return_std) == (3, pytest.approx(100.0), pytest.approx(SD3))
    # LCA = (Σ_{t=0,10..100} t + 11·10s) / 100 = (550 + 110s) / 100 -> 5.5, 6.6, 7.7
    assert (d.lca_mean, d.lca_std) == (pytest.approx(6.6), pytest.approx(SD_LCA))
    ds = row(s, **A, method="ds")  # 2t + 10s (its seed-0 run was resumed with duplicates)
    assert (ds.return_mean, ds.lca_mean) == (pytest.approx(190.0), pytest.approx(12.1))
    st = row(s, **A, method="static")  # 0.5t + 10s
    assert (st.return_mean, st.lca_mean) == (pytest.approx(55.0), pytest.approx(3.85))
    v = row(s, **A, method="ds:e200")  # 1.5t + 10s, a labelled variant: its own row
    assert (v.return_mean, v.lca_mean) == (pytest.approx(145.0), pytest.approx(9.35))
    # Pendulum dense: -1000 + 8t + 10s -> -280 + 10s; LCA (-11000 + 4400 + 110s) / 100
    p = row(s, **B, method="dense")
    assert (p.return_mean, p.lca_mean) == (pytest.approx(-270.0), pytest.approx(-64.9))
    assert len(s) == 7  # unfinished runs (returns of 1e6) formed no row and moved no mean


def test_sparsity_levels_group_seeds(synth):
    ds = row(synth.summary, **A, method="ds")
    assert ds.level == 0.51
    assert ds.sparsity == pytest.approx((0.5123 + 0.5087 + 0.5100) / 3)
    assert row(synth.summary, **A, method="dense").sparsity == 0.0


def test_params_and_flops_relative_to_dense(synth):
    s = synth.summary
    d, ds, st = (row(s, **A, method=m) for m in ("dense", "ds", "static"))
    assert (d.params, d.flops, d.params_rel, d.flops_rel) == (1000.0, 10000.0, 1.0, 1.0)
    assert (ds.params, ds.flops) == (500.0, 4000.0)  # 40 FLOPs per step × 100 steps
    assert (ds.params_rel, ds.flops_rel) == (pytest.approx(0.5), pytest.approx(0.4))
    assert (st.params_rel, st.flops_rel) == (pytest.approx(0.5), pytest.approx(0.5))


def test_steps_to_dense(synth):
    s = synth.summary
    # dense final mean 100; ds mean curve 2t + 10 >= 100 first at the evaluation t = 50
    ds = row(s, **A, method="ds")
    assert (ds.dense_return, ds.steps_to_dense, ds.steps_to_dense_frac) == (100.0, 50.0, 0.5)
    assert row(s, **A, method="ds:e200").steps_to_dense == 60.0  # 1.5t + 10 >= 100 -> t >= 60
    assert np.isnan(row(s, **A, method="static").steps_to_dense)  # 0.5t + 10 <= 60: never
    # Pendulum: dense final -270; ds -1000 + 9t + 10 >= -270 -> t >= 80
    assert row(s, **B, method="ds").steps_to_dense == 80.0
    assert np.isnan(row(s, **A, method="dense").steps_to_dense)


def test_normalised_returns(synth):
    n = synth.normalised
    # HalfCheetah: dense mean 100 > 0 -> R / 100
    got = sorted(n[(n.env == ENV_A) & (n.method == "ds")]["score"])
    assert got == pytest.approx([1.8, 1.9, 2.0])
    # Pendulum: dense mean -270 <= 0 -> (R - R0) / (dense - R0), R0 = mean step-0 return of
    # all Pendulum runs = mean(-1000 + 10s) = -990; ds R = -190, -180, -170
    got = sorted(n[(n.env == ENV_B) & (n.method == "ds")]["score"])
    assert got == pytest.approx([800 / 720, 810 / 720, 820 / 720])
    assert set(n[n.env == ENV_B]["basis"]) == {"from step-0 return"}
    summary = synth.normalised_summary()
    assert row(summary, **A, method="static").score_mean == pytest.approx(0.55)


def test_iqm_with_stratified_ci(synth):
    iqm = synth.iqm
    ds = row(iqm, algo="td3", method="ds")
    # pooled (1.8, 1.9, 2.0, 800/720, 810/720, 820/720): n = 6, trim 1 from each end
    assert ds.iqm == pytest.approx((810 / 720 + 820 / 720 + 1.8 + 1.9) / 4)
    assert (ds.runs, ds.envs) == (6, 2)
    assert ds.ci_low <= ds.iqm <= ds.ci_high
    # dense: (0.9, 1.0, 1.1, 710/720, 1, 730/720) -> middle four average to exactly 1
    assert row(iqm, algo="td3", method="dense").iqm == pytest.approx(1.0)
    again = Analysis(synth.data, synth.options).iqm
    assert again[["ci_low", "ci_high"]].equals(iqm[["ci_low", "ci_high"]])  # seeded


def test_probability_of_improvement_over_dense(synth):
    imp = synth.improvement
    # every ds run beats every dense run in both environments; static never does
    ds, st = row(imp, method="ds"), row(imp, method="static")
    assert (ds.p_improvement, ds.ci_low, ds.ci_high, ds.envs) == (1.0, 1.0, 1.0, 2)
    assert (st.p_improvement, st.ci_high) == (0.0, 0.0)
    assert row(imp, method="ds:e200").envs == 1
    assert "dense" not in set(imp["method"])


def test_published_numbers_only_where_env_and_budget_match(store, synth):
    assert synth.summary["published_return_mean"].isna().all()  # budget 100, Pendulum
    s = Analysis(load_experiment(SOKAR_1M, store.uri)).summary
    d = row(s, method="dense")
    # measured: R(t) = 0.01t + 100s; the last 10 evaluations average t = 977,500
    assert (d.return_mean, d.return_std) == (pytest.approx(9825.0), pytest.approx(50.0))
    # LCA: Σ_{k=0..200} 0.01·5000k / 1e6 = 1.005, plus 201·100s / 1e6
    assert d.lca_mean == pytest.approx(1.005 + 0.0201 / 2)
    assert (d.published_return_mean, d.published_return_std, d.published_lca) == (11153.48, 473.29, 1.7686)
    ds = row(s, method="ds")
    assert (ds.published_return_mean, ds.published_lca) == (11459.88, 1.9560)
