"""Checkpoints of the answer graph in a store folder, so an interrupted question can be resumed.

LangGraph's ``SqliteSaver`` writes each node's update under the run's ``thread_id``. The state holds this
project's frozen records (``pipeline.types``); they are saved with LangGraph's msgpack serializer, read back
only for those classes (a checkpoint file naming any other class is refused, so a tampered file cannot make
the loader build arbitrary objects), and their tuple fields, which msgpack turns into lists, are restored.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path
from typing import Any

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

import pipeline.types as types

RECORDS = tuple(obj for obj in vars(types).values()
                if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == types.__name__)
"""The record classes a checkpoint may hold."""


def _deep_tuple(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_deep_tuple(v) for v in value)
    return _restore(value)


def _restore(value: Any) -> Any:
    """``value`` with every tuple-typed field of its records (at any depth) a tuple again."""
    if isinstance(value, list):
        return [_restore(v) for v in value]
    if isinstance(value, dict):
        return {k: _restore(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for f in dataclasses.fields(value):
            current = getattr(value, f.name)
            fixed = _deep_tuple(current) if str(f.type).startswith("tuple") else _restore(current)
            if fixed is not current:
                changes[f.name] = fixed
        return dataclasses.replace(value, **changes) if changes else value
    return value


class RecordSerializer(JsonPlusSerializer):
    """LangGraph's serializer, allowed to rebuild exactly the ``pipeline.types`` records, tuples kept."""

    def __init__(self) -> None:
        super().__init__(allowed_msgpack_modules=[(cls.__module__, cls.__name__) for cls in RECORDS])

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        return _restore(super().loads_typed(data))


def sqlite_checkpointer(path: Path):
    """A ``SqliteSaver`` on ``path`` (created if missing) and its connection (close it when done)."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    conn = sqlite3.connect(path, check_same_thread=False)
    return SqliteSaver(conn, serde=RecordSerializer()), conn
