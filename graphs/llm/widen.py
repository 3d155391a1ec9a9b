"""``widen_linears``: a bfloat16 model's linear layers computed in float32, for CPUs without bfloat16 products."""

from __future__ import annotations


def widen_linears(model) -> None:
    """Every bfloat16 ``nn.Linear`` of ``model`` computes its product in float32 from float32 copies of its
    bfloat16 weights, and rounds the result back to bfloat16.

    For a CPU without bfloat16 dot products (``native_bf16_cpu()`` false), where torch's bfloat16 products
    run about five times slower than float32 ones. Widening bfloat16 is exact and such a CPU's bfloat16
    kernels accumulate in float32 too, so the results are bfloat16's up to the order of summation: on a
    3,000-token contract prompt the writer's reply was the same, and about 3.4 times as fast (1 thread,
    AMD EPYC with AVX2). The float32 copies hold the model's linear weights a second time."""
    import torch
    import torch.nn.functional as F

    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and module.weight.dtype == torch.bfloat16:
            weight = module.weight.detach().float()
            bias = None if module.bias is None else module.bias.detach().float()

            def forward(x, weight=weight, bias=bias):
                return F.linear(x.float(), weight, bias).to(torch.bfloat16)

            module.forward = forward
