import pytest
import torch

import dsrl_platform.sparse.topology as topology_mod
from dsrl_platform.sparse import SparseLayer, Topology, sparsify_target_


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def fused_critics(n_in=7, width=16):
    """Both critics' first layers fused in one (2·width, n_in) param, second layers stacked
    in one (2, width, width) param — the two layouts an agent may use."""
    first = torch.nn.Parameter(torch.randn(2 * width, n_in))
    second = torch.nn.Parameter(torch.randn(2, width, width))
    layers = [SparseLayer("q1.0", first, slice(0, width)), SparseLayer("q2.0", first, slice(width, 2 * width)),
              SparseLayer("q1.1", second, 0), SparseLayer("q2.1", second, 1)]
    return first, second, layers


def test_exact_mask_counts_and_weights_masked():
    p1, p2 = torch.nn.Parameter(torch.randn(30, 10)), torch.nn.Parameter(torch.randn(5, 30))
    topo = Topology([SparseLayer("a", p1), SparseLayer("b", p2)], [0.3, 0.51], gen())
    assert topo.nnz() == [90, round(0.51 * 150)] == [90, 76]
    assert topo.numel() == [300, 150]
    assert topo.sparsity() == pytest.approx([0.7, 74 / 150])
    for i, p in enumerate((p1, p2)):
        m = topo.mask(i)
        assert m.dtype == p.dtype and m.shape == p.shape and set(m.unique().tolist()) <= {0.0, 1.0}
        assert torch.all(p[m == 0] == 0) and torch.all(p[m == 1] != 0)
    assert Topology([SparseLayer("d", torch.nn.Parameter(torch.ones(4, 4)))], [1.0], gen()).nnz() == [16]
    assert Topology([SparseLayer("e", torch.nn.Parameter(torch.ones(4, 4)))], [0.0], gen()).nnz() == [0]


def test_masks_come_from_the_generator():
    def masks(seed):
        p = torch.nn.Parameter(torch.randn(20, 20))
        return Topology([SparseLayer("a", p)], [0.25], gen(seed)).mask(0).clone()
    assert torch.equal(masks(1), masks(1))
    assert not torch.equal(masks(1), masks(2))


def test_fused_regions():
    first, second, layers = fused_critics()
    topo = Topology(layers, [0.25, 0.5, 0.125, 0.75], gen())
    assert topo.nnz() == [28, 56, 32, 192]
    assert topo.param_mask(first).shape == first.shape and len(topo.params) == 2
    assert [la.shape for la in layers] == [(16, 7), (16, 7), (16, 16), (16, 16)]
    # masks are views into one tensor per param: editing the region edits the param's mask
    assert topo.mask(1).data_ptr() == topo.param_mask(first)[16:].data_ptr()
    assert torch.equal(first.data[16:] != 0, topo.mask(1) != 0)
    assert torch.equal(layers[3].weight, second.data[1])


def test_mask_is_one_outside_sparse_regions():
    p = torch.nn.Parameter(torch.randn(3, 8, 8))
    topo = Topology([SparseLayer("mid", p, 1)], [0.25], gen())
    m = topo.param_mask(p)
    assert torch.all(m[0] == 1) and torch.all(m[2] == 1) and int(m[1].sum()) == 16
    assert torch.all(p[0] != 0) and torch.all(p[2] != 0)


def test_bad_layers_and_densities():
    p = torch.nn.Parameter(torch.randn(8, 4))
    with pytest.raises(ValueError, match="overlap"):
        Topology([SparseLayer("a", p, slice(0, 5)), SparseLayer("b", p, slice(4, 8))], [0.5, 0.5], gen())
    with pytest.raises(ValueError, match="^densities"):
        Topology([SparseLayer("a", p)], [1.5], gen())
    with pytest.raises(ValueError, match="^densities"):
        Topology([SparseLayer("a", p)], [0.5, 0.5], gen())


def test_apply_and_mask_grads_in_place():
    first, second, layers = fused_critics()
    topo = Topology(layers, [0.5] * 4, gen())
    ptrs = [first.data_ptr(), second.data_ptr()]
    with torch.no_grad():
        first.add_(1.0)
    (first.sum() * 2).backward()  # second has no grad: skipped
    topo.mask_grads_()
    topo.apply_()
    assert [first.data_ptr(), second.data_ptr()] == ptrs
    m = topo.param_mask(first)
    assert torch.equal(first.grad, 2 * m) and torch.all(first[m == 0] == 0)
    assert second.grad is None


def test_state_dict_round_trip():
    first, second, layers = fused_critics()
    topo = Topology(layers, [0.25, 0.5, 0.125, 0.75], gen(1))
    state = topo.state_dict()
    assert all(m.dtype == torch.bool for m in state["masks"])
    f2, s2, layers2 = fused_critics()
    other = Topology(layers2, [0.25, 0.5, 0.125, 0.75], gen(2))
    with torch.no_grad():
        f2.fill_(1.0)
    other.load_state_dict(state)
    for i in range(4):
        assert torch.equal(other.mask(i), topo.mask(i))
    assert other.nnz() == topo.nnz()
    assert torch.equal(f2.data, topo.param_mask(first))  # load applies the masks
    bad = dict(state, names=["x"] * 4)
    with pytest.raises(ValueError, match="^topology"):
        other.load_state_dict(bad)


# --- sparsify_target_ -------------------------------------------------------------------------
def test_keep_largest_breaks_ties_by_position():
    w = torch.tensor([[0.5, -1.0, 0.5], [0.5, 0.0, -0.5]])
    topology_mod._keep_largest_(w, 3)  # -1.0, then the first two of four tied 0.5's
    assert w.tolist() == [[0.5, -1.0, 0.5], [0.0, 0.0, 0.0]]


def brute_force_top_k_(w, k):
    """Reference: stable descending sort of |w| in w's own flat order, keep the first k."""
    flat = w.flatten()
    order = torch.sort(flat.abs(), descending=True, stable=True).indices
    keep = torch.zeros_like(flat, dtype=torch.bool)
    keep[order[:k]] = True
    w.copy_(torch.where(keep, flat, 0.0).view(w.shape))


def test_keep_largest_equals_stable_sort():
    g = gen(5)
    for trial in range(50):
        n = int(torch.randint(1, 40, (1,), generator=g))
        # few distinct values: many ties, zeros included
        w = (torch.randint(-3, 4, (n, 2), generator=g) * 0.25)
        k = int(torch.randint(0, 2 * n + 1, (1,), generator=g))
        want = w.t().clone()
        brute_force_top_k_(want, k)
        view = w.t()  # a strided view, ties broken in the view's own order
        topology_mod._keep_largest_(view, k)
        assert torch.equal(view, want), trial


def spy_on_selection(monkeypatch) -> list[tuple[int, bool]]:
    """Record (k, whether any weight was cut) for every candidate selection sparsify_target_ runs."""
    calls, real = [], topology_mod._keep_largest_off_mask_

    def keep(w, k, off, bound=None):
        before = int(torch.count_nonzero(w))
        done = real(w, k, off, bound)
        calls.append((k, int(torch.count_nonzero(w)) < before))
        return done

    monkeypatch.setattr(topology_mod, "_keep_largest_off_mask_", keep)
    return calls


@pytest.mark.parametrize("pass_tau,tau", [(False, 0.3), (True, 0.3), (True, 0.01)])
def test_sparsify_target_equals_brute_force_top_k(monkeypatch, pass_tau, tau):
    """Random soft updates, optimizer-like noise and topology changes: the shortcut version
    must give exactly the weights of doing the full top-k after every soft update."""
    torch.manual_seed(0)
    g = gen(3)
    first, second, layers = fused_critics()
    plain = torch.nn.Parameter(torch.randn(5, 16))
    layers.append(SparseLayer("out", plain))
    online = Topology(layers, [0.3, 0.4, 0.5, 0.2, 0.6], g)
    params = [first, second, plain]
    fast = [p.detach().clone() for p in params]
    slow = [p.detach().clone() for p in params]

    def target_layers(tensors):
        return [SparseLayer(la.name, tensors[[id(p) for p in params].index(id(la.param))], la.index)
                for la in layers]

    fast_layers, slow_layers = target_layers(fast), target_layers(slow)
    calls = spy_on_selection(monkeypatch)
    sorts = []  # the steps at which weights were actually cut
    for step in range(60):
        with torch.no_grad():
            for p in params:
                p.add_(0.1 * torch.randn(p.shape))
        online.apply_()
        if step % 15 == 7:  # a topology change: swap some connections per layer
            for i in range(len(layers)):
                m = online.mask(i).reshape(-1)
                on, off = (m > 0).nonzero().squeeze(1), (m == 0).nonzero().squeeze(1)
                n = min(3, len(on), len(off))
                m[on[torch.randperm(len(on), generator=g)[:n]]] = 0
                m[off[torch.randperm(len(off), generator=g)[:n]]] = 1
            online.changed()
            online.apply_()
        with torch.no_grad():
            for p, f, s in zip(params, fast, slow):
                f.mul_(1 - tau).add_(tau * p)
                s.mul_(1 - tau).add_(tau * p)
        sparsify_target_(fast_layers, online, tau if pass_tau else None)
        sorts += [step] * sum(cut for _, cut in calls)
        calls.clear()
        for la, k in zip(slow_layers, online.nnz()):  # brute force: always the full top-k
            brute_force_top_k_(la.weight, k)
        for f, s in zip(fast, slow):
            assert torch.equal(f, s), step
        for la, k in zip(fast_layers, online.nnz()):
            assert int(torch.count_nonzero(la.weight)) <= k
    # the top-k ran only after topology changes (at steps 7, 22, 37, 52; the new connections
    # are 0 until the next step moves them), never before the first one, and not every step
    assert sorts and min(sorts) == 8 and len(sorts) < 60 * len(layers)


def test_sparsify_target_skips_in_the_steady_state(monkeypatch):
    p = torch.nn.Parameter(torch.randn(8, 8))
    online = Topology([SparseLayer("a", p)], [0.5], gen())
    # dense target, its 32 off-mask weights tiny (like stale weights of dropped connections)
    target = 2 * p.detach() + 1e-6 * (1 - online.mask(0))
    layers = [SparseLayer("a", target)]
    checks = spy_on_selection(monkeypatch)  # (k, whether weights were cut) per call
    sorts = lambda: [k for k, cut in checks if cut]  # noqa: E731
    sparsify_target_(layers, online)
    assert sorts() == [32] and int(torch.count_nonzero(target)) == 32
    n = len(checks)
    for _ in range(5):  # steady state: soft updates from the masked online net cost nothing
        with torch.no_grad():
            target.mul_(0.9).add_(0.1 * p)
        sparsify_target_(layers, online)
    assert len(checks) == n and sorts() == [32]
    online.changed()  # a topology change: checked again (inside the mask: no sort)
    sparsify_target_(layers, online)
    assert len(checks) == n + 1 and sorts() == [32]


def test_candidate_selection_breaks_ties_like_the_full_top_k():
    """Equal magnitudes at the cut: both selections keep the lower flat index."""
    import numpy as np

    w = torch.tensor([[0.5, -0.1, 0.1, 0.0], [0.1, -0.1, 0.7, 0.1]])
    off = np.array([0, 1, 0, 1, 1, 0, 0, 1], dtype=np.float32)  # the online mask has 4 slots
    fast, slow = w.clone(), w.clone()
    done = topology_mod._keep_largest_off_mask_(fast, 4, off)
    topology_mod._keep_largest_(slow, 4)
    assert torch.equal(fast, slow)
    assert torch.equal(fast, torch.tensor([[0.5, -0.1, 0.1, 0.0], [0.0, 0.0, 0.7, 0.0]]))
    assert done is False  # position 1 (off the mask) kept its weight by the tie rule
