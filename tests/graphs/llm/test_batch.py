"""Batched writing with the shipped SmolLM2: ``LocalLLM.chat_many`` and ``ChatBatcher``'s worker turns."""

from __future__ import annotations

import threading

import pytest

from graphs.llm import ChatBatcher, LLMError, LocalLLM

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
