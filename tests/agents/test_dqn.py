"""DQN specifics: ε schedule, Keras-style L2, frame-sharing replay on Atari, a MinAtar smoke run."""

from __future__ import annotations

import numpy as np
import pytest

from dsrl_platform import config
from dsrl_platform.buffers.frames import FrameReplay
from dsrl_platform.envs import make_env
from dsrl_platform.train.runner import Runner


def test_epsilon_decays_linearly_after_the_warm_up():
    cfg = config.build(algo="dqn", env="MinAtar/Breakout-v1", warmup_steps=100, epsilon_decay_steps=1000,
                       buffer_size=1000, steps=2000)
    agent = Runner(cfg).agent
    assert (agent.cfg.epsilon_start, agent.cfg.epsilon_end) == (1.0, 0.1)
    for steps, expected in ((0, 1.0), (100, 1.0), (600, 0.55), (1100, 0.1), (5000, 0.1)):
        agent.env_steps = steps
        assert agent.epsilon() == pytest.approx(expected)


def test_l2_acts_on_the_hidden_kernels_only():
    """TF-Agents' DQN: Keras L2 wd·Σw² on hidden kernels: Adam's coupled decay 2·wd there, none on
    the head or the biases."""
    agent = Runner(config.build(algo="dqn", env="CartPole-v1", hidden_sizes=[16, 16])).agent
    decayed, rest = agent.opt.param_groups
    assert decayed["weight_decay"] == 2 * 1e-6 and rest["weight_decay"] == 0.0
    q = agent.q.layers
    assert {id(p) for p in decayed["params"]} == {id(q[0].weight), id(q[1].weight)}
    assert q[2].bias.detach().eq(-0.2).all()  # TF-Agents' Q head bias


def test_atari_runs_on_uint8_frames_stored_once():
    cfg = config.build(algo="dqn", method="rigl", env="ALE/Breakout-v5", steps=400, warmup_steps=200,
                       buffer_size=400, batch_size=8, hidden_sizes=[32], eval_every=400, eval_episodes=1,
                       topology_interval=10, topology_end=400, train_every=4)
    runner = Runner(cfg)
    assert isinstance(runner.agent.replay, FrameReplay)
    evaluations = list(runner.evaluations())
    assert [e.step for e in evaluations] == [0, 400]
    assert runner.networks["q"].topology_updates > 0 and runner.networks["q"].grad_steps == 50
    # 100k transitions of 84×84 frames: 706 MB, where whole observation pairs would take 5.6 GB
    assert FrameReplay((4, 84, 84), 100_000).frames.nbytes == 100_000 * 84 * 84


@pytest.mark.slow
def test_dqn_on_minatar_breakout_improves_over_random():
    """A 6000-step smoke run (≈ 30 s): the greedy policy beats a uniformly random one clearly."""
    env, rng, returns = make_env("MinAtar/Breakout-v1"), np.random.default_rng(0), []
    env.reset(seed=5)
    for _ in range(20):
        done, total = False, 0.0
        while not done:
            _, reward, terminated, truncated, _ = env.step(int(rng.integers(3)))
            total, done = total + reward, terminated or truncated
        returns.append(total)
        env.reset()
    random_return = float(np.mean(returns))
    cfg = config.build(algo="dqn", env="MinAtar/Breakout-v1", steps=6000, warmup_steps=1000, epsilon_decay_steps=3000,
                       eval_every=3000, eval_episodes=10, final_evals=1, target_update_every=250, buffer_size=6000,
                       seed=0)
    final = [e.return_mean for e in Runner(cfg).evaluations()][-1]
    assert final > max(2 * random_return, 1.0), (final, random_return)
