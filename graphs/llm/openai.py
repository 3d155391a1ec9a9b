"""``OpenAICompatibleLLM``: the answer writer as any chat-completions server."""

from __future__ import annotations

from graphs.llm.protocol import LLMError, Message


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
