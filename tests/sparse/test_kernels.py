"""Sparse kernels: structures, the three products on every back end, Adam at the nonzeros,
RigL's dense gradient, rebuilds after topology changes, and the build without a compiler."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from dsrl_platform.sparse import RigLUpdater, SparseLayer, SparseTraining, StaticUpdater, Topology
from dsrl_platform.sparse.kernels import CSR, Kernels, LayerKernel, SparseLinear, attach, dense_linear, native
from dsrl_platform.sparse.kernels import backends as kernel_backends
from dsrl_platform.sparse.kernels.adam import step_on_nonzeros
from dsrl_platform.sparse.kernels.linear import dense_weight_grad

CPU = torch.device("cpu")
BACKENDS = kernel_backends.available(CPU)


def test_the_native_kernels_build_here():
    """The test machine has a C compiler: the native back end must be among those available."""
    assert native.library() is not None, native.failure()
    assert [b.name for b in BACKENDS] == ["native", "torch"]


def random_mask(shape, density, seed=0):
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < density).float()


def test_csr_of_a_matrix_and_of_a_stack():
    mask = torch.tensor([[0, 1, 1], [0, 0, 0], [1, 0, 1]], dtype=torch.float32)
    csr = CSR.from_mask(mask)
    assert (csr.rows, csr.cols, csr.nnz) == (3, 3, 4)
    assert csr.crow.tolist() == [0, 2, 2, 4] and csr.col.tolist() == [1, 2, 0, 2] and csr.flat.tolist() == [1, 2, 6, 8]
    # a (2, 2, 3) stack is the (4, 6) block diagonal: member 1's columns start at 3
    stack = torch.tensor([[[1, 0, 0], [0, 1, 1]], [[0, 0, 1], [1, 0, 0]]], dtype=torch.float32)
    csr = CSR.from_mask(stack)
    assert (csr.rows, csr.cols) == (4, 6)
    assert csr.crow.tolist() == [0, 1, 3, 4, 5] and csr.col.tolist() == [0, 1, 2, 5, 3]
    assert csr.flat.tolist() == [0, 4, 5, 8, 9]
    top = csr.top(2, 3)  # the first member alone
    assert top.crow.tolist() == [0, 1, 3] and top.col.tolist() == [0, 1, 2] and top.flat.tolist() == [0, 4, 5]
    t, perm = csr.transposed()
    dense = torch.block_diag(stack[0], stack[1])
    values = torch.arange(1.0, 6.0)
    rebuilt = torch.zeros(6, 4)
    rows = torch.repeat_interleave(torch.arange(6), t.crow.long().diff())
    rebuilt[rows, t.col.long()] = values[perm]
    as_matrix = torch.zeros(4, 6)
    as_matrix[dense > 0] = values
    assert torch.equal(rebuilt, as_matrix.t())


CASES = [  # (weight shape, density, batch, rows): a matrix, a stack, the first rows of each
    ((40, 24), 0.1, 33, None), ((40, 24), 0.6, 8, None), ((2, 16, 12), 0.2, 20, None),
    ((40, 24), 0.3, 17, 20), ((2, 16, 12), 0.3, 9, 16), ((1, 24), 0.5, 40, None),
]


ON_DEVICES = [(CPU, b) for b in BACKENDS] + [
    pytest.param(torch.device("cuda"), b, marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"))
    for b in [kernel_backends.TorchCSR()]]  # cuSPARSE


@pytest.mark.parametrize("device,backend", ON_DEVICES, ids=lambda v: getattr(v, "name", None) or str(v))
@pytest.mark.parametrize("shape,density,batch,rows", CASES)
def test_sparse_linear_equals_the_masked_dense_product(device, backend, shape, density, batch, rows):
    g = torch.Generator().manual_seed(1)
    mask = random_mask(shape, density).to(device)
    w_dense = (torch.randn(shape, generator=g).to(device) * mask).requires_grad_(True)
    w_sparse = w_dense.detach().clone().requires_grad_(True)
    out_rows = rows or (shape[0] * shape[1] if len(shape) == 3 else shape[0])
    in_cols = shape[-1] if rows is not None or len(shape) == 2 else shape[0] * shape[2]
    bias_shape = (out_rows,) if rows is not None or len(shape) == 2 else (shape[0], 1, shape[1])
    b_dense = torch.randn(bias_shape, generator=g).to(device).requires_grad_(True)
    b_sparse = b_dense.detach().clone().requires_grad_(True)
    x = torch.randn(batch, in_cols, generator=g).to(device)
    x_dense, x_sparse = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    dy = torch.randn(batch, out_rows, generator=g).to(device)

    y_dense = dense_linear(x_dense, w_dense, b_dense, rows)
    csr = CSR.from_mask(mask)
    csr = csr if rows is None else csr.top(rows, shape[-1])
    kernel = LayerKernel("l", w_sparse, csr, backend, recording=True)
    y_sparse = SparseLinear.apply(x_sparse, w_sparse, b_sparse, kernel, csr)
    torch.testing.assert_close(y_sparse, y_dense, rtol=1e-5, atol=1e-5)
    y_dense.backward(dy)
    y_sparse.backward(dy)
    torch.testing.assert_close(x_sparse.grad, x_dense.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(b_sparse.grad, b_dense.grad, rtol=1e-5, atol=1e-5)
    # the weight gradient is the masked dense one: equal at the nonzeros, exactly 0 elsewhere
    torch.testing.assert_close(w_sparse.grad, w_dense.grad * mask, rtol=1e-5, atol=1e-5)
    assert torch.all(w_sparse.grad[mask == 0] == 0)
    # and the record gives the dense one (RigL), zeros of the mask included
    torch.testing.assert_close(dense_weight_grad(w_sparse.shape, kernel.records), w_dense.grad, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape,rows", [((7, 5), None), ((7, 5), 3), ((2, 4, 5), None)])
def test_dense_products_of_either_input_layout_are_equal(shape, rows):
    g = torch.Generator().manual_seed(5)
    w = torch.randn(shape, generator=g)
    cols = shape[-1] if len(shape) == 2 or rows else shape[0] * shape[2]
    out = rows or (shape[0] if len(shape) == 2 else shape[0] * shape[1])
    bias = torch.randn((out,) if len(shape) == 2 or rows else (shape[0], 1, shape[1]), generator=g)
    x = torch.randn(9, cols, generator=g)
    y = dense_linear(x, w, bias, rows)
    y_fm = dense_linear(x.t().contiguous().t(), w, bias, rows)
    assert y.shape == y_fm.shape == (9, out)
    torch.testing.assert_close(y_fm, y)
    expected = x @ torch.block_diag(*w).t() if len(shape) == 3 else x @ w[:out].t()
    torch.testing.assert_close(y, expected + bias.reshape(-1))


def test_frozen_weights_get_no_gradient_and_inputs_still_do():
    mask = random_mask((8, 6), 0.5)
    w = (torch.randn(8, 6) * mask).requires_grad_(False)
    x = torch.randn(10, 6, requires_grad=True)
    csr = CSR.from_mask(mask)
    y = SparseLinear.apply(x, w, None, LayerKernel("l", w, csr, BACKENDS[0]), csr)
    y.sum().backward()
    assert w.grad is None
    torch.testing.assert_close(x.grad, torch.ones(10, 8) @ w)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_at_the_nonzeros_equals_the_dense_step_on_masked_gradients(amsgrad):
    g = torch.Generator().manual_seed(2)
    mask = random_mask((30, 20), 0.15)
    init = torch.randn(30, 20, generator=g) * mask
    params = {}
    for name in ("dense", "sparse"):
        w, b = torch.nn.Parameter(init.clone()), torch.nn.Parameter(torch.zeros(30))
        opt = torch.optim.Adam([{"params": [w], "weight_decay": 1e-2}, {"params": [b], "weight_decay": 0.0}],
                               lr=1e-2, amsgrad=amsgrad, fused=True)
        params[name] = (w, b, opt)
    for step in range(5):
        grad = torch.randn(30, 20, generator=g)
        for name, (w, b, opt) in params.items():
            w.grad, b.grad = grad * mask, grad[:, 0].clone()
            if name == "dense":
                opt.step()
            else:
                step_on_nonzeros(opt, {id(w): CSR.from_mask(mask).flat})
    (wd, bd, od), (ws, bs, os_) = params["dense"], params["sparse"]
    torch.testing.assert_close(ws, wd, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(bs, bd)
    assert torch.all(ws[mask == 0] == 0)
    for key in ("exp_avg", "exp_avg_sq", "step"):
        torch.testing.assert_close(os_.state[ws][key], od.state[wd][key])


class TwoLayers(torch.nn.Module):
    """A module that multiplies through `kernels`, as the agents' networks do."""

    kernels = None

    def __init__(self, generator):
        super().__init__()
        self.a, self.b = torch.nn.Linear(12, 32), torch.nn.Linear(32, 5)
        for p in self.parameters():
            torch.nn.init.normal_(p, generator=generator)

    def forward(self, x):
        k = self.kernels
        if k is None:
            return self.b(torch.relu(self.a(x)))
        return k.linear(torch.relu(k.linear(x, self.a.weight, self.a.bias)), self.b.weight, self.b.bias)


def trained_pair(updater_cls, *, steps, replaces_step=False, **updater_options):
    """The same network trained masked-dense and on sparse kernels: (module, training) each."""
    out = []
    for sparse in (False, True):
        gen = torch.Generator().manual_seed(3)
        module = TwoLayers(gen)
        topo = Topology([SparseLayer("a", module.a.weight), SparseLayer("b", module.b.weight)], [0.2, 0.4], gen)
        opt = torch.optim.Adam(module.parameters(), lr=1e-2, fused=True)
        updater = updater_cls(topo, generator=gen, **updater_options)
        kernels = None
        if sparse:
            kernels = Kernels("net", module, topo, "sparse", 16, updater.uses_gradient)
            attach(module, kernels.view(module))
        training = SparseTraining(topo, updater, opt, replaces_step=replaces_step, kernels=kernels)
        data = torch.Generator().manual_seed(4)
        for step in range(1, steps + 1):
            x, y = torch.randn(16, 12, generator=data), torch.randn(16, 5, generator=data)
            opt.zero_grad(set_to_none=False)
            torch.nn.functional.mse_loss(module(x), y).backward()
            training.step(step)
        out.append((module, training))
    return out


@pytest.mark.parametrize("replaces_step", [False, True])
def test_rigl_on_sparse_kernels_grows_where_the_dense_gradient_is_largest(replaces_step):
    (dense, dense_training), (sparse, sparse_training) = trained_pair(
        RigLUpdater, steps=12, replaces_step=replaces_step, interval=4, end_step=100, drop_fraction=0.3)
    assert sparse_training.updates_done == dense_training.updates_done == 3
    for i in range(2):
        assert torch.equal(sparse_training.topology.mask(i), dense_training.topology.mask(i))
    for p, q in zip(sparse.parameters(), dense.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6)
    # the last update step left the dense gradient in .grad: equal to the masked-dense one's
    torch.testing.assert_close(sparse.a.weight.grad, dense.a.weight.grad, rtol=1e-4, atol=1e-6)
    assert torch.count_nonzero(sparse.a.weight.grad * (1 - sparse_training.topology.mask(0))) > 0


def test_structures_follow_the_masks_and_count_their_rebuilds():
    (_, _), (module, training) = trained_pair(StaticUpdater, steps=2)
    kernels, topo = training.kernels, training.topology
    assert kernels.paths() == {"net.a.weight": BACKENDS[0].name, "net.b.weight": BACKENDS[0].name}
    assert kernels.rebuilds == 1
    mask = topo.mask(0)
    mask.zero_()
    mask[0, :3] = 1.0
    topo.changed()
    topo.apply_()
    module(torch.randn(16, 12))  # rebuilt at the first use after the change
    assert kernels.rebuilds == 2 and kernels.rebuild_seconds > 0
    assert kernels.layers[0].csr.flat.tolist() == [0, 1, 2]
    assert set(kernels.nonzeros()) == {id(module.a.weight), id(module.b.weight)}


def test_without_a_compiler_torch_sparse_serves_alone(tmp_path):
    code = ("from dsrl_platform.sparse.kernels import native, backends; import torch;"
            "print(native.library(), [b.name for b in backends.available(torch.device('cpu'))], native.failure())")
    env = {**os.environ, "CC": "/bin/false", native.CACHE_ENV: str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.startswith("None ['torch'] /bin/false")
