"""``LocalLLM``: the shipped SmolLM2 GGUF (or another instruct GGUF) answering on the CPU or a GPU.

Loading goes through ``graphs.llm.convert`` (the de-quantized weights are cached after the first load).
On the CPU, prompts are read with ``graphs.llm.attention`` (``attention="sectionrag"``, the default), and
where the CPU has no bfloat16 products, bfloat16 linears are widened (``graphs.llm.widen``).
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

from graphs.llm.convert import default_gguf_path, load_float32
from graphs.llm.models import LOCAL_MODELS, local_model_path
from graphs.llm.protocol import Message
from graphs.llm.widen import widen_linears
from pipeline.config import LOCAL_ATTENTIONS, resolve_dtype
from pipeline.host import native_bf16_cpu

PAD_ID = 0
"""Left padding of a batch uses ``<|endoftext|>``, not the end-of-turn token the tokenizer pads with:
the repetition penalty counts every input id, and padding with end-of-turn would make padded
conversations less likely to stop."""


class LocalLLM:
    """A small instruct model on the CPU (or GPU), greedy decoding with its own chat template.

    ``chat_many`` writes several conversations in one batched ``generate`` (left-padded). A decoding
    step for 4 conversations costs about 1.3 times one step for a single one (bfloat16, 2 threads, AMX
    CPU), so batches pay where decoding dominates.

    >>> llm = LocalLLM()
    >>> llm.chat([{"role": "user", "content": "Say hi."}], max_new_tokens=8)
    """

    def __init__(self, gguf_path: str | Path | None = None, device: str = "cpu", dtype: str = "float32",
                 attention: str = "sectionrag") -> None:
        if attention not in LOCAL_ATTENTIONS:
            raise ValueError(f"attention must be 'sectionrag' or 'sdpa', got {attention!r}")
        self.model_ref = str(gguf_path) if gguf_path else ""
        """A name in ``graphs.llm.models.LOCAL_MODELS`` or the path of a GGUF file; empty: SmolLM2."""
        self.device = device
        self.attention = attention
        """``sectionrag``: our CPU attention (graphs/llm/attention.py) on the CPU, SDPA elsewhere;
        ``sdpa``: transformers' SDPA everywhere."""
        self.dtype = resolve_dtype(dtype, device)
        self._model = None
        self._tokenizer = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        if not self.model_ref:
            return default_gguf_path().stem
        return self.model_ref if self.model_ref in LOCAL_MODELS else Path(self.model_ref).stem

    @property
    def gguf_path(self) -> Path:
        """The GGUF file read (a packaged model is reassembled and verified on first use)."""
        return local_model_path(self.model_ref)

    @property
    def tokenizer(self):
        """The model's tokenizer (loads the model first if needed)."""
        self.warm_up()
        return self._tokenizer

    @property
    def model(self):
        """The transformers decoder, on ``device`` in ``dtype`` (loads it first if needed)."""
        self.warm_up()
        return self._model

    def warm_up(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            import torch

            tok, model = load_float32(self.gguf_path)
            model = model.to(self.device, dtype=getattr(torch, self.dtype)).eval()
            if self.device == "cpu" and self.dtype == "bfloat16" and not native_bf16_cpu():
                widen_linears(model)
            if self.device == "cpu" and self.attention == "sectionrag":  # see graphs/llm/attention.py
                from graphs.llm.attention import register

                model.set_attn_implementation(register())
            self._model = model
            self._tokenizer = tok

    def chat(self, messages: list[Message], max_new_tokens: int) -> str:
        return self.chat_many([messages], max_new_tokens)[0]

    def chat_many(self, conversations: list[list[Message]], max_new_tokens: int) -> list[str]:
        """One reply per conversation, all decoded in one batch (a batch of one is not padded)."""
        import torch

        if not conversations:
            return []
        self.warm_up()
        tok = self._tokenizer
        ids = [tok.apply_chat_template(m, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
               for m in conversations]
        width = max(map(len, ids))
        input_ids = torch.tensor([[PAD_ID] * (width - len(x)) + list(x) for x in ids], device=self.device)
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], device=self.device)
        with torch.inference_mode(), warnings.catch_warnings():
            # transformers >= 5.24 renames the argument ``cache``; older releases know only this name
            warnings.filterwarnings("ignore", message=".*past_key_values.*", category=FutureWarning)
            cache = self._prefill(ids, width, max_new_tokens) if len(ids) > 1 else None
            out = self._model.generate(input_ids=input_ids, attention_mask=mask, past_key_values=cache,
                                       max_new_tokens=max_new_tokens, do_sample=False, repetition_penalty=1.1,
                                       pad_token_id=tok.eos_token_id)
        return [tok.decode(row[width:], skip_special_tokens=True).strip() for row in out]

    def _prefill(self, ids: list[list[int]], width: int, max_new_tokens: int):
        """The batch's key/value cache for all but each prompt's last token, left-padded to ``width - 1``.

        Every prompt is read on its own: a padded batch would need an attention mask, and masked attention
        over whole prompts ran 2.4 times slower on a CPU than reading the prompts one by one. The cache
        is a ``StaticCache`` sized for the whole generation, written in place as tokens are decoded.
        Generation then reads the last prompt tokens together and decodes the batch as one."""
        import torch
        import torch.nn.functional as F
        from transformers import StaticCache

        # logits_to_keep=1: only the cache is kept, and logits for every prompt token would cost a
        # vocabulary-wide product per token (and hundreds of MB for a long prompt) for nothing
        singles = [self._model(input_ids=torch.tensor([x[:-1]], device=self.device), use_cache=True,
                               logits_to_keep=1).past_key_values
                   for x in ids]
        cache = StaticCache(config=self._model.config, max_cache_len=width + max_new_tokens)
        for i in range(len(singles[0].layers)):
            pad = [width - 1 - c.layers[i].keys.shape[2] for c in singles]
            keys = torch.cat([F.pad(c.layers[i].keys, (0, 0, p, 0)) for c, p in zip(singles, pad, strict=True)])
            values = torch.cat([F.pad(c.layers[i].values, (0, 0, p, 0)) for c, p in zip(singles, pad, strict=True)])
            cache.update(keys, values, i, {"cache_position": torch.arange(width - 1, device=self.device)})
        return cache
