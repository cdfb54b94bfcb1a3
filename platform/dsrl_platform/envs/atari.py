"""Atari (ale-py) with the usual DQN preprocessing, and MinAtar's observations channels-first.

Atari, as in Mnih et al. 2015 / Machado et al. 2018 (Dopamine's defaults otherwise): ALE v5
with sticky actions p = 0.25 and no frame skip of its own, then gymnasium's AtariPreprocessing —
4 frames per step with a max-pool over the last two, 84×84 greyscale, up to 30 no-op starts,
no terminal on life loss — and the last 4 frames stacked. Observations stay uint8, (4, 84, 84);
the network scales them by 1/255, and the replay buffer stores each frame once (buffers/frames.py).
Rewards are left as they are: clipping to ±1 is the agent's choice (DQN's `reward_clip`).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation, TransformObservation

STICKY_ACTIONS = 0.25
FRAME_SKIP, FRAME_STACK, SCREEN, NOOP_MAX = 4, 4, 84, 30


def make_atari(env_id: str) -> gym.Env:
    env = gym.make(env_id, frameskip=1, repeat_action_probability=STICKY_ACTIONS)
    env = AtariPreprocessing(env, noop_max=NOOP_MAX, frame_skip=FRAME_SKIP, screen_size=SCREEN,
                             terminal_on_life_loss=False, grayscale_obs=True, scale_obs=False)
    return FrameStackObservation(env, FRAME_STACK)


def channels_first(env: gym.Env) -> gym.Env:
    """MinAtar's (10, 10, C) bool grids as (C, 10, 10), the layout of torch's convolutions."""
    space = env.observation_space
    shape = (space.shape[2], space.shape[0], space.shape[1])
    new_space = gym.spaces.Box(0, 1, shape, dtype=bool)
    return TransformObservation(env, lambda obs: np.ascontiguousarray(np.moveaxis(obs, 2, 0)), new_space)
