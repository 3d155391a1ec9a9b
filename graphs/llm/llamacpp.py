"""``LlamaCppLLM``: a local GGUF writer run by llama.cpp in this process (llama-cpp-python, the ``llama`` extra).

The same models as ``LocalLLM`` (``[synthesize] local_model``), read straight from the quantized GGUF: no
de-quantized copy on disk and a smaller memory footprint, and on a CPU a faster decoder (quantized dot products)
at a slower prompt read than transformers' float32 (``sectionrag bench writer --engines``; docs/benchmarks.md).
llama.cpp keeps the key/value cache of the last prompt, so a prompt that starts like the one before — the system
prompt and instructions every answer shares — is read only from where it differs.

>>> llm = LlamaCppLLM("qwen2.5-1.5b")
>>> llm.chat([{"role": "user", "content": "Say hi."}], max_new_tokens=8)
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from graphs.llm.models import LOCAL_MODELS, local_model_path
from graphs.llm.protocol import LLMError, Message


class LlamaCppLLM:
    """Greedy decoding with the GGUF's own chat template; ``chat_many`` writes the conversations one after another
    (llama.cpp's single-sequence API), each reusing the cached prefix it shares with the one before."""

    def __init__(self, model_ref: str | Path | None = None, *, n_ctx: int = 8192, threads: int | None = None) -> None:
        self.model_ref = str(model_ref) if model_ref else ""
        self.n_ctx = n_ctx
        self.threads = threads or max(1, len(os.sched_getaffinity(0)))
        self._llm = None
        self._lock = threading.Lock()
        self.prompt_tokens = 0
        """Prompt tokens of every call so far (the cached prefix included)."""

    @property
    def name(self) -> str:
        ref = self.model_ref or "smollm2-135m"
        return (ref if ref in LOCAL_MODELS else Path(ref).stem) + " (llama.cpp)"

    @property
    def gguf_path(self) -> Path:
        if not self.model_ref:
            from graphs.llm.convert import default_gguf_path

            return default_gguf_path()
        return local_model_path(self.model_ref)

    def warm_up(self):
        with self._lock:
            if self._llm is None:
                try:
                    from llama_cpp import Llama
                except ImportError:
                    raise LLMError("[synthesize] local_engine = \"llama_cpp\" needs llama-cpp-python: "
                                   "`pip install -e '.[llama]'` (built from source; see the README)") from None
                self._llm = Llama(model_path=str(self.gguf_path), n_ctx=self.n_ctx, n_threads=self.threads,
                                  n_threads_batch=self.threads, verbose=False)
            return self._llm

    def chat(self, messages: list[Message], max_new_tokens: int) -> str:
        llm = self.warm_up()
        with self._lock:
            out = llm.create_chat_completion(messages=list(messages), max_tokens=max_new_tokens, temperature=0.0,
                                             top_k=1, repeat_penalty=1.1)
        self.prompt_tokens += out["usage"]["prompt_tokens"]
        return (out["choices"][0]["message"]["content"] or "").strip()

    def chat_many(self, conversations: list[list[Message]], max_new_tokens: int) -> list[str]:
        return [self.chat(m, max_new_tokens) for m in conversations]
