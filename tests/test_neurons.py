"""Dormant neurons, feature rank and ReDo on networks whose dead units are known."""

from __future__ import annotations

import pytest
import torch

from dsrl_platform.agents.networks import MLP, ConvQNetwork, TwinCritic, glorot_uniform, torch_default
from dsrl_platform.neurons import (ReDo, activations, dormant, effective_rank, neuron_stats, recording, recycle_,
                                   unit_scores)
from dsrl_platform.sparse.network import SparseNetwork
from dsrl_platform.sparse.topology import Topology
from dsrl_platform.sparse.updaters import DenseUpdater, SparseTraining


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def kill(layer: torch.nn.Linear, units: list[int]) -> None:
    """ReLU units that never fire: zero incoming weights, negative bias."""
    with torch.no_grad():
        layer.weight[units] = 0.0
        layer.bias[units] = -1.0


def test_scores_are_mean_abs_activation_over_the_layer_average():
    a = torch.tensor([[0.0, 1.0, 2.0, -3.0], [0.0, 3.0, 2.0, 1.0]])  # means |a|: 0, 2, 2, 2
    assert unit_scores(a).tolist() == pytest.approx([0.0, 4 / 3, 4 / 3, 4 / 3])
    assert dormant(a, 0.0).tolist() == [True, False, False, False]
    conv = torch.zeros(2, 3, 2, 2)  # a channel is one unit: mean over batch and positions
    conv[:, 1] = 1.0
    conv[0, 2, 0, 0] = 4.0  # channel 2: mean 0.5
    assert unit_scores(conv).tolist() == pytest.approx([0.0, 2.0, 1.0])
    assert dormant(conv, 0.99).tolist() == [True, False, False] and dormant(conv, 1.0).tolist() == [True, False, True]


def test_dormant_fractions_of_a_network_with_known_dead_units():
    net = MLP(5, [8, 6], 2, gen(), "q")
    kill(net.layers[0], [1, 4, 7])
    kill(net.layers[1], [0])
    stats = neuron_stats(net, (torch.randn(64, 5, generator=gen(1)),), tau=0.0)
    assert stats.layers == {"q.0": 3 / 8, "q.1": 1 / 6}
    assert stats.fraction == 4 / 14
    assert 1 <= stats.feature_rank <= 5  # 6 penultimate units, one of them dead
    # a higher τ also counts the weakly active units, never fewer
    assert neuron_stats(net, (torch.randn(64, 5, generator=gen(1)),), tau=0.5).fraction >= 4 / 14


def test_effective_rank_by_hand():
    """srank_δ (Kumar et al. 2021): singular values 10, 5, 1, 0.04: the first three carry
    16/16.04 = 99.75% ≥ 99% of the sum, the first two 15/16.04 = 93.5%."""
    u, _ = torch.linalg.qr(torch.randn(32, 4, generator=gen(2), dtype=torch.float64))
    features = u @ torch.diag(torch.tensor([10.0, 5.0, 1.0, 0.04], dtype=torch.float64))
    assert effective_rank(features) == 3
    assert effective_rank(features, delta=0.1) == 2
    assert effective_rank(torch.zeros(8, 3)) == 0


def test_recording_taps_every_hidden_layer_and_changes_nothing():
    critic = TwinCritic(7, [6, 5], gen())
    obs, act = torch.randn(4, 5, generator=gen(3)), torch.randn(4, 2, generator=gen(4))
    plain = critic(obs, act)
    acts = activations(critic, (obs, act))
    assert set(acts) == {u.name for u in critic.hidden_units()} == {"critic.q1.0", "critic.q1.1", "critic.q2.0",
                                                                     "critic.q2.1"}
    assert acts["critic.q2.1"].shape == (4, 5)
    assert torch.equal(critic(obs, act), plain) and critic._taps is None
    with recording(critic) as inside:
        critic.q1(obs, act)  # TD3's actor loss path records nothing (only forward taps)
    assert inside == {}


def _adam_after_one_step(module: torch.nn.Module, loss) -> torch.optim.Adam:
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)
    loss().backward()
    opt.step()
    return opt


def test_redo_resets_exactly_the_dormant_units_and_their_optimizer_state():
    net = MLP(5, [8, 6], 2, gen(), "q", glorot_uniform)
    x = torch.randn(64, 5, generator=gen(1))
    opt = _adam_after_one_step(net, lambda: net(x).pow(2).sum())
    kill(net.layers[0], [1, 4])
    before = {k: v.clone() for k, v in net.state_dict().items()}
    moments = {k: {s: v.clone() for s, v in opt.state[p].items()} for k, p in net.named_parameters()}
    dense = SparseNetwork("q", net, net.weight_layers(), net.biases(), None,
                          SparseTraining(None, DenseUpdater(None, generator=gen()), opt), 64)
    redo = ReDo({"q": dense}, every=10, tau=0.0, generator=gen(7))
    assert redo.maybe_recycle(9, {"q": (x,)}) == 0 and redo.maybe_recycle(10, {"q": (x,)}) == 2

    fresh_w, fresh_b = torch.empty(8, 5), torch.empty(8)
    glorot_uniform(fresh_w, fresh_b, gen(7))  # the draw ReDo made, from its generator
    w0, b0, w1 = net.layers[0].weight, net.layers[0].bias, net.layers[1].weight
    dead, alive = [1, 4], [0, 2, 3, 5, 6, 7]
    assert torch.equal(w0[dead], fresh_w[dead]) and torch.equal(w0[alive], before["layers.0.weight"][alive])
    assert torch.all(b0[dead] == 0) and torch.equal(b0[alive], before["layers.0.bias"][alive])
    assert torch.all(w1[:, dead] == 0) and torch.equal(w1[:, alive], before["layers.1.weight"][:, alive])
    for key in ("layers.1.bias", "layers.2.weight", "layers.2.bias"):  # other layers untouched
        assert torch.equal(net.state_dict()[key], before[key])
    for name, select_dead, select_alive in (("layers.0.weight", (dead,), (alive,)), ("layers.0.bias", (dead,), (alive,)),
                                            ("layers.1.weight", (slice(None), dead), (slice(None), alive))):
        state = opt.state[dict(net.named_parameters())[name]]
        for s in ("exp_avg", "exp_avg_sq"):
            assert torch.all(state[s][select_dead] == 0), (name, s)
            assert torch.equal(state[s][select_alive], moments[name][s][select_alive]), (name, s)
        assert state["step"] == moments[name]["step"]
    assert redo.recycled == 2 and not dormant(activations(net, (x,))["q.0"], 0.0)[dead].any()


def test_a_recycled_sparse_unit_keeps_its_layers_mask_and_budget():
    net = MLP(6, [10], 3, gen(), "actor")
    layers = net.weight_layers()
    topology = Topology([w.layer for w in layers], [0.5, 0.5], gen(1))
    kill(net.layers[0], [2, 3])
    masks = [topology.mask(i).clone() for i in range(2)]
    nnz = topology.nnz()
    opt = torch.optim.Adam(net.parameters())
    sparse = SparseNetwork("actor", net, layers, net.biases(), topology,
                           SparseTraining(topology, DenseUpdater(topology, generator=gen()), opt), 16)
    x = torch.randn(32, 6, generator=gen(2))
    assert ReDo({"actor": sparse}, 1, 0.0, gen(3)).maybe_recycle(1, {"actor": (x,)}) >= 2
    assert topology.nnz() == nnz and all(torch.equal(topology.mask(i), m) for i, m in enumerate(masks))
    w = net.layers[0].weight
    assert torch.all(w[masks[0] == 0] == 0)  # only masked-in incoming connections were drawn
    assert torch.count_nonzero(w[[2, 3]]) == int(masks[0][[2, 3]].sum())  # … and all of them


def test_twin_critic_heads_and_conv_channels_are_recycled_by_their_own_index():
    critic = TwinCritic(4, [5, 5], gen(), init=torch_default)
    with torch.no_grad():  # unit 3 of Q2's first layer never fires
        critic.w_in[5 + 3] = 0.0
        critic.b_in[5 + 3] = -1.0
    units = {u.name: u for u in critic.hidden_units()}
    before = [p.clone() for p in critic.parameters()]
    acts = activations(critic, (torch.randn(16, 3, generator=gen(1)), torch.randn(16, 1, generator=gen(2))))
    for name in ("critic.q1.0", "critic.q2.0"):
        recycle_(units[name], dormant(acts[name], 0.0), None, gen(5))
    assert torch.equal(critic.w_in[:5], before[0][:5])  # Q1 untouched
    assert torch.all(critic.ws[0][1][:, 3] == 0) and torch.equal(critic.ws[0][0], before[2][0])
    assert critic.b_in[8] == 0 and not torch.equal(critic.w_in[8], before[0][8])

    conv = ConvQNetwork((2, 6, 6), [(4, 3, 1)], [8], 3, gen(), "q")  # 4 channels of 4×4 → 64 inputs
    with torch.no_grad():
        conv.convs[0].weight[1] = 0.0
        conv.convs[0].bias[1] = -1.0
    (channels, *_) = conv.hidden_units()
    assert channels.block == 16 and channels.count == 4
    acts = activations(conv, (torch.randn(8, 2, 6, 6, generator=gen(1)),))
    recycle_(channels, dormant(acts["q.conv0"], 0.0), None, gen(6))
    fc = conv.mlp.layers[0].weight
    assert torch.all(fc[:, 16:32] == 0) and torch.count_nonzero(fc[:, :16]) == fc[:, :16].numel()
    assert float(conv.convs[0].bias[1].detach()) == 0.0
