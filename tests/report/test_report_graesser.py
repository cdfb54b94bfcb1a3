"""Graesser et al.'s numbers on the synthetic graesser experiments, each computed by hand
(report_synth.py gives the curves): every normalised score there is (195c + o)/215."""

import numpy as np
import pytest

from dsrl_platform.report import published
from dsrl_platform.report.data import load_experiment
from dsrl_platform.report.scores import Analysis, Options, score_window
from dsrl_platform.report.tables import actor_critic_table, costs_table, iqm_table

from report_synth import G_BUDGET, G_ENVS, G_OFFSETS, G_SAC, GRAESSER_1M, g_score, row

SAC = dict(algo="sac", budget=G_BUDGET)
C = {(m, a, c): k for m, a, c, k, _ in G_SAC}  # (method, actor sparsity, critic sparsity) -> c
O_MEAN = np.mean(G_OFFSETS)  # 20
O_IQM = (G_OFFSETS[0] + 2 * G_OFFSETS[1] + G_OFFSETS[2]) / 4  # 18.75: each seed once per env,
# so the six pooled runs sort as o0 o0 o1 o1 o2 o2 and the middle four are o0 o1 o1 o2


def iqm_of(c: float) -> float:
    return (195 * c + O_IQM) / 215


@pytest.mark.parametrize("evaluations, final_evals, k10, k_final", [
    (21, 3, 2, 3), (101, 10, 10, 10), (71, 7, 7, 7), (51, 5, 5, 5), (9, 10, 1, 10), (1, 1, 1, 1)])
def test_score_windows(evaluations, final_evals, k10, k_final):
    # Graesser: int(0.1·N) and at least one (SAC 10 of 101, PPO 7 of 71, classic DQN 5 of 51)
    assert score_window("last_10_percent", evaluations, final_evals) == k10
    assert score_window("last_final_evals", evaluations, final_evals) == k_final


def test_scores_follow_the_rule(store, graesser):
    runs = graesser.runs
    r = row(runs, algo="sac", method="rigl", env="Hopper-v4", seed=2, level=0.9)
    # R(t) = 3·(0.8t + 45); last 10% of 21 evaluations: t = 190, 200 -> 3·(156 + 45)
    assert (r.evaluations, r.score_evals, r.final_return) == (21, 2, pytest.approx(603.0))
    sokar = Analysis(graesser.data, Options(score="last_final_evals")).runs
    r = row(sokar, algo="sac", method="rigl", env="Hopper-v4", seed=2, level=0.9)
    assert (r.score_evals, r.final_return) == (3, pytest.approx(3 * (0.8 * 190 + 45)))  # t = 180..200
    for r in runs.itertuples():  # every run: f·(195c + o)
        if r.algo == "sac":
            c = C[(r.method, _none(r.actor_sparsity), _none(r.critic_sparsity))]
            assert r.final_return == pytest.approx(G_ENVS[r.env] * (195 * c + G_OFFSETS[r.seed]))


def _none(x):
    return None if x == 0 else x  # dense logs null, read as sparsity 0


def test_matched_dense_sits_at_the_level_it_matches(graesser):
    s = graesser.normalised_summary()
    matched = s[s["method"] == "dense_matched"]
    assert sorted(zip(matched["env"], matched["level"])) == [(e, lv) for e in sorted(G_ENVS) for lv in (0.5, 0.9)]
    for env in G_ENVS:
        m = row(s, **SAC, env=env, method="dense_matched", level=0.9)
        assert m.score_mean == pytest.approx((195 * 0.6 + O_MEAN) / 215)
        assert row(s, **SAC, env=env, method="dense", level=0.0).score_mean == pytest.approx(1.0)
    n = graesser.normalised
    got = sorted(n[(n.algo == "sac") & (n.method == "dense_matched") & (n.level == 0.5)]["score"])
    assert got == pytest.approx(sorted(g_score(0.9, s) for s in range(3) for _ in G_ENVS))


def test_iqm_per_method_and_level_with_matched_dense(graesser):
    iqm = graesser.iqm
    expected = {("dense", 0.0): 1.0, ("dense_matched", 0.5): 0.9, ("dense_matched", 0.9): 0.6,
                ("rigl", 0.5): 1.1, ("rigl", 0.9): 0.8}
    sac = iqm[iqm["algo"] == "sac"]
    # the split runs (actor 50% / critic 90% and back, levels 0.81 and 0.59) are the heat map's
    assert sorted(zip(sac["method"], sac["level"])) == sorted(expected)
    for (method, level), c in expected.items():
        r = row(iqm, **SAC, method=method, level=level)
        assert (r.runs, r.envs) == (6, 2)
        assert r.iqm == pytest.approx(iqm_of(c))  # IQM, not the mean ((195c + 20)/215)
        # bootstrap CI: within the range of possible IQMs, around the estimate
        assert g_score(c, 0) <= r.ci_low <= r.iqm <= r.ci_high <= g_score(c, 2)
        assert r.ci_low < r.ci_high
    assert iqm["published_iqm"].isna().all()  # 200 steps, not 1e6
    # per agent family: ppo and dqn have their own rows, each against its own dense
    assert row(iqm, algo="ppo", method="rigl").iqm == pytest.approx((195 * 0.5 + 7.5) / 202.5)
    assert row(iqm, algo="dqn", method="rigl").iqm == pytest.approx((195 * 2 + 7.5) / 202.5)


def test_probability_of_improvement_over_dense(graesser):
    imp = graesser.improvement
    # P(195c + o_i > 195 + o_j) over the 9 seed pairs, o = 0, 15, 45, the same in both envs
    expected = {("rigl", 0.5): 7 / 9, ("dense_matched", 0.5): 2 / 9, ("rigl", 0.9): 1 / 9,
                ("dense_matched", 0.9): 0.0}
    assert len(imp[imp["algo"] == "sac"]) == len(expected)  # no split runs
    for (method, level), p in expected.items():
        r = row(imp, **SAC, method=method, level=level)
        assert r.p_improvement == pytest.approx(p)
        assert r.ci_low <= r.p_improvement <= r.ci_high and r.envs == 2
    assert row(imp, algo="dqn", method="rigl").p_improvement == 1.0


def test_actor_critic_cells(graesser):
    ac = graesser.actor_critic
    assert set(ac["algo"]) == {"sac"}  # ppo's and dqn's runs never set the two apart
    assert set(ac["method"]) == {"rigl"}  # dense_matched's levels are the same for both
    assert set(zip(ac["x_network"], ac["y_network"])) == {("actor", "critic")}
    for (method, actor, critic), c in C.items():
        if method == "rigl":
            r = row(ac, **SAC, method="rigl", x_sparsity=actor, y_sparsity=critic)
            assert (r.runs, r.envs, r.iqm) == (6, 2, pytest.approx(iqm_of(c)))
            assert r.ci_low <= r.iqm <= r.ci_high
    t = actor_critic_table(graesser).display
    assert list(t.columns[:6]) == ["algo", "steps", "method", "networks", "actor sparsity", "critic / value sparsity"]
    cell = t[(t["actor sparsity"] == "50%") & (t["critic / value sparsity"] == "90%")].iloc[0]
    assert (cell["networks"], cell["IQM"]) == ("actor × critic", f"{iqm_of(0.7):.3f}")


def test_per_network_columns_for_every_algorithm(graesser):
    data = graesser.data
    assert data.networks == ["actor", "critic", "q", "value"]
    r = data.runs.set_index("run_name")
    ppo = r.loc["ppo-dense-HalfCheetah-v4-s0"]  # null options of dense: sparsity 0
    assert (ppo.params_actor, ppo.params_value, ppo.actor_sparsity, ppo.value_sparsity) == (300, 300, 0.0, 0.0)
    assert np.isnan(ppo.params_critic) and np.isnan(ppo.critic_sparsity)
    dqn = r.loc["dqn-rigl-CartPole-v1-s1"]  # DQN has no per-network sparsity option
    assert dqn.params_q == pytest.approx(200) and np.isnan(dqn.actor_sparsity) and np.isnan(dqn.params_actor)
    sac = r.loc["sac-rigl-0.5-0.9-Hopper-v4-s0"]
    assert (sac.params_actor, sac.params_critic, sac.actor_sparsity, sac.critic_sparsity) == (500, 400, 0.5, 0.9)

    costs = costs_table(graesser)
    assert list(costs.display.columns[5:10]) == ["params actor", "params critic", "params q", "params value", "params"]
    line = lambda **keys: costs.display.loc[row(costs.data, **keys).name]  # noqa: E731  its displayed row
    dqn = line(algo="dqn", method="rigl")
    assert (dqn["params actor"], dqn["params q"], dqn["params"], dqn["params vs dense"]) == ("—", "200", "200", "0.10×")
    ppo = line(algo="ppo", method="rigl")
    assert (ppo["params actor"], ppo["params value"], ppo["params critic"]) == ("30", "30", "—")
    matched = line(algo="sac", env="HalfCheetah-v4", method="dense_matched", level=0.9)
    assert (matched["method"], matched["params actor"], matched["params critic"]) == ("Dense (matched)", "100", "400")
    assert (matched["params vs dense"], matched["params with biases"]) == ("0.10×", "600")


def test_tables_name_the_score_and_matched_dense(graesser):
    t = iqm_table(graesser)
    methods = list(t.display["method"])
    assert methods.count("Dense (matched)") == 2 and "dense_matched" in set(t.data["method"])
    notes = " ".join(t.notes)
    assert "last_10_percent" in notes and "here 2 of 21." in notes and "Dense (matched): dense_matched" in notes
    assert "Left out: 12 runs whose networks have different sparsities" in notes
    assert graesser.runs["split"].sum() == 12  # 2 cells × 2 envs × 3 seeds


def test_published_iqm_where_protocol_and_budget_match(store):
    data = load_experiment(GRAESSER_1M, store.uri)
    iqm = Analysis(data, Options(score="last_10_percent")).iqm
    # N = 11 evaluations: the last one, R = slope·1e6 + 10s; dense mean 1005; two runs, no trim
    measured = {"dense": 1005 / 1005, "dense_matched": 805 / 1005, "rigl": 1105 / 1005}
    pub = {"dense": 1.12, "dense_matched": 0.90, "rigl": 1.10}
    for method, value in measured.items():
        r = row(iqm, method=method)
        assert (r.iqm, r.published_iqm) == (pytest.approx(value), pub[method])
    assert Analysis(data, Options(score="last_final_evals")).iqm["published_iqm"].isna().all()
    args = dict(algo="sac", method="rigl", sparsity=0.9, envs=["Hopper-v4"], budget=1_000_000, score="last_10_percent")
    assert published.graesser_iqm(**args, presets={"graesser"}) == 1.10
    assert published.graesser_iqm(**args, presets={"graesser", "sokar"}) is None  # Sokar's SAC setup
    assert published.graesser_iqm(**{**args, "envs": ["Pendulum-v1"]}, presets={"graesser"}) is None
    assert published.graesser_iqm(**{**args, "budget": 500_000}, presets={"graesser"}) is None
