"""``widen_linears``: the bfloat16 writer's linears computed in float32 give its logits, up to rounding."""

from __future__ import annotations

import torch

from graphs.llm import LocalLLM, widen_linears
from pipeline.host import native_bf16_cpu

EVIDENCE = ("The Supplier may terminate this Agreement upon thirty (30) days' written notice if the Customer "
            "fails to pay any invoice when due. ")
PROMPT = "Evidence:\n" + EVIDENCE * 12 + "\nQuestion: How can the agreement be terminated?"


def test_widened_linears_give_the_bfloat16_writers_logits():
    llm = LocalLLM(dtype="bfloat16", attention="sdpa")
    model = llm.model
    # warm_up widens them where this CPU has no bfloat16 dot products, and only there
    assert any("forward" in m.__dict__ for m in model.modules()) == (not native_bf16_cpu())
    ids = torch.tensor([llm.tokenizer(PROMPT)["input_ids"]])
    with torch.inference_mode():
        if native_bf16_cpu():  # this host's bfloat16 writer runs its own products: widen a copy to compare
            import copy
            native = model(input_ids=ids).logits.float()
            model = copy.deepcopy(model)
            widen_linears(model)
        else:  # warm_up widened them: compare with the plain modules' products
            native = None
        widened = model(input_ids=ids).logits.float()
        if native is None:
            for module in model.modules():
                module.__dict__.pop("forward", None)
            native = model(input_ids=ids).logits.float()
    assert widened.dtype == native.dtype and widened.shape == native.shape
    assert not torch.equal(widened, torch.zeros_like(widened))
    # bfloat16 keeps 8 bits of mantissa: the two differ by rounding only, and agree on the next token
    assert (widened - native).abs().max() <= 0.05 * native.abs().max()
    assert torch.equal(widened[0, -1].argmax(), native[0, -1].argmax())
    assert (widened.argmax(-1) == native.argmax(-1)).float().mean() >= 0.95
