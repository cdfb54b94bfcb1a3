"""Every algorithm × sparse method on sparse kernels equals its masked-dense twin, to float tolerance.

Two agents with one configuration but `sparse_kernels` — dense and sparse — see the same
transitions (the dense agent's actions drive the environment) and make the same updates,
topology updates included (RigL's dense-gradient steps, pruning's shrinking masks, DS's top-k
targets); afterwards their masks are equal and their weights, targets and Adam moments agree.
"""

from __future__ import annotations

import pytest
import torch

from dsrl_platform import config
from dsrl_platform.agents.protocol import Spaces, Transition
from dsrl_platform.agents.registry import ALGORITHMS
from dsrl_platform.envs import make_env
from dsrl_platform.methods import METHODS

ENVS = {"td3": "Pendulum-v1", "sac": "Pendulum-v1", "dqn": "CartPole-v1", "ppo": "Pendulum-v1"}
SPARSE_METHODS = [m for m, entry in METHODS.items() if entry.sparse]
STEPS = 300


def options(algo: str, method: str, kernels: str, sparsity: float = 0.8) -> dict:
    o = dict(algo=algo, method=method, env=ENVS[algo], steps=STEPS, hidden_sizes=[32, 32], sparsity=sparsity,
             sparse_kernels=kernels, device="cpu")
    if algo == "ppo":  # 5 rollouts of 64 steps, 8 gradient steps each; the clip would see the dense gradient
        o.update(rollout_steps=64, minibatch_size=16, epochs=2, max_grad_norm=None)
        interval, start, end = 8, 64, 256
    else:
        o.update(warmup_steps=100, batch_size=32)
        interval, start, end = 50, 120, 260
    if METHODS[method].dynamic:
        o.update(topology_interval=interval, topology_end=end)
    if METHODS[method].starts_dense:
        o.update(prune_interval=interval // 2 * 2, prune_start=start, prune_end=end)
    return o


def lockstep(algo: str, method: str, kernels=("dense", "sparse"), sparsity: float = 0.8):
    agents = []
    for k in kernels:
        cfg = config.build(**options(algo, method, k, sparsity)).resolve()
        env = make_env(cfg.env)
        agents.append(ALGORITHMS[algo].agent(cfg, Spaces.of(env)))
    obs, _ = env.reset(seed=0)
    for step in range(1, STEPS + 1):
        action = agents[0].act(obs, explore=True)
        agents[1].act(obs, explore=True)  # same random streams; its action is not taken
        next_obs, reward, terminated, truncated, _ = env.step(action)
        for agent in agents:
            agent.observe(Transition(obs, action, float(reward), next_obs, terminated, truncated))
            for _ in range(agent.updates_due(step)):
                agent.update()
        obs = env.reset()[0] if terminated or truncated else next_obs
    return agents


def tensors(state):
    """Every tensor of a (nested) state dict, in order."""
    if torch.is_tensor(state):
        yield state
    elif isinstance(state, dict):
        for v in state.values():
            yield from tensors(v)
    elif isinstance(state, (list, tuple)):
        for v in state:
            yield from tensors(v)


@pytest.mark.parametrize("algo", list(ALGORITHMS))
@pytest.mark.parametrize("method", SPARSE_METHODS)
def test_sparse_kernels_train_as_the_masked_dense_path_does(algo, method):
    dense, sparse = lockstep(algo, method)
    for name, net in sparse.networks.items():
        twin = dense.networks[name]
        assert net.kernels is not None and twin.kernels is None
        assert set(net.kernel_paths().values()) == {"native"}, net.kernel_paths()
        assert net.grad_steps == twin.grad_steps > 0
        assert net.topology_updates == twin.topology_updates
        if METHODS[method].dynamic or METHODS[method].starts_dense:
            assert net.topology_updates > 0 and net.kernels.rebuilds > 1
        for m, n in zip(net.topology.state_dict()["masks"], twin.topology.state_dict()["masks"]):
            assert torch.equal(m, n), f"{name}: the masks differ"
        for layer in net.topology.layers:  # absent weights are exactly zero, as on the dense path
            i = net.topology.layers.index(layer)
            assert torch.all(layer.weight[net.topology.mask(i) == 0] == 0)
    # weights, targets, optimizer moments, masks, random streams: every tensor of the agents' state
    for a, b in zip(tensors(sparse.state_dict()), tensors(dense.state_dict()), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("algo", ["td3", "dqn"])
def test_auto_leaves_networks_it_keeps_dense_on_the_masked_path_bit_for_bit(algo):
    # at density 1 no layer may go sparse (calibrate.MAX_DENSITY), so auto measures nothing
    dense, auto = lockstep(algo, "static", kernels=("dense", "auto"), sparsity=0.0)
    assert all(set(net.kernel_paths().values()) == {"dense"} for net in auto.networks.values())
    for a, b in zip(tensors(auto.state_dict()), tensors(dense.state_dict()), strict=True):
        assert torch.equal(a, b)
