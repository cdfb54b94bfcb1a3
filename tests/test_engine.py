"""The training engine: agents × methods, accounting by hand, determinism, exact resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dsrl_platform.config import RunConfig
from dsrl_platform.trainer import MemorySink, Trainer
from dsrl_platform import names

METHODS = ["dense", "static", "ds", "set", "rigl", "prune"]


def tiny(algo: str, method: str, **extra) -> RunConfig:
    """Pendulum, small nets, topology updates every 50 gradient steps: seconds per run."""
    options = dict(algo=algo, method=method, env="Pendulum-v1", steps=900, warmup_steps=300,
                   eval_every=300, eval_episodes=1, hidden_sizes=[32, 32], batch_size=32,
                   topology_interval=50, prune_interval=50, prune_start=400, prune_end=800)
    if method in ("ds", "set", "rigl"):
        options["topology_end"] = 850
    options.update(extra)
    return RunConfig(**options)


def online_nnz(trainer: Trainer) -> dict[str, int]:
    return trainer.agent.nonzero_weights()


@pytest.mark.parametrize("algo", ["td3", "sac"])
@pytest.mark.parametrize("method", METHODS)
def test_every_agent_and_method_trains_and_keeps_its_sparsity(algo, method):
    trainer = Trainer(tiny(algo, method))
    before = online_nnz(trainer)
    evaluations = list(trainer.evaluations())
    assert [e.step for e in evaluations] == [0, 300, 600, 900]
    assert all(np.isfinite(e.return_mean) for e in evaluations)
    after = online_nnz(trainer)
    agent = trainer.agent
    for sparsity in (agent.actor_sparsity, agent.critic_sparsity):
        topology = sparsity.topology
        if topology is None:
            continue
        for i, layer in enumerate(topology.layers):  # absent weights are exactly zero
            assert torch.all(layer.weight[topology.mask(i) == 0] == 0), layer.name
    summary = trainer.summary()
    if method == "dense":
        assert after == before and summary["sparsity"] == 0.0
        assert summary["train_flops_relative"] == pytest.approx(1.0)
    elif method == "prune":  # starts dense, ends at the target
        assert sum(before.values()) > sum(after.values())
        assert summary["sparsity"] == pytest.approx(0.9, abs=0.01)
        assert trainer.param_counts()["sparsity"] == pytest.approx(0.9, abs=0.01)
    else:  # sparse from the start: the count per layer never changes
        assert after == before
        assert 0 < summary["train_flops_relative"] < 1
    if method in ("ds", "set", "rigl"):
        assert agent.critic_sparsity.training.updates_done > 0
        assert agent.actor_sparsity.training.updates_done > 0


def test_sparse_targets_stay_as_sparse_as_the_online_networks():
    trainer = Trainer(tiny("td3", "ds"))
    list(trainer.evaluations())
    agent = trainer.agent
    assert agent.cfg.sparse_targets == "topk"
    online = agent.critic_sparsity.topology
    targets = {w.layer.name: w.layer for w in agent.critic_target.weight_layers()}
    for layer, k in zip(online.layers, online.nnz()):
        assert int(torch.count_nonzero(targets[layer.name].weight)) <= k


def test_mask_target_rule_gives_targets_the_online_support():
    trainer = Trainer(tiny("td3", "ds", sparse_targets="mask"))
    list(trainer.evaluations())
    agent = trainer.agent
    online = agent.critic_sparsity.topology
    targets = {w.layer.name: w.layer for w in agent.critic_target.weight_layers()}
    for i, layer in enumerate(online.layers):
        assert torch.all(targets[layer.name].weight[online.mask(i) == 0] == 0)


def test_halfcheetah_counts_and_flops_match_a_hand_count():
    dense = Trainer(RunConfig(algo="td3", method="dense", env="HalfCheetah-v4"))
    # actor 17→256→256→6, each critic 23→256→256→1 (weights only)
    actor, critic = 17 * 256 + 256 * 256 + 256 * 6, 2 * (23 * 256 + 256 * 256 + 256)
    counts = dense.param_counts()
    assert (counts["actor"], counts["critic"], counts["total"]) == (actor, critic, actor + critic)
    assert counts["total_with_biases"] == actor + critic + (256 + 256 + 6) + 2 * (256 + 256 + 1)
    # forward FLOPs per sample: 2 per weight + 1 per bias; training = 3× forward on the batch;
    # critic every step, actor every policy_delay = 2 steps (Sokar: 1.07e14 for 1e6 steps)
    actor_fwd = 2 * actor + (256 + 256 + 6)
    critic_fwd = 2 * critic + 2 * (256 + 256 + 1)
    per_step = 3 * 100 * critic_fwd + 3 * 100 * actor_fwd / 2
    assert dense.dense_flops_per_step == per_step == 107_828_700
    assert dense.summary()["flops_per_action"] == actor_fwd

    ds = Trainer(RunConfig(algo="td3", method="ds", env="HalfCheetah-v4"))
    # Sokar's λ1 = 7, λ2 = 64 on HalfCheetah: ~51% sparsity, hidden layers only
    counts = ds.param_counts()
    assert counts["total"] == 106_169
    assert counts["sparsity"] == pytest.approx(1 - 106_169 / 214_784)
    layers = ds.layer_sparsity()
    assert layers["actor.2"] == 0.0 and layers["critic.q1.2"] == 0.0  # outputs stay dense
    assert layers["actor.1"] == pytest.approx(0.5)


def test_same_config_and_seed_give_the_same_curve():
    curves = [[(e.step, e.return_mean) for e in Trainer(tiny("sac", "rigl")).evaluations()] for _ in range(2)]
    assert curves[0] == curves[1]
    other = [(e.step, e.return_mean) for e in Trainer(tiny("sac", "rigl", seed=1)).evaluations()]
    assert other != curves[0]


@pytest.mark.parametrize("algo,method", [("td3", "ds"), ("sac", "prune"), ("td3", "rigl")])
def test_resume_from_a_checkpoint_gives_the_numbers_of_an_uninterrupted_run(tmp_path, algo, method):
    # eval_every 350: the checkpoint falls mid-episode (Pendulum episodes last 200 steps)
    config = tiny(algo, method, eval_every=350, steps=1050)
    straight = Trainer(config)
    expected = [(e.step, e.return_mean, e.train_flops) for e in straight.evaluations()]

    first = Trainer(config)
    seen = []
    for evaluation in first.evaluations():
        seen.append((evaluation.step, evaluation.return_mean, evaluation.train_flops))
        if evaluation.step == 700:
            first.save(tmp_path)
            break
    resumed = Trainer(config)
    resumed.load(tmp_path)
    seen += [(e.step, e.return_mean, e.train_flops) for e in resumed.evaluations()]
    assert seen == expected
    for a, b in zip(straight.agent.state_dict()["critic"].values(), resumed.agent.state_dict()["critic"].values()):
        assert torch.equal(a, b)
    assert resumed.summary() == straight.summary()


def test_loading_a_checkpoint_of_another_config_is_refused(tmp_path):
    trainer = Trainer(tiny("td3", "dense"))
    trainer.save(tmp_path)
    with pytest.raises(ValueError, match="different configuration"):
        Trainer(tiny("td3", "dense", seed=3)).load(tmp_path)


def test_metrics_reach_the_sink_with_environment_steps():
    sink = MemorySink()
    trainer = Trainer(tiny("td3", "set"), sink=sink)
    list(trainer.evaluations())
    assert [s for s, _ in sink.series(names.EVAL_RETURN)] == [0, 300, 600, 900]
    flops = [v for _, v in sink.series(names.TRAIN_FLOPS)]
    assert flops[0] == 0 and flops == sorted(flops) and flops[-1] == trainer.train_flops
    assert sink.series(names.TRAIN_EPISODE_RETURN)  # Pendulum episodes end every 200 steps
    assert any(names.layer_sparsity_metric("critic.q1.1") in m for _, m in sink.points)
    assert max(v for _, v in sink.series(names.TOPOLOGY_CHURN)) > 0
    summary = dict(sink.points[-1][1])
    assert summary[names.SUMMARY_PREFIX + names.SUMMARY_FINAL_RETURN] == trainer.summary()["final_return"]


def test_rigl_updates_cost_the_dense_gradient_of_their_step():
    """Evci et al.: an update step's backward is 2·f_S + f_D per sample instead of 3·f_S."""
    trainer = Trainer(tiny("td3", "rigl"))
    list(trainer.evaluations())
    agent = trainer.agent
    extra = 0
    for net in (agent.actor_sparsity, agent.critic_sparsity):
        assert net.training.updates_done > 0
        sparse, dense = agent.forward_flops(net), agent.forward_flops(net, dense=True)
        extra += net.training.updates_done * (dense - sparse) * agent.cfg.batch_size
    assert trainer.train_flops == pytest.approx(trainer.grad_steps * agent.train_flops_per_grad_step() + extra)
