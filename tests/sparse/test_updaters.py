import copy
import math

import pytest
import torch

from dsrl_platform.sparse import (UPDATERS, DenseUpdater, GradualPruningUpdater, RigLUpdater,
                                  SETUpdater, SparseLayer, SparseTraining, StaticUpdater, Topology)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def layer_with(weights, active, seed=0):
    """One (4, 5) layer with the given flat weights and exactly the given active positions."""
    p = torch.nn.Parameter(torch.tensor(weights, dtype=torch.float32).reshape(4, 5))
    topo = Topology([SparseLayer("l", p)], [1.0], gen(seed))
    mask = torch.zeros(20, dtype=torch.bool)
    mask[list(active)] = True
    topo.load_state_dict({"names": ["l"], "masks": [mask.reshape(4, 5)]})
    return p, topo


# 12 active positions (0..11), 8 empty (12..19): 6 positive and 6 negative weights
W = [0.9, -0.8, 0.05, -0.04, 0.3, -0.02, 0.01, -0.5, 0.2, -0.6, 0.07, -0.03] + [0.0] * 8


def changes(topo, before):
    after = topo.mask(0).reshape(-1) > 0
    dropped = set((before & ~after).nonzero().squeeze(1).tolist())
    grown = set((after & ~before).nonzero().squeeze(1).tolist())
    return dropped, grown


@pytest.mark.parametrize("rule, expected", [
    # η = 0.25 of 12 connections: c = 3
    ("magnitude", {6, 5, 11}),   # the 3 smallest |w|: 0.01, -0.02, -0.03
    ("paper", {6, 2, 5}),        # c = 3 → 2 smallest positives (0.01, 0.05) + 1 negative closest to 0 (-0.02)
    ("code", {6, 2, 5, 11}),     # round(0.25·6) = 2 of each sign
])
def test_set_drop_rules_and_regrowth(rule, expected):
    p, topo = layer_with(W, range(12))
    before = topo.mask(0).reshape(-1) > 0
    old = p.detach().clone().reshape(-1)
    up = SETUpdater(topo, generator=gen(1), interval=1, drop_fraction=0.25, drop_rule=rule)
    churn = up.update(1, None)
    dropped, grown = changes(topo, before)
    assert dropped == expected
    assert churn == len(grown) == len(dropped) and grown <= set(range(12, 20))  # empty before
    assert topo.nnz() == [12]
    w = p.detach().reshape(-1)
    assert all(w[i] == 0 for i in grown | dropped)
    kept = sorted(set(range(12)) - dropped)
    assert torch.equal(w[kept], old[kept])


def test_paper_rule_takes_the_rest_from_the_other_sign():
    weights = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, -0.05, 0.0, 0.0] + [0.0] * 10
    p, topo = layer_with(weights, range(9))  # active: 7 positive, 1 negative, one exact zero
    before = topo.mask(0).reshape(-1) > 0
    up = SETUpdater(topo, generator=gen(), interval=1, drop_fraction=0.5, drop_rule="paper")
    assert up.update(1, None) == 4  # c = round(4.5) = 4 → 2 "positive" (0.0, 0.1) + 2 negative
    dropped, _ = changes(topo, before)
    assert dropped == {8, 0, 7, 1}  # only one negative (-0.05): the 4th comes from the positives


def test_drop_is_capped_by_empty_positions():
    weights = [float(i + 1) for i in range(20)]
    p, topo = layer_with(weights, range(18))  # 2 empty positions
    before = topo.mask(0).reshape(-1) > 0
    up = SETUpdater(topo, generator=gen(), interval=1, drop_fraction=0.5)
    assert up.update(1, None) == 2
    assert changes(topo, before) == ({0, 1}, {18, 19})
    p, topo = layer_with(weights, range(20))  # dense layer (ERK may cap one): nothing to do
    assert SETUpdater(topo, generator=gen(), interval=1).update(1, None) == 0


def test_set_regrowth_is_random_from_the_generator():
    def grown(seed):
        p, topo = layer_with(W, range(12))
        before = topo.mask(0).reshape(-1) > 0
        SETUpdater(topo, generator=gen(seed), interval=1, drop_fraction=0.5).update(1, None)
        return changes(topo, before)[1]
    assert grown(3) == grown(3)
    assert len({frozenset(grown(s)) for s in range(6)}) > 1


def test_rigl_grows_at_largest_dense_gradient():
    p, topo = layer_with(W, range(12))
    before = topo.mask(0).reshape(-1) > 0
    g = torch.randn(20, generator=gen(7))
    g[:12] = 100.0  # huge gradients at active positions must not matter
    p.grad = g.reshape(4, 5).clone()
    up = RigLUpdater(topo, generator=gen(), interval=1, drop_fraction=0.25)
    assert up.update(1, None) == 3
    dropped, grown = changes(topo, before)
    assert dropped == {6, 5, 11}
    expected = set((12 + torch.argsort(g[12:].abs(), descending=True)[:3]).tolist())
    assert grown == expected
    p.grad = None
    with pytest.raises(RuntimeError, match="no gradient"):
        up.update(2, None)


def test_schedules():
    p, topo = layer_with(W, range(12))
    cos = SETUpdater(topo, generator=gen(), drop_fraction=0.5, schedule="cosine", end_step=100)
    assert cos.fraction(0) == 0.5 and cos.fraction(100) == pytest.approx(0.0)
    assert cos.fraction(50) == pytest.approx(0.25)
    assert cos.fraction(25) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)) / 2)
    const = SETUpdater(topo, generator=gen(), drop_fraction=0.05)
    assert const.fraction(1) == const.fraction(10**6) == 0.05


def test_is_due():
    p, topo = layer_with(W, range(12))
    up = SETUpdater(topo, generator=gen(), interval=5, end_step=20)
    assert [s for s in range(0, 31) if up.is_due(s)] == [5, 10, 15, 20]
    assert [s for s in range(1, 31) if SETUpdater(topo, generator=gen(), interval=10).is_due(s)] == [10, 20, 30]
    assert not any(u.is_due(1000) for u in (DenseUpdater(generator=gen(), interval=1000),
                                            StaticUpdater(topo, generator=gen(), interval=1000)))


def test_bad_options():
    p, topo = layer_with(W, range(12))
    for kwargs, name in [({"drop_fraction": 0.0}, "drop_fraction"), ({"schedule": "linear"}, "schedule"),
                         ({"drop_rule": "x"}, "drop_rule"), ({"interval": 0}, "interval"),
                         ({"schedule": "cosine"}, "end_step")]:
        with pytest.raises(ValueError, match=f"^{name}"):
            SETUpdater(topo, generator=gen(), **kwargs)
    with pytest.raises(ValueError, match="^end_step"):
        GradualPruningUpdater(topo, generator=gen(), final_densities=[0.5], start_step=10, end_step=10)
    with pytest.raises(ValueError, match="^final_densities"):
        GradualPruningUpdater(topo, generator=gen(), final_densities=[0.5, 0.5], start_step=1, end_step=10)


def test_registry():
    assert UPDATERS == {"dense": DenseUpdater, "static": StaticUpdater, "ds": SETUpdater,
                        "set": SETUpdater, "rigl": RigLUpdater, "prune": GradualPruningUpdater}


# --- training with a real loss ------------------------------------------------------------------
class TwinCritic(torch.nn.Module):
    """Two small critics in fused parameters: first layers in one (2·H, n_in) tensor, hidden
    layers stacked in one (2, H, H) tensor, dense outputs."""

    def __init__(self, n_in=5, h=16):
        super().__init__()
        self.h = h
        self.w1 = torch.nn.Parameter(torch.randn(2 * h, n_in) / n_in ** 0.5)
        self.b1 = torch.nn.Parameter(torch.zeros(2 * h))
        self.w2 = torch.nn.Parameter(torch.randn(2, h, h) / h ** 0.5)
        self.out = torch.nn.Linear(h, 1)

    def forward(self, x):
        z = torch.relu(x @ self.w1.t() + self.b1).view(-1, 2, self.h).transpose(0, 1)
        z = torch.relu(torch.bmm(z, self.w2.transpose(1, 2)))
        return self.out(z).sum(0)

    def sparse_layers(self):
        h = self.h
        return [SparseLayer("q1.0", self.w1, slice(0, h)), SparseLayer("q2.0", self.w1, slice(h, 2 * h)),
                SparseLayer("q1.1", self.w2, 0), SparseLayer("q2.1", self.w2, 1)]


def batch(step):
    g = gen(1000 + step)
    x = torch.randn(32, 5, generator=g)
    return x, torch.sin(x.sum(1, keepdim=True))


def make(method, seed=0, replaces_step=False, **options):
    torch.manual_seed(seed)
    net = TwinCritic()
    g = gen(seed)
    layers = net.sparse_layers()
    prune = method == "prune"
    topo = Topology(layers, [1.0 if prune else 0.3] * 4, g)
    if prune:
        options = {"final_densities": [0.3, 0.5, 0.2, 0.25], "start_step": 6, "end_step": 30, **options}
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, weight_decay=2e-4)
    up = UPDATERS[method](topo, generator=g, **options)
    return net, topo, opt, SparseTraining(topo, up, opt, replaces_step=replaces_step)


def train(net, opt, training, steps, first=1):
    for step in range(first, first + steps):
        x, y = batch(step)
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        training.step(step)


@pytest.mark.parametrize("method, options", [
    ("ds", {"drop_fraction": 0.05, "drop_rule": "paper", "end_step": 36}),
    ("ds", {"drop_fraction": 0.2, "drop_rule": "code", "end_step": 36}),
    ("set", {"drop_fraction": 0.5, "schedule": "cosine", "end_step": 36}),
    ("rigl", {"drop_fraction": 0.5, "schedule": "cosine", "end_step": 36}),
])
@pytest.mark.parametrize("replaces_step", [False, True])
def test_sparsity_preserved_during_training(method, options, replaces_step):
    net, topo, opt, training = make(method, replaces_step=replaces_step, interval=3, **options)
    nnz = topo.nnz()
    assert nnz == [round(0.3 * 80)] * 2 + [round(0.3 * 256)] * 2
    churn = []
    for step in range(1, 41):
        train(net, opt, training, 1, first=step)
        churn.append(training.last_churn)
        assert topo.nnz() == nnz
        for la, i in zip(topo.layers, range(4)):
            assert torch.all(la.weight[topo.mask(i) == 0] == 0)
            assert int(torch.count_nonzero(la.weight)) <= nnz[i]
    assert training.updates_done == 12  # steps 3, 6, …, 36
    assert sum(churn) > 0
    # Graesser: the mask update replaces that step's gradient update
    assert int(opt.state[net.w2]["step"]) == (40 - 12 if replaces_step else 40)


def test_replaced_step_leaves_kept_weights_untouched():
    net, topo, opt, training = make("rigl", replaces_step=True, interval=5, drop_fraction=0.3)
    train(net, opt, training, 4)
    before = [p.detach().clone() for p in (net.w1, net.w2)]
    masks = [topo.mask(i).clone() for i in range(4)]
    train(net, opt, training, 1, first=5)
    for i, la in enumerate(topo.layers):
        kept = (masks[i] > 0) & (topo.mask(i) > 0)
        old = before[0][la.index] if i < 2 else before[1][la.index]
        assert torch.equal(la.weight[kept], old[kept])


def test_rigl_after_a_normal_step_sees_the_dense_gradient():
    net, topo, opt, training = make("rigl", interval=5, drop_fraction=0.3)
    train(net, opt, training, 4)
    x, y = batch(5)
    opt.zero_grad()
    torch.nn.functional.mse_loss(net(x), y).backward()
    dense = [la.grad.clone() for la in topo.layers]
    empty = [(topo.mask(i) == 0).reshape(-1) for i in range(4)]
    training.step(5)
    assert training.last_churn > 0
    for i in range(4):
        grown = empty[i] & (topo.mask(i).reshape(-1) > 0)
        n = int(grown.sum())
        scores = dense[i].abs().reshape(-1).masked_fill(~empty[i], -1.0)
        top = torch.sort(scores, descending=True, stable=True).indices[:n]
        assert set(grown.nonzero().squeeze(1).tolist()) == set(top.tolist())


def test_adam_moments_reset_at_dropped_and_regrown_positions_only():
    net, topo, opt, training = make("set", interval=1000, drop_fraction=0.5)
    train(net, opt, training, 5)
    opt.state[net.w1]["max_exp_avg_sq"] = torch.ones_like(net.w1)  # any same-shape state is reset
    state = {p: {k: v.clone() for k, v in opt.state[p].items()} for p in (net.w1, net.w2)}
    out_state = copy.deepcopy(opt.state[net.out.weight])
    masks = [topo.mask(i).clone() for i in range(4)]
    assert training.updater.update(1000, opt) > 0
    diff = [m != topo.mask(i) for i, m in enumerate(masks)]
    changed = {net.w1: torch.cat(diff[:2]), net.w2: torch.stack(diff[2:])}
    for p, where in changed.items():
        assert 0 < int(where.sum()) < where.numel()
        for key in ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if p is net.w1 else ()):
            old, new = state[p][key], opt.state[p][key]
            assert torch.all(new[where] == 0)
            assert torch.equal(new[~where], old[~where])
            assert old[where].abs().sum() > 0  # there was something to reset
        assert torch.equal(opt.state[p]["step"], state[p]["step"])
    for key, v in out_state.items():  # unmasked parameters: untouched
        assert torch.equal(opt.state[net.out.weight][key], v)


def test_gradual_pruning_follows_the_cubic_schedule():
    net, topo, opt, training = make("prune", interval=10, start_step=10, end_step=45,
                                    final_densities=[0.2] * 4)
    up = training.updater
    assert [s for s in range(1, 100) if up.is_due(s)] == [10, 20, 30, 40, 45]
    # s_t = 0.8 − 0.8·(1 − (t − 10)/35)³, zeros = round(s_t · 256) for a 16×16 layer
    assert up.target_sparsity(0, 5) == 0.0 and up.target_sparsity(0, 10) == 0.0
    assert up.target_sparsity(0, 20) == pytest.approx(0.8 - 0.8 * (25 / 35) ** 3)
    assert up.target_sparsity(0, 45) == pytest.approx(0.8) and up.target_sparsity(0, 90) == pytest.approx(0.8)
    expected = {10: 0, 20: 130, 30: 189, 40: 204, 45: 205}  # 256·0.508 = 130.2, 188.7, 204.2, 204.8
    seen = {}
    real_update = up.update

    def update(step, optimizer):  # remember the weights the pruning saw
        seen[step] = [la.weight.clone() for la in topo.layers]
        return real_update(step, optimizer)

    up.update = update
    for step in range(1, 61):
        old_m = [topo.mask(i).clone() for i in range(4)]
        train(net, opt, training, 1, first=step)
        assert not any(((topo.mask(i) > 0) & (old_m[i] == 0)).any() for i in range(4))  # no regrowth
        if step in expected:
            assert [n - k for n, k in zip(topo.numel()[2:], topo.nnz()[2:])] == [expected[step]] * 2
            assert training.last_churn == 0
            for i, w in enumerate(seen[step]):
                pruned, kept = (old_m[i] > 0) & (topo.mask(i) == 0), topo.mask(i) > 0
                if pruned.any():  # the smallest |w| of the remaining weights went
                    assert w[pruned].abs().max() <= w[kept].abs().min()
    assert topo.nnz() == [round(0.2 * 80)] * 2 + [256 - 205] * 2
    assert training.updates_done == 5


def test_gradual_pruning_drops_the_smallest_magnitudes():
    weights = [float(v) for v in [5, -4, 3, -2, 1, 0.5, -0.25, 6, 7, -8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]]
    p, topo = layer_with(weights, range(20))
    up = GradualPruningUpdater(topo, generator=gen(), final_densities=[0.5], start_step=0, end_step=10,
                               interval=5)
    up.update(5, None)  # s = 0.5 − 0.5·0.5³ = 0.4375 → round(8.75) = 9 zeros
    assert (topo.mask(0).reshape(-1) == 0).nonzero().squeeze(1).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8]
    up.update(10, None)  # 10 zeros: the next smallest, −8
    assert (topo.mask(0).reshape(-1) == 0).nonzero().squeeze(1).tolist() == list(range(10))
    assert torch.all(p.detach().reshape(-1)[:10] == 0)


def test_state_dict_gives_an_exact_resume():
    def run(seed, steps, state=None):
        net, topo, opt, training = make("set", seed=seed, interval=4, drop_fraction=0.3)
        if state is not None:
            net.load_state_dict(state[0])
            opt.load_state_dict(state[1])
            training.load_state_dict(state[2])
        train(net, opt, training, steps, first=13 if state is not None else 1)
        return net, opt, training

    net, opt, training = run(0, 12)
    saved = copy.deepcopy((net.state_dict(), opt.state_dict(), training.state_dict()))
    train(net, opt, training, 12, first=13)
    resumed_net, _, resumed = run(5, 12, saved)  # other seed: everything must come from the state
    assert torch.equal(net.w1, resumed_net.w1) and torch.equal(net.w2, resumed_net.w2)
    for i in range(4):
        assert torch.equal(training.topology.mask(i), resumed.topology.mask(i))
    assert resumed.updates_done == training.updates_done == 6
    assert resumed.last_churn == training.last_churn


def test_dense_training_is_a_plain_optimizer_step():
    torch.manual_seed(0)
    a, b = TwinCritic(), TwinCritic()
    b.load_state_dict(a.state_dict())
    opt_a, opt_b = torch.optim.Adam(a.parameters()), torch.optim.Adam(b.parameters())
    training = SparseTraining(None, DenseUpdater(generator=gen()), opt_a)
    for step in range(1, 4):
        x, y = batch(step)
        for net, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(x), y).backward()
        training.step(step)
        opt_b.step()
    assert torch.equal(a.w1, b.w1) and training.updates_done == 0 and training.last_churn == 0


@pytest.mark.parametrize("cls", [SETUpdater, RigLUpdater])
def test_strided_column_regions(cls):
    """Regions that are not contiguous in memory (column blocks of one param) work too."""
    p = torch.nn.Parameter(torch.randn(8, 10, generator=gen(2)))
    layers = [SparseLayer("obs", p, (slice(None), slice(0, 4))), SparseLayer("act", p, (slice(None), slice(4, 10)))]
    topo = Topology(layers, [0.5, 0.25], gen())
    assert topo.nnz() == [16, 12]
    p.grad = torch.randn(8, 10, generator=gen(3))
    for step in (1, 2, 3):
        assert cls(topo, generator=gen(step), interval=1, drop_fraction=0.5).update(step, None) > 0
        assert topo.nnz() == [16, 12]
        m = topo.param_mask(p)
        assert torch.all(p[m == 0] == 0) and torch.equal(m[:, :4], topo.mask(0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_gives_the_cpu_results():
    results = []
    for device in ("cpu", "cuda"):
        p = torch.nn.Parameter(torch.randn(2, 32, 24, generator=gen(4)).to(device))
        layers = [SparseLayer("a", p, 0), SparseLayer("b", p, 1)]
        topo = Topology(layers, [0.3, 0.6], gen(1))
        p.grad = torch.randn(2, 32, 24, generator=gen(5)).to(device)
        opt = torch.optim.Adam([p])
        SparseTraining(topo, RigLUpdater(topo, generator=gen(6), interval=1, drop_fraction=0.3),
                       opt, replaces_step=True).step(1)
        SETUpdater(topo, generator=gen(7), interval=1, drop_fraction=0.3, drop_rule="paper").update(2, opt)
        results.append(topo.param_mask(p).cpu())
    assert torch.equal(*results)
