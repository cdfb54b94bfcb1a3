"""y = x·Wᵀ + b with W masked: the dense product, or a sparse kernel over the mask's nonzeros.

`dense_linear` is what a module computes on the dense path: F.linear for a matrix; for a stack
of G matrices (inputs and outputs side by side, (B, G·in) → (B, G·out)) one F.linear per member.

`SparseLinear` is the sparse path (one autograd node): the forward reads W's nonzeros in place
through the CSR structure; the backward computes dX = dY·W and the weight gradient at the
nonzeros only (SDDMM), added into the parameter's .grad there (zero off the mask: exactly what
masking the dense gradient gives). Between two sparse layers activations and gradients travel
feature-major (Y is a transposed view of a contiguous Yᵀ), so a chain of sparse layers and the
elementwise ops between them never copy to transpose; next to a dense layer they are handed over
row-major, as the dense products want them.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from .csr import CSR


def dense_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                 rows: int | None = None) -> torch.Tensor:
    """x·Wᵀ + b; a stacked (G, out, in) weight maps (B, G·in) to (B, G·out), member by member on
    column slices. `rows`: only the first `rows` outputs (a stack's first member), `bias` then
    given for those rows."""
    if rows is not None or weight.dim() == 2:
        return F.linear(x, weight if rows is None else weight.reshape(-1, weight.shape[-1])[:rows], bias)
    g, out, n_in = weight.shape
    b = None if bias is None else bias.reshape(g, out)
    return torch.cat([F.linear(x[:, i * n_in:(i + 1) * n_in], weight[i], None if b is None else b[i])
                      for i in range(g)], dim=1)


def feature_major(x: torch.Tensor) -> torch.Tensor:
    """xᵀ, contiguous (free when x is the transposed view a sparse layer returned)."""
    t = x.t()
    return t if t.is_contiguous() else t.contiguous()


def _layout(t: torch.Tensor, as_view: bool) -> torch.Tensor:
    """(B, n) from a contiguous (n, B): as a transposed view (for a sparse neighbour) or row-major
    (for a dense one: dense products and their backward are slowest on strided operands)."""
    return t.t() if as_view else t.t().contiguous()


def sparse_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, kernel, csr: CSR) -> torch.Tensor:
    """The forward alone (no gradient wanted): Y = X·Wᵀ + b."""
    b = None if bias is None else bias.reshape(-1).contiguous()
    return _layout(kernel.backend.forward(csr, weight.detach(), feature_major(x.detach()), b), kernel.feature_major_out)


class SparseLinear(torch.autograd.Function):
    """apply(x, weight, bias, kernel, csr): `kernel` has the back end and, for RigL, the record
    of (Xᵀ, dYᵀ) that gives the dense weight gradient on demand (dense_weight_grad)."""

    @staticmethod
    def forward(ctx, x, weight, bias, kernel, csr: CSR):
        xt = feature_major(x)
        b = None if bias is None else bias.reshape(-1).contiguous()
        yt = kernel.backend.forward(csr, weight, xt, b)
        ctx.save_for_backward(xt)
        ctx.kernel, ctx.csr, ctx.weight = kernel, csr, weight
        ctx.bias_shape = None if bias is None else bias.shape
        return _layout(yt, kernel.feature_major_out)

    @staticmethod
    def backward(ctx, dy):
        (xt,) = ctx.saved_tensors
        kernel, weight = ctx.kernel, ctx.weight
        dyt = feature_major(dy)
        want_dx, want_dw, want_db = ctx.needs_input_grad[:3]
        grad = dw = None
        if want_dw:
            if weight.is_leaf:
                # Added straight into .grad at the nonzeros, as AccumulateGrad would add the dense
                # gradient (zero elsewhere), without building it: O(nnz) instead of three passes
                # over the matrix. (Megatron-LM's gradient-accumulation fusion does the same.)
                if weight.grad is None:
                    weight.grad = torch.zeros_like(weight)
                grad = weight.grad
            else:
                grad = dw = torch.zeros_like(weight)
            if kernel.recording:
                kernel.records.append((xt, dyt))
        dxt, db = kernel.backend.backward(ctx.csr, weight, xt, dyt, want_dx, grad, want_db)
        dx = None if dxt is None else _layout(dxt, kernel.feature_major_grad)
        return dx, dw, (None if db is None else db.reshape(ctx.bias_shape)), None, None


def dense_weight_grad(shape: torch.Size, records: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """The dense ∂L/∂W (zeros included) from the recorded (Xᵀ, dYᵀ) of the backward passes:
    Σ dYᵀ·X, block by block for a stack (RigL's grow score)."""
    grad = torch.zeros(shape, dtype=records[0][0].dtype, device=records[0][0].device)
    for xt, dyt in records:
        if len(shape) == 2:
            grad[: dyt.shape[0]] += dyt @ xt.t()
        else:
            _, out, n_in = shape
            blocks = dyt.shape[0] // out  # a stack's leading members (all of them, or the first)
            grad[:blocks] += torch.bmm(dyt.view(blocks, out, -1), xt[: blocks * n_in].view(blocks, n_in, -1).transpose(1, 2))
    return grad
