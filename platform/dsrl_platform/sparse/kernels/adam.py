"""Adam's step on the nonzeros of the sparse-path weights, everything else as `optimizer.step()`.

Equal to the dense step on masked gradients: off the mask a weight, its gradient and both
moments are exactly 0 (SparseTraining applies the masks after every step, the updaters reset the
moments of every dropped or regrown position), and Adam maps zeros to zeros — with weight decay
too, since it adds wd·θ = 0. So only the nonzeros need the work: their weights, gradients and
moments are gathered (O(nnz)), stepped by the optimizer's own functional kernel with its group's
settings (fused, foreach or single-tensor, as configured), and written back. The optimizer's
state stays dense-shaped, so checkpoints, the updaters' moment resets and the masked-dense path
all read the same state.
"""

from __future__ import annotations

import torch
from torch.optim.adam import adam


def supports(optimizer: torch.optim.Optimizer) -> bool:
    return type(optimizer) is torch.optim.Adam


@torch.no_grad()
def step_on_nonzeros(optimizer: torch.optim.Adam, nonzeros: dict[int, torch.Tensor]) -> None:
    """optimizer.step(), with the parameters in `nonzeros` (id → flat positions) updated there only."""
    for group in optimizer.param_groups:
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
