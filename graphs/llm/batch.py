"""``ChatBatcher``: worker threads sharing one batched answer writer, in turns, deterministically."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from graphs.llm.protocol import BatchChatModel, Message


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
