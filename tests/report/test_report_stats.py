"""IQM, stratified bootstrap and probability of improvement against values computed by hand."""

import numpy as np
import pytest

from dsrl_platform.report import stats


def test_iqm_trims_a_quarter_from_each_end():
    # n = 8: drop 2 lowest and 2 highest -> mean(3, 4, 5, 6) = 4.5
    assert stats.iqm(np.array([8, 1, 7, 2, 6, 3, 5, 4.0])) == pytest.approx(4.5)
    # n = 5: int(0.25 * 5) = 1 from each end -> mean(2, 3, 4) = 3; the outlier 100 is gone
    assert stats.iqm(np.array([1, 2, 3, 4, 100.0])) == pytest.approx(3.0)
    # n = 4: 1 from each end -> mean(2, 3) = 2.5
    assert stats.iqm(np.array([1, 2, 3, 10.0])) == pytest.approx(2.5)


def test_iqm_ci_contains_point_and_is_deterministic_with_seed():
    scores = {"a": np.array([0.1, 0.5, 0.9, 1.3, 2.0]), "b": np.array([1.0, 1.1, 1.2, 5.0])}
    pooled = np.concatenate(list(scores.values()))
    est = stats.iqm_ci(scores, reps=2000, seed=7)
    # pooled n = 9: int(2.25) = 2 trimmed per end -> mean(0.9, 1.0, 1.1, 1.2, 1.3) = 1.1
    assert est.value == pytest.approx(1.1) == pytest.approx(stats.iqm(pooled))
    assert est.low <= est.value <= est.high and est.low < est.high
    assert stats.iqm_ci(scores, reps=2000, seed=7) == est
    assert stats.iqm_ci(scores, reps=2000, seed=8) != est


def test_bootstrap_is_stratified_by_task():
    # Resampling within each task keeps two of each task's runs in every replicate, so the
    # pooled mean is 5 in every replicate; pooled (unstratified) resampling would vary.
    est = stats.stratified_bootstrap({"a": np.zeros(2), "b": np.full(2, 10.0)},
                                     lambda m: m.mean(axis=1), reps=2000, seed=0)
    assert (est.value, est.low, est.high) == (5.0, 5.0, 5.0)


def test_probability_of_improvement_known_case():
    # task t1: X = [1, 2, 3], Y = [2, 2, 0]; pairs where x > y count 1, ties 0.5:
    #   x=1: (0, 0, 1) -> 1;  x=2: (.5, .5, 1) -> 2;  x=3: (1, 1, 1) -> 3;  6 / 9 = 2/3
    # task t2: X = [5], Y = [1] -> 1.   Average over tasks: (2/3 + 1) / 2 = 5/6
    x = {"t1": np.array([1, 2, 3.0]), "t2": np.array([5.0])}
    y = {"t1": np.array([2, 2, 0.0]), "t2": np.array([1.0]), "only_y": np.array([0.0])}
    est = stats.probability_of_improvement(x, y, reps=2000, seed=0)
    assert est.value == pytest.approx(5 / 6)
    assert est.low <= est.value <= est.high
    # Bootstrap bounds: t2 is always 1; t1 ranges over [0, 1] -> average within [0.5, 1]
    assert 0.5 <= est.low < est.high <= 1.0
    assert stats.probability_of_improvement(x, y, reps=2000, seed=0) == est
    # Reversed: P(Y > X) = 1 - P(X > Y) per task (ties counted half each way)
    assert stats.probability_of_improvement(y, x, reps=2000).value == pytest.approx(1 / 6)


def test_probability_of_improvement_needs_a_shared_task():
    with pytest.raises(ValueError, match="share no environment"):
        stats.probability_of_improvement({"a": np.ones(2)}, {"b": np.ones(2)})


def test_mean_ci_halfwidth_is_the_t_interval():
    # values 1, 2, 3: s = 1, n = 3, t(0.975, 2) = 4.302653 -> 4.302653 / sqrt(3) = 2.484138
    assert stats.mean_ci_halfwidth(np.array([1, 2, 3.0])) == pytest.approx(2.484138, abs=1e-6)
    assert stats.mean_ci_halfwidth(np.array([4.0])) == 0.0
