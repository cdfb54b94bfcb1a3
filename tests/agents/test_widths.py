"""Width-matched dense baselines: the closest dense parameter count to the sparse one, by hand."""

from __future__ import annotations

import pytest

from dsrl_platform import config
from dsrl_platform.agents.widths import _counts
from dsrl_platform.train.runner import Runner


def test_dqn_cartpole_matched_width_by_hand():
    """Graesser's CartPole DQN, 4 → 512 → 512 → 2. ERK at 90% over every layer makes the first
    and last layers dense (their raw densities exceed 1 twice over: papers.md gives the
    sparsities [0, .911, 0]), leaving 0.1·265216 − 2048 − 1024 = 23449.6 → 23450 weights in the
    middle: 2048 + 23450 + 1024 weights + 1026 biases = 27548 parameters.
    A dense 4 → h → h → 2 has h² + 8h + 2: h = 162 gives 27542, h = 163 gives 27875."""
    cfg = config.build(algo="dqn", method="dense_matched", env="CartPole-v1", sparsity=0.9).resolve()
    assert cfg.hidden_for("q") == [162, 162]
    counts, _ = _counts(cfg, {})
    assert counts["q"] == 162**2 + 8 * 162 + 2 == 27542
    runner = Runner(cfg)
    assert runner.param_counts()["total_with_biases"] == 27542
    assert runner.sparsity == 0.9 and runner.param_counts()["sparsity"] == 0.0  # dense, tagged at 90%


def test_each_network_is_matched_at_its_own_sparsity():
    cfg = config.build(algo="sac", method="dense_matched", env="HalfCheetah-v4",
                       actor_sparsity=0.5, critic_sparsity=0.95).resolve()
    assert cfg.actor_width > cfg.critic_width
    with pytest.raises(ValueError, match="actor_width: dense_matched solves its widths"):
        config.build(algo="sac", method="dense_matched", actor_width=0.5)
    with pytest.raises(ValueError, match="sparsity: the dense method takes no sparsity"):
        config.build(algo="sac", method="dense", sparsity=0.5)
