"""Adam's step on the nonzeros of the sparse-path weights, everything else as `optimizer.step()`.

Equal to the dense step on masked gradients: off the mask a weight, its gradient and both
moments are exactly 0 (SparseTraining applies the masks after every step, the updaters reset the
moments of every dropped or regrown position), and Adam maps zeros to zeros — with weight decay
too, since it adds wd·θ = 0. So only the nonzeros need the work. The optimizer's state stays
dense-shaped and its own (checkpoints, the updaters' moment resets and the masked-dense path all
read the same state); only the positions touched differ.

On CPU with the native kernels, one C call per parameter steps it in place (csr_kernels.c
`adam_at`: the nonzeros of a sparse-path weight, every entry of the others). Elsewhere — or for
settings that kernel does not have (AMSGrad, maximize, AdamW's decoupled decay, a tensor lr) —
the nonzeros are gathered, stepped by torch's own functional Adam with the group's settings,
and written back.
"""

from __future__ import annotations

import torch
from torch.optim.adam import adam

from . import native


def supports(optimizer: torch.optim.Optimizer) -> bool:
    return type(optimizer) is torch.optim.Adam


@torch.no_grad()
def step_on_nonzeros(optimizer: torch.optim.Adam, nonzeros: dict[int, torch.Tensor]) -> None:
    """optimizer.step(), with the parameters in `nonzeros` (id → flat positions) updated there only."""
    lib = native.library()
    for group in optimizer.param_groups:
        if lib is not None and _native_group(group):
            _native_step(lib, optimizer, group, nonzeros)
        else:
            _gathered_step(optimizer, group, nonzeros)


def _native_group(group: dict) -> bool:
    return (not group["amsgrad"] and not group["maximize"] and not group["decoupled_weight_decay"]
            and not torch.is_tensor(group["lr"])
            and all(p.device.type == "cpu" and p.dtype == torch.float32 and p.is_contiguous() for p in group["params"]))


def _native_step(lib, optimizer: torch.optim.Adam, group: dict, nonzeros: dict[int, torch.Tensor]) -> None:
    params = [p for p in group["params"] if p.grad is not None]
    if any(not optimizer.state[p] for p in params):  # first step: the optimizer's own lazy state init
        optimizer._init_group(group, [], [], [], [], [], [])
    beta1, beta2 = group["betas"]
    for p in params:
        state, idx = optimizer.state[p], nonzeros.get(id(p))
        g = p.grad if p.grad.is_contiguous() else p.grad.contiguous()
        lib.adam_at(p.numel() if idx is None else idx.numel(), None if idx is None else idx.data_ptr(), p.data_ptr(),
                    g.data_ptr(), state["exp_avg"].data_ptr(), state["exp_avg_sq"].data_ptr(), state["step"].data_ptr(),
                    group["lr"], beta1, beta2, group["eps"], group["weight_decay"])


def _gathered_step(optimizer: torch.optim.Adam, group: dict, nonzeros: dict[int, torch.Tensor]) -> None:
    params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps = [], [], [], [], [], []
    has_complex = optimizer._init_group(group, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps)
    per_weight = [params, grads, exp_avgs, exp_avg_sqs] + ([max_exp_avg_sqs] if group["amsgrad"] else [])
    gathered = []  # (the dense tensors, the positions) of each compacted parameter
    for i, p in enumerate(list(params)):
        idx = nonzeros.get(id(p))
        if idx is None:
            continue
        dense = [tensors[i] for tensors in per_weight]
        for tensors, t in zip(per_weight, dense):
            tensors[i] = t.view(-1).index_select(0, idx)
        gathered.append((i, dense, idx))
    beta1, beta2 = group["betas"]
    adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, amsgrad=group["amsgrad"],
         has_complex=has_complex, beta1=beta1, beta2=beta2, lr=group["lr"], weight_decay=group["weight_decay"],
         eps=group["eps"], maximize=group["maximize"], foreach=group["foreach"], capturable=group["capturable"],
         differentiable=group["differentiable"], fused=group["fused"],
         grad_scale=getattr(optimizer, "grad_scale", None), found_inf=getattr(optimizer, "found_inf", None),
         decoupled_weight_decay=group["decoupled_weight_decay"])
    for i, dense, idx in gathered:
        for tensors, t in zip(per_weight[:1] + per_weight[2:], dense[:1] + dense[2:]):  # the gradient is read only
            t.view(-1).index_copy_(0, idx, tensors[i])
