import pytest
import torch

from dsrl_platform.sparse import (SparseLayer, Topology, linear_forward_flops, mlp_forward_flops,
                                  param_counts, rigl_training_flops, split_weights_biases,
                                  training_flops)


def small_mlp():
    """4 → 3 → 2 MLP; the first layer keeps 7 of its 12 weights, the second is dense."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    topo = Topology([SparseLayer("0", net[0].weight)], [1.0], torch.Generator().manual_seed(0))
    mask = torch.tensor([[1, 1, 0, 0], [1, 0, 1, 0], [0, 1, 1, 1]], dtype=torch.bool)
    topo.load_state_dict({"names": ["0"], "masks": [mask]})
    return net, topo


def test_linear_and_mlp_forward_flops_by_hand():
    assert linear_forward_flops(7, 3) == 2 * 7 + 3 == 17
    assert linear_forward_flops(7, 3, bias=False) == 14
    net, topo = small_mlp()
    assert topo.nnz() == [7]
    # layer 1: 7 multiply-adds (14 FLOPs) + 3 bias adds; layer 2: 6 multiply-adds + 2 bias adds
    layers = [(topo.nnz()[0], 3, True), (6, 2, True)]
    assert mlp_forward_flops(layers) == 17 + 14 == 31
    assert training_flops(31, batch=10) == 3 * 31 * 10 == 930


def test_rigl_training_flops_by_hand():
    # f_S = 31, f_D = 2·12 + 3 + 2·6 + 2 = 41; ΔT = 4: (3·31·4 + 2·31 + 41)/5 = 95 per sample
    assert rigl_training_flops(31, 41, batch=10, interval=4) == pytest.approx(950.0)


def test_param_counts():
    net, topo = small_mlp()
    weights, biases = split_weights_biases(net)
    assert [tuple(p.shape) for p in weights] == [(3, 4), (2, 3)]
    assert [tuple(p.shape) for p in biases] == [(3,), (2,)]
    counts = param_counts(weights, biases, topo)
    assert counts == (7 + 6, 7 + 6 + 5)
    assert counts.weights == 13 and counts.with_biases == 18
    assert param_counts(weights, biases) == (12 + 6, 12 + 6 + 5)  # no topology: dense


def test_param_counts_of_a_fused_param_counts_dense_parts_in_full():
    p = torch.nn.Parameter(torch.randn(3, 4, 4))
    topo = Topology([SparseLayer("a", p, 1)], [0.25], torch.Generator().manual_seed(0))
    assert param_counts([p], [], topo) == (16 + 4 + 16, 36)
