"""``LocalLLM``'s arguments and dtypes with the shipped SmolLM2 (batched writing: test_batch.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from graphs.llm import ChatBatcher, LocalLLM, make_llm
from pipeline.config import PipelineConfig, SynthesizeConfig, resolve_dtype
from pipeline.host import native_bf16_cpu

EVIDENCE = ("The Supplier may terminate this Agreement upon thirty (30) days' written notice if the Customer "
            "fails to pay any invoice when due. ")
CONVERSATIONS = [
    [{"role": "user", "content": "Name the capital of France in one word."}],
    [{"role": "user", "content": "Evidence:\n" + EVIDENCE * 12 + "\nQuestion: How can the agreement be terminated?"}],
]


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
    replies = llm.chat_many(CONVERSATIONS, max_new_tokens=12)
    assert len(replies) == 2 and all(replies)
    assert next(llm.model.parameters()).dtype == torch.bfloat16


def _cpu_flags() -> set[str]:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    return set(next(line for line in lines if line.startswith("flags")).split(":", 1)[1].split())


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="reads the CPU's flags from /proc/cpuinfo")
def test_auto_dtype_follows_the_cpus_bfloat16_instructions():
    flags = _cpu_flags()
    assert resolve_dtype("auto") == ("bfloat16" if "amx_tile" in flags else "float32")
    assert native_bf16_cpu() == bool({"amx_tile", "avx512_bf16"} & flags)
