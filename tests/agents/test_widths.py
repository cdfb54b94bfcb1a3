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


@pytest.mark.parametrize("options,expected", [
    # Graesser's CartPole DQN at width 2: 4 → 1024 → 1024 → 2
    (dict(algo="dqn", env="CartPole-v1", width=2), {"q": 4 * 1024 + 1024 * 1024 + 1024 * 2}),
    # TF-Agents' int(max(1, n·w)): 512·0.3 = 153.6 → 153
    (dict(algo="dqn", env="CartPole-v1", width=0.3), {"q": 4 * 153 + 153 * 153 + 153 * 2}),
    # MinAtar's conv net at width 2, Dopamine's ceil(n·w): 32 3×3 channels over 4 planes, 8×8 left,
    # 2048 → 256 → 3 actions
    (dict(algo="dqn", env="MinAtar/Breakout-v1", width=2), {"q": 32 * 4 * 9 + 32 * 8 * 8 * 256 + 256 * 3}),
    # TD3 on Pendulum (3-D observation, 1-D action), per-network widths of 256-256
    (dict(algo="td3", env="Pendulum-v1", actor_width=0.5, critic_width=2),
     {"actor": 3 * 128 + 128 * 128 + 128, "critic": 2 * (4 * 512 + 512 * 512 + 512)}),
    (dict(algo="sac", env="Pendulum-v1", width=1.5),  # the actor outputs mean and log-std
     {"actor": 3 * 384 + 384 * 384 + 384 * 2, "critic": 2 * (4 * 384 + 384 * 384 + 384)}),
    (dict(algo="ppo", env="Pendulum-v1", width=4), {"actor": 3 * 256 + 256 * 256 + 256, "value": 3 * 256 + 256 * 256 + 256}),
])
def test_width_scaled_parameter_counts_by_hand(options, expected):
    counts = Runner(config.build(**options, method="dense")).param_counts()
    assert {n: counts[n] for n in expected} == expected
    assert counts["total"] == sum(expected.values())


def test_a_pruned_wide_network_counts_its_nonzeros_at_each_width():
    """Scaling grids: the parameters of width × sparsity points (DQN prune to 90%, ERK over every layer)."""
    totals = {}
    for width in (1, 2, 4):
        runner = Runner(config.build(algo="dqn", method="prune", env="CartPole-v1", width=width, sparsity=0.9))
        full = sum(w.layer.weight.numel() for w in runner.networks["q"].layers)
        final = sum(round((1 - s) * layer.weight.numel()) for s, layer in
                    zip(runner.networks["q"].training.updater.final_sparsities, runner.networks["q"].topology.layers))
        assert runner.param_counts()["total"] == full  # pruning starts dense
        assert final == pytest.approx(0.1 * full, rel=1e-4)
        totals[width] = final
    assert totals[2] == pytest.approx(4 * totals[1], rel=0.02) and totals[4] == pytest.approx(4 * totals[2], rel=0.01)
