"""What every answer writer is: a ``ChatModel`` (one conversation in, one reply out), a ``BatchChatModel``
that writes several at once, and the one error they raise."""

from __future__ import annotations

from typing import Protocol

Message = dict[str, str]


class LLMError(RuntimeError):
    """The answer writer could not be loaded or did not answer."""


class ChatModel(Protocol):
    name: str

    def chat(self, messages: list[Message], max_new_tokens: int) -> str: ...


class BatchChatModel(ChatModel, Protocol):
    def chat_many(self, conversations: list[list[Message]], max_new_tokens: int) -> list[str]: ...
