"""Batched writing with the shipped SmolLM2: ``LocalLLM.chat_many`` and ``ChatBatcher``'s worker turns."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from graphs.llm import ChatBatcher, LLMError, LocalLLM, make_llm, widen_linears
from pipeline.config import PipelineConfig, SynthesizeConfig, resolve_dtype
from pipeline.host import native_bf16_cpu

EVIDENCE = ("The Supplier may terminate this Agreement upon thirty (30) days' written notice if the Customer "
            "fails to pay any invoice when due. ")
CONVERSATIONS = [
    [{"role": "user", "content": "Name the capital of France in one word."}],
    [{"role": "user", "content": "Evidence:\n" + EVIDENCE * 12 + "\nQuestion: How can the agreement be terminated?"}],
    [{"role": "user", "content": "Evidence:\n" + EVIDENCE * 3 + "\nQuestion: How many days of notice are needed?"}],
]


@pytest.fixture(scope="module")
def llm() -> LocalLLM:
    model = LocalLLM(dtype="float32")
    model.warm_up()
    return model


def test_a_batch_writes_what_each_conversation_gets_alone(llm):
    # prompts of different lengths: the batch is left-padded, so positions and masks must be right
    alone = [llm.chat(c, max_new_tokens=16) for c in CONVERSATIONS]
    assert all(alone)
    assert llm.chat_many(CONVERSATIONS, max_new_tokens=16) == alone
    assert llm.chat_many([], max_new_tokens=16) == []


def test_batcher_batches_every_waiting_worker_the_same_way_each_time(llm):
    def run(workers: int) -> tuple[dict[int, str], list[int]]:
        batcher = ChatBatcher(llm, workers)
        tasks = iter(range(5))
        replies: dict[int, str] = {}

        def work() -> None:
            with batcher.worker():
                for i in tasks:
                    reply = batcher.chat(CONVERSATIONS[i % 3], max_new_tokens=8)
                    if i % 2 == 0:  # a second call, as a revision makes
                        reply += "|" + batcher.chat(CONVERSATIONS[(i + 1) % 3], max_new_tokens=8)
                    replies[i] = reply

        threads = [threading.Thread(target=work) for _ in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert not any(t.is_alive() for t in threads), "a worker hung"
        return replies, batcher.batches

    replies, batches = run(3)
    assert sorted(replies) == list(range(5)) and sum(batches) == 8  # five first calls, three second ones
    assert max(batches) == 3 and batches[0] == 3
    assert run(3) == (replies, batches)
    alone = {i: llm.chat(CONVERSATIONS[i % 3], 8) + ("|" + llm.chat(CONVERSATIONS[(i + 1) % 3], 8) if i % 2 == 0 else "")
             for i in range(5)}
    assert replies == alone


def test_a_writer_error_reaches_every_waiting_worker(tmp_path):
    batcher = ChatBatcher(LocalLLM(tmp_path / "missing.gguf"), workers=2)
    errors: list[str] = []

    def work() -> None:
        with batcher.worker():
            try:
                batcher.chat([{"role": "user", "content": "hi"}], 4)
            except LLMError as exc:
                errors.append(str(exc))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(errors) == 2 and all("missing.gguf does not exist" in e for e in errors)
    assert batcher.batches == [2]


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="workers"):
        ChatBatcher(LocalLLM(), workers=0)
    with pytest.raises(ValueError, match="dtype"):
        resolve_dtype("float16")
    assert resolve_dtype("auto", "cuda") == "bfloat16"
    with pytest.raises(ValueError, match="local_dtype"):
        SynthesizeConfig(local_dtype="int8")
    assert PipelineConfig.from_dict({"synthesize": {"local_dtype": "bfloat16"}}).synthesize.local_dtype == "bfloat16"
    with pytest.raises(ValueError, match="attention"):
        LocalLLM(attention="eager")
    assert make_llm(SynthesizeConfig(local_attention="sdpa")).attention == "sdpa"
    assert make_llm(SynthesizeConfig()).attention == "sectionrag"


def test_bfloat16_writer_answers():
    llm = LocalLLM(dtype="bfloat16")
    replies = llm.chat_many(CONVERSATIONS[:2], max_new_tokens=12)
    assert len(replies) == 2 and all(replies)
    assert next(llm._model.parameters()).dtype == torch.bfloat16


def _cpu_flags() -> set[str]:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    return set(next(line for line in lines if line.startswith("flags")).split(":", 1)[1].split())


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="reads the CPU's flags from /proc/cpuinfo")
def test_auto_dtype_follows_the_cpus_bfloat16_instructions():
    flags = _cpu_flags()
    assert resolve_dtype("auto") == ("bfloat16" if "amx_tile" in flags else "float32")
    assert native_bf16_cpu() == bool({"amx_tile", "avx512_bf16"} & flags)


def test_widened_linears_give_the_bfloat16_writers_logits():
    llm = LocalLLM(dtype="bfloat16", attention="sdpa")
    llm.warm_up()
    model = llm._model
    # warm_up widens them where this CPU has no bfloat16 dot products, and only there
    assert any("forward" in m.__dict__ for m in model.modules()) == (not native_bf16_cpu())
    ids = torch.tensor([llm._tokenizer(CONVERSATIONS[1][0]["content"])["input_ids"]])
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
