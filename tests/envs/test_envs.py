"""Environment families: ids checked cheaply, the usual Atari preprocessing, MinAtar channels-first."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from dsrl_platform.envs import EpisodeReplay, check_env_id, env_family_kind, env_spaces, make_env


@pytest.mark.parametrize("env_id,message", [
    ("Hopper-v3", "needs mujoco-py"),
    ("NoSuchEnv-v0", "unknown environment"),
    ("LunarLanderContinuous-v3", "cannot be made here: Box2D is not installed"),
    ("MinAtar/Pong-v1", "unknown environment"),
])
def test_bad_ids_are_one_line_naming_the_field(env_id, message):
    with pytest.raises(ValueError, match=f"^env: .*{message}"):
        check_env_id(env_id)


def test_families_and_their_spaces():
    assert env_family_kind("CartPole-v1") == "gym" and env_family_kind("HalfCheetah-v4") == "gym"
    assert env_family_kind("MinAtar/Breakout-v1") == "minatar" and env_family_kind("ALE/Pong-v5") == "atari"
    minatar = env_spaces("MinAtar/Breakout-v1")
    assert (minatar.obs_shape, minatar.obs_dtype, minatar.discrete) == ((4, 10, 10), "bool", True)
    atari = env_spaces("ALE/Breakout-v5")
    assert (atari.obs_shape, atari.obs_dtype, atari.action_dim) == ((4, 84, 84), "uint8", 4)


def test_atari_has_the_usual_dqn_preprocessing():
    env = make_env("ALE/Pong-v5")
    ale = env.unwrapped
    assert ale._frameskip == 1 and ale.ale.getFloat("repeat_action_probability") == 0.25  # sticky, no own skip
    pre = env.env
    assert isinstance(pre, gym.wrappers.AtariPreprocessing)
    assert (pre.frame_skip, pre.noop_max, pre.terminal_on_life_loss) == (4, 30, False)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    assert all(np.array_equal(obs[0], frame) for frame in obs)  # reset: the first frame, repeated


@pytest.mark.parametrize("env_id", ["MinAtar/Breakout-v1", "ALE/Pong-v5", "CartPole-v1"])
def test_an_episode_in_progress_is_replayed_exactly(env_id):
    """Episodes after the first are reset with seeds of their own where the randomness lives
    outside np_random (MinAtar's RandomState, ALE's sticky actions), so a replay is exact."""
    from dsrl_platform.envs import reseeds_each_episode

    rng = np.random.default_rng(0)
    env = make_env(env_id)
    episode = EpisodeReplay(reseed=reseeds_each_episode(env_id))
    episode.reset(env, seed=3)
    for _ in range(2):  # finish two episodes (or run long enough), then stop mid-episode
        done = False
        for _ in range(400):
            action = int(rng.integers(env.action_space.n))
            episode.record(action)
            obs, _, term, trunc, _ = env.step(action)
            if term or trunc:
                obs = episode.reset(env)
                break
    for _ in range(7):
        action = int(rng.integers(env.action_space.n))
        episode.record(action)
        obs, *_ = env.step(action)
    state = episode.state_dict()
    restored_env = make_env(env_id)
    restored = EpisodeReplay(reseed=reseeds_each_episode(env_id)).restore(restored_env, state)
    assert np.array_equal(restored, obs)
    tail = [int(rng.integers(env.action_space.n)) for _ in range(20)]
    assert all(np.array_equal(env.step(a)[0], restored_env.step(a)[0]) for a in tail)
