"""GAE and TD(λ) returns by hand, with a termination and a time-limit truncation."""

from __future__ import annotations

import numpy as np
import pytest

from dsrl_platform.buffers.rollout import Rollout, RunningMeanStd


def test_gae_by_hand():
    ro = Rollout(4, (1,), 1)
    # values 1, 2, 3, 4; rewards 1 each; step 1 terminates, step 2 is truncated (V(final) = 10)
    for t, (term, trunc, nv) in enumerate([(False, False, 0), (True, False, 0), (False, True, 10), (False, False, 0)]):
        ro.add([0.0], [0.0], 0.0, float(t + 1), 1.0, term, trunc, nv)
    g, lam = 0.5, 0.5
    adv, ret = ro.advantages(last_value=8.0, gamma=g, lam=lam)
    d3 = 1 + g * 8 - 4  # the rollout's last step bootstraps from the next observation
    d2 = 1 + g * 10 - 3  # truncated: the final observation's value, no recursion past it
    d1 = 1 + 0 - 2  # terminated: nothing after
    d0 = 1 + g * 2 - 1
    expected = [d0 + g * lam * d1, d1, d2, d3]
    assert adv == pytest.approx(expected)
    assert ret == pytest.approx(np.array(expected) + [1, 2, 3, 4])


def test_running_mean_std_matches_numpy():
    data = np.random.default_rng(0).normal(3, 2, size=(500, 2))
    stats = RunningMeanStd((2,))
    for chunk in np.array_split(data, 7):
        stats.update(chunk)
    assert stats.mean == pytest.approx(data.mean(0), rel=1e-6) and stats.var == pytest.approx(data.var(0), rel=1e-3)
