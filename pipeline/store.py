"""The section store: documents, sections and passages (with their embeddings) in one SQLite file.

Everything a question needs is here; the FAISS file beside it (``pipeline.index``) is derived from
the embeddings stored in this database and is rebuilt from them whenever it is missing or stale, so
a job killed between the two writes loses nothing. Each document is written in one transaction:
after a crash a document is either wholly stored or absent.

The lexical index is SQLite FTS5 over passage text (BM25 ranking).
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from pipeline.locks import owner_only
from pipeline.text import STOPWORDS
from pipeline.types import Document, Passage, Section

DB_NAME = "sections.sqlite"
SCHEMA_VERSION = 2
"""2: passages carry their context line (what document and section they are from), indexed by FTS5 beside their
text. A version-1 store is migrated when opened (its passages get an empty context until re-ingested)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, sha TEXT NOT NULL, doc_ids TEXT NOT NULL, ingested_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY, source TEXT NOT NULL, kind TEXT NOT NULL, title TEXT NOT NULL,
    sha TEXT NOT NULL, text TEXT NOT NULL, page_starts TEXT NOT NULL, metadata TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sections (
    id TEXT PRIMARY KEY, doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL, path TEXT NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    pages TEXT NOT NULL, tokens INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS sections_doc ON sections(doc_id, ordinal);
CREATE TABLE IF NOT EXISTS passages (
    rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
    doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    section_id TEXT NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    text TEXT NOT NULL, embedding BLOB NOT NULL, context TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS passages_doc ON passages(doc_id);
CREATE INDEX IF NOT EXISTS passages_section ON passages(section_id);
CREATE VIRTUAL TABLE IF NOT EXISTS passages_fts USING fts5(
    text, context, content='passages', content_rowid='rowid', tokenize='porter unicode61');
"""
_MIGRATE_1_TO_2 = """
ALTER TABLE passages ADD COLUMN context TEXT NOT NULL DEFAULT '';
DROP TABLE passages_fts;
CREATE VIRTUAL TABLE passages_fts USING fts5(
    text, context, content='passages', content_rowid='rowid', tokenize='porter unicode61');
"""


class StoreError(Exception):
    """A store that cannot be used (missing, not a sectionrag store, or corrupt)."""


class SectionStore:
    """SQLite-backed store of documents, sections and embedded passages under a folder.

    >>> store = SectionStore("store/", create=True)
    >>> store.put_document(doc, sections, passages, embeddings, file_path="a.txt", file_sha="…")
    >>> [s.path for s in store.sections("a")]
    """

    def __init__(self, folder: str | Path, *, create: bool = False) -> None:
        self.folder = Path(folder)
        db = self.folder / DB_NAME
        if not db.exists():
            if not create:
                raise StoreError(
                    f"no sectionrag store at {self.folder}: run `sectionrag ingest PATH --store {self.folder}` first"
                )
            for folder in reversed([self.folder, *self.folder.parents]):  # the store's own folders are the owner's
                if not folder.exists():
                    folder.mkdir(mode=0o700)
            owner_only(db)
        try:
            # check_same_thread=False: Pipeline.ask_many and the harness's --batch answer from worker
            # threads that take turns (one at a time), so the connection is never used concurrently
            self.conn = sqlite3.connect(db, timeout=60.0, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            if self._meta_if_any() == "1":
                self._migrate_1_to_2()
            self.conn.executescript(_SCHEMA)
            version = self._meta("schema_version")
            if version is None:
                with self.conn:
                    self._set_meta("schema_version", str(SCHEMA_VERSION))
                    self._set_meta("generation", "0")
            elif int(version) != SCHEMA_VERSION:
                raise StoreError(f"store {self.folder} has schema {version}, this sectionrag reads {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{db} is not a usable sectionrag store: {exc}") from None
        self._idle: list[sqlite3.Connection] = []
        self._idle_lock = threading.Lock()

    def close(self) -> None:
        self.conn.close()
        with self._idle_lock:
            for conn in self._idle:
                conn.close()
            self._idle.clear()

    @contextmanager
    def snapshot(self) -> Iterator[SectionStore]:
        """A read-only view of the store as one committed version: everything read through it (documents,
        sections, passages, embeddings, the generation) comes from the same version, whatever other threads
        or processes write meanwhile. A question reads through one view from retrieval to citation, so a
        document deleted halfway through is either wholly there for it or wholly absent.

        >>> with store.snapshot() as view:
        ...     view.generation, view.document_ids()
        """
        with self._idle_lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = sqlite3.connect(self.folder / DB_NAME, timeout=60.0, check_same_thread=False)
            conn.execute("PRAGMA query_only=ON")
        conn.execute("BEGIN")
        try:
            view = _StoreView(self.folder, conn)
            yield view
        finally:
            conn.rollback()
            with self._idle_lock:
                self._idle.append(conn)

    # -- bookkeeping ---------------------------------------------------------------------------
    def _migrate_1_to_2(self) -> None:
        """Version 1 → 2 in one transaction: each passage's context line, made from its document's stored metadata
        and its section's heading path, is stored and indexed beside its text."""
        from pipeline.passages import context_header

        self.conn.execute("BEGIN")
        try:
            for statement in filter(str.strip, _MIGRATE_1_TO_2.split(";")):
                self.conn.execute(statement)
            docs = {r[0]: Document(id=r[0], source="", text="", kind=r[1], title=r[2],
                                   metadata=tuple(sorted(json.loads(r[3]).items())))
                    for r in self.conn.execute("SELECT id, kind, title, metadata FROM documents")}
            for sid, doc_id, ordinal, path in self.conn.execute(
                    "SELECT id, doc_id, ordinal, path FROM sections").fetchall():
                section = Section(id=sid, doc_id=doc_id, ordinal=ordinal, path=tuple(json.loads(path)), start=0, end=0,
                                  text="", pages=(1,), tokens=0)
                self.conn.execute("UPDATE passages SET context=? WHERE section_id=?",
                                  (context_header(docs[doc_id], section), sid))
            self.conn.execute("INSERT INTO passages_fts(passages_fts) VALUES ('rebuild')")
            self._set_meta("schema_version", "2")
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def _meta_if_any(self) -> str | None:
        """The schema version of an existing store (``None`` for a new one)."""
        if not self.conn.execute("SELECT 1 FROM sqlite_master WHERE name='meta'").fetchone():
            return None
        return self._meta("schema_version")

    def _meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    @property
    def generation(self) -> int:
        """Bumped by every write; the FAISS file records the generation it was built from."""
        return int(self._meta("generation") or 0)

    def file_sha(self, path: str) -> str | None:
        row = self.conn.execute("SELECT sha FROM files WHERE path=?", (path,)).fetchone()
        return row[0] if row else None

    # -- writing -------------------------------------------------------------------------------
    def put_file(
        self,
        path: str,
        sha: str,
        items: Sequence[tuple[Document, Sequence[Section], Sequence[Passage], np.ndarray]
                        | tuple[Document, Sequence[Section], Sequence[Passage], np.ndarray, Sequence[str]]],
    ) -> tuple[list[int], list[int]]:
        """Store every document one file produced, replacing what the file produced before.

        One transaction: after a crash the file is either wholly stored (and will be skipped) or
        not recorded at all (and will be ingested again). Returns the passage rowids removed and
        the rowids added (in the order of the passages given).
        """
        removed: list[int] = []
        added: list[int] = []
        with self.conn:
            old = self.conn.execute("SELECT doc_ids FROM files WHERE path=?", (path,)).fetchone()
            old_ids = set(json.loads(old[0])) if old else set()
            new_ids = {doc.id for doc, *_ in items}
            for doc_id in old_ids | new_ids:
                removed += self._delete_document(doc_id)
            for doc, sections, passages, embeddings, *contexts in items:
                added += self._insert_document(doc, sections, passages, embeddings, contexts[0] if contexts else None)
            self.conn.execute(
                "INSERT OR REPLACE INTO files(path, sha, doc_ids, ingested_at) VALUES (?, ?, ?, ?)",
                (path, sha, json.dumps(sorted(new_ids)), time.time()),
            )
            self._set_meta("generation", str(self.generation + 1))
        return removed, added

    def _delete_document(self, doc_id: str) -> list[int]:
        rows = self.conn.execute("SELECT rowid, text, context FROM passages WHERE doc_id=?", (doc_id,)).fetchall()
        for rowid, text, context in rows:
            self.conn.execute(
                "INSERT INTO passages_fts(passages_fts, rowid, text, context) VALUES ('delete', ?, ?, ?)",
                (rowid, text, context),
            )
        self.conn.execute("DELETE FROM passages WHERE doc_id=?", (doc_id,))
        self.conn.execute("DELETE FROM sections WHERE doc_id=?", (doc_id,))
        self.conn.execute("DELETE FROM documents WHERE id=?", (doc_id,))
        return [r[0] for r in rows]

    def _insert_document(
        self, doc: Document, sections: Sequence[Section], passages: Sequence[Passage], embeddings: np.ndarray,
        contexts: Sequence[str] | None = None,
    ) -> list[int]:
        if len(passages) != len(embeddings):
            raise ValueError("one embedding per passage is required")
        contexts = list(contexts) if contexts is not None else [""] * len(passages)
        if len(contexts) != len(passages):
            raise ValueError("one context line per passage is required")
        self.conn.execute(
            "INSERT INTO documents(id, source, kind, title, sha, text, page_starts, metadata) VALUES (?,?,?,?,?,?,?,?)",
            (doc.id, doc.source, doc.kind, doc.title, doc.sha, doc.text,
             json.dumps(list(doc.page_starts)), json.dumps(dict(doc.metadata))),
        )
        self.conn.executemany(
            'INSERT INTO sections(id, doc_id, ordinal, path, start, "end", pages, tokens) VALUES (?,?,?,?,?,?,?,?)',
            [(s.id, s.doc_id, s.ordinal, json.dumps(list(s.path)), s.start, s.end, json.dumps(list(s.pages)), s.tokens)
             for s in sections],
        )
        emb = np.ascontiguousarray(embeddings, dtype=np.float32)
        rowids = []
        for p, vec, context in zip(passages, emb, contexts, strict=True):
            cur = self.conn.execute(
                'INSERT INTO passages(id, doc_id, section_id, start, "end", text, embedding, context) '
                "VALUES (?,?,?,?,?,?,?,?)",
                (p.id, p.doc_id, p.section_id, p.start, p.end, p.text, vec.tobytes(), context),
            )
            self.conn.execute("INSERT INTO passages_fts(rowid, text, context) VALUES (?, ?, ?)",
                              (cur.lastrowid, p.text, context))
            rowids.append(cur.lastrowid)
        return rowids

    # -- reading -------------------------------------------------------------------------------
    def document(self, doc_id: str) -> Document:
        row = self.conn.execute(
            "SELECT id, source, text, kind, page_starts, title, sha, metadata FROM documents WHERE id=?", (doc_id,)
        ).fetchone()
        if row is None:
            raise KeyError(f"no document {doc_id!r} in store {self.folder}")
        return Document(id=row[0], source=row[1], text=row[2], kind=row[3],
                        page_starts=tuple(json.loads(row[4])), title=row[5], sha=row[6],
                        metadata=tuple(sorted(json.loads(row[7]).items())))

    def document_sources(self) -> list[tuple[str, str]]:
        """``(doc_id, source path)`` of every stored document."""
        return [(r[0], r[1]) for r in self.conn.execute("SELECT id, source FROM documents ORDER BY id")]

    def document_ids(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT id FROM documents ORDER BY id")]

    def document_text(self, doc_id: str) -> str:
        row = self.conn.execute("SELECT text FROM documents WHERE id=?", (doc_id,)).fetchone()
        if row is None:
            raise KeyError(f"no document {doc_id!r} in store {self.folder}")
        return row[0]

    _SECTION_COLS = 's.id, s.doc_id, s.ordinal, s.path, s.start, s."end", s.pages, s.tokens, substr(d.text, s.start + 1, s."end" - s.start)'

    def _section(self, row: tuple) -> Section:
        return Section(id=row[0], doc_id=row[1], ordinal=row[2], path=tuple(json.loads(row[3])), start=row[4],
                       end=row[5], pages=tuple(json.loads(row[6])), tokens=row[7], text=row[8])

    def sections(self, doc_id: str | None = None) -> list[Section]:
        sql = f"SELECT {self._SECTION_COLS} FROM sections s JOIN documents d ON d.id = s.doc_id"
        if doc_id is None:
            rows = self.conn.execute(sql + " ORDER BY s.doc_id, s.ordinal")
        else:
            rows = self.conn.execute(sql + " WHERE s.doc_id=? ORDER BY s.ordinal", (doc_id,))
        return [self._section(r) for r in rows]

    def sections_by_id(self, ids: Iterable[str]) -> dict[str, Section]:
        ids = list(dict.fromkeys(ids))
        out: dict[str, Section] = {}
        for chunk in _chunks(ids, 500):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT {self._SECTION_COLS} FROM sections s JOIN documents d ON d.id = s.doc_id WHERE s.id IN ({marks})"
            for r in self.conn.execute(sql, chunk):
                out[r[0]] = self._section(r)
        return out

    def passages_by_rowid(self, rowids: Iterable[int]) -> dict[int, Passage]:
        rowids = list(dict.fromkeys(int(r) for r in rowids))
        out: dict[int, Passage] = {}
        for chunk in _chunks(rowids, 500):
            marks = ",".join("?" * len(chunk))
            for r in self.conn.execute(
                f'SELECT rowid, id, doc_id, section_id, start, "end", text FROM passages WHERE rowid IN ({marks})', chunk
            ):
                out[r[0]] = Passage(id=r[1], doc_id=r[2], section_id=r[3], start=r[4], end=r[5], text=r[6])
        return out

    def passages(self, limit: int | None = None) -> list[Passage]:
        """Passages in the order they were stored, at most ``limit``."""
        sql = 'SELECT rowid, id, doc_id, section_id, start, "end", text FROM passages ORDER BY rowid'
        rows = self.conn.execute(sql + " LIMIT ?", (limit,)) if limit is not None else self.conn.execute(sql)
        return [Passage(id=r[1], doc_id=r[2], section_id=r[3], start=r[4], end=r[5], text=r[6]) for r in rows]

    def passages_of_section(self, section_id: str) -> list[tuple[int, Passage]]:
        """``(rowid, passage)`` of one section in document order."""
        rows = self.conn.execute(
            'SELECT rowid, id, doc_id, section_id, start, "end", text FROM passages WHERE section_id=? ORDER BY start',
            (section_id,))
        return [(r[0], Passage(id=r[1], doc_id=r[2], section_id=r[3], start=r[4], end=r[5], text=r[6])) for r in rows]

    def passage_rowids(self, doc_ids: Iterable[str]) -> np.ndarray:
        doc_ids = list(doc_ids)
        found: list[int] = []
        for chunk in _chunks(doc_ids, 500):
            marks = ",".join("?" * len(chunk))
            found += [r[0] for r in self.conn.execute(f"SELECT rowid FROM passages WHERE doc_id IN ({marks})", chunk)]
        return np.asarray(found, dtype=np.int64)

    def iter_embeddings(self, batch: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yields ``(rowids [N], embeddings [N, D])`` over every stored passage."""
        last = -1
        while True:
            rows = self.conn.execute(
                "SELECT rowid, embedding FROM passages WHERE rowid > ? ORDER BY rowid LIMIT ?", (last, batch)
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            ids = np.asarray([r[0] for r in rows], dtype=np.int64)
            vecs = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
            yield ids, vecs

    def embeddings_of(self, rowids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Embeddings [N, D] of the given passage rowids, in that order."""
        ids = [int(r) for r in rowids]
        found: dict[int, bytes] = {}
        for chunk in _chunks(ids, 500):
            marks = ",".join("?" * len(chunk))
            found.update(self.conn.execute(f"SELECT rowid, embedding FROM passages WHERE rowid IN ({marks})", chunk))
        return np.stack([np.frombuffer(found[r], dtype=np.float32) for r in ids]) if ids else np.zeros((0, 0), np.float32)

    def sample_embeddings(self, n: int, seed: int = 0) -> np.ndarray:
        """Up to ``n`` stored embeddings [n', D] drawn uniformly (seeded), e.g. to train IVF cells."""
        rowids = np.asarray([r[0] for r in self.conn.execute("SELECT rowid FROM passages")], dtype=np.int64)
        if len(rowids) > n:
            rowids = np.sort(np.random.default_rng(seed).choice(rowids, size=n, replace=False))
        return self.embeddings_of(rowids) if len(rowids) else np.zeros((0, 0), np.float32)

    def delete_documents(self, doc_ids: Iterable[str]) -> list[int]:
        """Removes documents (their sections and passages) in one transaction; returns the passage
        rowids removed. The files that produced them are forgotten too, so ingesting such a file
        again stores it afresh instead of skipping it as unchanged."""
        doc_ids = set(doc_ids)
        removed: list[int] = []
        with self.conn:
            for doc_id in doc_ids:
                removed += self._delete_document(doc_id)
            for path, ids in self.conn.execute("SELECT path, doc_ids FROM files").fetchall():
                if doc_ids & set(json.loads(ids)):
                    self.conn.execute("DELETE FROM files WHERE path=?", (path,))
            self._set_meta("generation", str(self.generation + 1))
        return removed

    def kinds_and_titles(self, doc_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """``{doc_id: (kind, title)}`` of the given stored documents (their texts are not read)."""
        ids = list(dict.fromkeys(doc_ids))
        out: dict[str, tuple[str, str]] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            rows = self.conn.execute(f"SELECT id, kind, title FROM documents WHERE id IN ({','.join('?' * len(chunk))})",
                                     chunk)
            out.update({r[0]: (r[1], r[2]) for r in rows})
        return out

    def document_metadata(self) -> list[tuple[str, str, str, dict[str, str]]]:
        """``(doc_id, kind, title, metadata)`` for every stored document."""
        return [(r[0], r[1], r[2], json.loads(r[3]))
                for r in self.conn.execute("SELECT id, kind, title, metadata FROM documents ORDER BY id")]

    def lexical_search(self, query: str, k: int, doc_ids: Sequence[str] | None = None) -> list[tuple[int, float]]:
        """BM25 over passage text and context line (equal weights): ``[(passage rowid, score)]``, best first
        (higher is better)."""
        # function words match nearly every passage: in an OR query they only add noise to the ranking
        terms = [t for t in re.findall(r"\w+", query.lower()) if len(t) > 1 and t not in STOPWORDS]
        # "FY2015" / "FY15" also as the year a context line spells out ("fiscal 2015")
        terms += ["20" + y[-2:] if len(y) == 2 else y for y in re.findall(r"\bfy'?((?:19|20)?\d\d)\b", query.lower())]
        if not terms:
            return []
        match = " OR ".join(f'"{t}"' for t in dict.fromkeys(terms))
        sql = "SELECT f.rowid, -bm25(passages_fts) AS score FROM passages_fts f"
        args: list = [match]
        if doc_ids:
            marks = ",".join("?" * len(doc_ids))
            sql += f" JOIN passages p ON p.rowid = f.rowid WHERE passages_fts MATCH ? AND p.doc_id IN ({marks})"
            args += list(doc_ids)
        else:
            sql += " WHERE passages_fts MATCH ?"
        sql += " ORDER BY bm25(passages_fts) LIMIT ?"
        args.append(k)
        return [(r[0], float(r[1])) for r in self.conn.execute(sql, args)]

    def counts(self) -> dict[str, int]:
        q = self.conn.execute
        return {
            "documents": q("SELECT count(*) FROM documents").fetchone()[0],
            "sections": q("SELECT count(*) FROM sections").fetchone()[0],
            "passages": q("SELECT count(*) FROM passages").fetchone()[0],
        }


class _StoreView(SectionStore):
    """What ``SectionStore.snapshot`` yields: the store's reads over a connection held in one read transaction."""

    def __init__(self, folder: Path, conn: sqlite3.Connection) -> None:
        self.folder, self.conn = folder, conn
        _ = self.generation  # the first read fixes the version the view sees (WAL)

    @contextmanager
    def snapshot(self) -> Iterator[SectionStore]:
        yield self

    def close(self) -> None:
        """The connection goes back to the store that lent it when the snapshot ends."""


def _chunks(items: list, n: int) -> Iterator[list]:
    for i in range(0, len(items), n):
        yield items[i : i + n]
