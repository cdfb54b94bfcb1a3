"""The frame-sharing replay rebuilds exactly the stacks the agent saw (gymnasium's padding)."""

from __future__ import annotations

import numpy as np
import torch

from dsrl_platform.buffers.frames import FrameReplay

STACK = 4


def episodes(lengths, truncated_last=()):
    """Transitions of episodes whose frames are numbered 1, 2, … (a 2×2 frame filled with it)."""
    frame_id = 0
    for e, length in enumerate(lengths):
        frame_id += 1
        stack = [frame_id] * STACK  # reset: the first frame repeated (padding_type="reset")
        for t in range(length):
            frame_id += 1
            nxt = stack[1:] + [frame_id]
            end = t == length - 1
            yield (np.array(stack), t, float(frame_id), np.array(nxt),
                   end and e not in truncated_last, end and e in truncated_last)
            stack = nxt


def as_frames(ids: np.ndarray) -> np.ndarray:
    return np.broadcast_to(ids[:, None, None], (len(ids), 2, 2)).astype(np.uint8)


def test_sampled_stacks_are_the_observations_stored_whole():
    capacity = 40
    frames = FrameReplay((STACK, 2, 2), capacity)
    transitions = list(episodes([7, 2, 12, 30, 5], truncated_last={1, 3}))  # wraps around the ring
    for obs, action, reward, nxt, term, trunc in transitions:
        frames.add(as_frames(obs), action, reward, as_frames(nxt), term, trunc)
    # every sampleable transition: its stacks equal the stacks the agent saw
    by_reward = {r: (o, a, n, term) for o, a, r, n, term, _ in transitions}
    rng = np.random.default_rng(0)
    obs, act, rew, nxt, not_done = frames.sample(500, rng, torch.device("cpu"))
    assert obs.dtype == torch.uint8 and obs.shape == (500, STACK, 2, 2)
    for i in range(500):
        o, a, n, term = by_reward[float(rew[i, 0])]
        assert torch.equal(obs[i, :, 0, 0], torch.as_tensor(o, dtype=torch.uint8))
        assert torch.equal(nxt[i, :, 0, 0], torch.as_tensor(n, dtype=torch.uint8))  # truncated: the real last obs
        assert int(act[i]) == a and float(not_done[i, 0]) == (0.0 if term else 1.0)
    # memory: one frame per transition (plus one per episode end), not 2 × STACK
    assert frames.frames.nbytes == capacity * 2 * 2


def test_state_round_trip_continues_identically():
    a, b = FrameReplay((STACK, 2, 2), 64), FrameReplay((STACK, 2, 2), 64)
    items = list(episodes([9, 11]))
    for obs, action, reward, nxt, term, trunc in items[:15]:
        a.add(as_frames(obs), action, reward, as_frames(nxt), term, trunc)
    b.load_state_dict(a.state_dict())
    for obs, action, reward, nxt, term, trunc in items[15:]:
        for buf in (a, b):
            buf.add(as_frames(obs), action, reward, as_frames(nxt), term, trunc)
    sa = a.sample(32, np.random.default_rng(1), torch.device("cpu"))
    sb = b.sample(32, np.random.default_rng(1), torch.device("cpu"))
    assert all(torch.equal(x, y) for x, y in zip(sa, sb))
