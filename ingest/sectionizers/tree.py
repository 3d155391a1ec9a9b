"""From headings to sections: the structure-following merge/split rule every sectionizer shares.

A sectionizer finds headings (offset, level, title); this module turns them into a tree and then
into sections:

* a node whose whole span fits ``max_tokens`` is kept whole, unless it contains *hard* headings
  (a 10-K's Items, a contract's Exhibits): those are always section boundaries;
* a node over ``max_tokens`` is opened into its intro and its children; a leaf over the maximum is
  split at its paragraph breaks (then line breaks, then sentences: always a structural boundary
  before an arbitrary one);
* consecutive small sibling units merge while the merged span stays within ``target_tokens``;
  hard units never merge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ingest.tokens import TokenCounter
from pipeline.text import sentence_spans, trim_span
from pipeline.types import Document, Section


@dataclass(frozen=True, slots=True)
class Heading:
    """A structural boundary: the section it opens starts at ``start`` (the heading's first char)."""

    start: int
    level: int
    title: str
    hard: bool = False


@dataclass
class _Node:
    title: str
    level: int
    start: int
    end: int
    hard: bool = False
    path: tuple[str, ...] = ()
    children: list[_Node] = field(default_factory=list)

    def contains_hard(self) -> bool:
        return any(c.hard or c.contains_hard() for c in self.children)


@dataclass
class _Unit:
    start: int
    end: int
    path: tuple[str, ...]
    parent: tuple[str, ...]
    hard: bool
    tokens: int
    label: str = ""
    """The unit's own title under ``parent`` ("" for a node's intro); merged units join first … last."""


def _build_tree(doc: Document, headings: list[Heading], root_title: str) -> _Node:
    root = _Node(title=root_title, level=0, start=0, end=len(doc.text), path=(root_title,) if root_title else ())
    stack = [root]
    for h in sorted(headings, key=lambda h: (h.start, h.level)):
        if not 0 <= h.start < len(doc.text):
            continue
        if stack[-1] is not root and stack[-1].start == h.start and stack[-1].level >= h.level:
            # two headings of one level at one offset: keep the first. Checked before the stack is popped,
            # which would close the first at its own start and leave its text to no section.
            continue
        while stack[-1].level >= h.level:
            done = stack.pop()
            done.end = h.start
        parent = stack[-1]
        node = _Node(title=h.title, level=h.level, start=h.start, end=len(doc.text), hard=h.hard,
                     path=parent.path + (h.title,))
        parent.children.append(node)
        stack.append(node)
    return root


_BREAKS = (re.compile(r"\n[ \t]*\n"), re.compile(r"\n"))


def _split_leaf(text: str, start: int, end: int, counter: TokenCounter, max_tokens: int) -> list[tuple[int, int]]:
    """Cuts ``[start, end)`` into pieces ≤ max_tokens at the coarsest boundaries that suffice."""
    for pattern in _BREAKS:
        cuts = [m.end() for m in pattern.finditer(text, start, end)]
        if cuts:
            break
    else:
        cuts = [s for s, _ in sentence_spans(text, start, end)][1:]
    pieces, piece_start, last_cut = [], start, start
    for cut in [*cuts, end]:
        if counter.count(piece_start, cut) > max_tokens and last_cut > piece_start:
            pieces.append((piece_start, last_cut))
            piece_start = last_cut
        last_cut = cut
    pieces.append((piece_start, end))
    out = []
    for s, e in pieces:
        if counter.count(s, e) > max_tokens and (s, e) != (start, end):
            out += _split_leaf(text, s, e, counter, max_tokens)
        elif counter.count(s, e) > max_tokens:
            # no boundary of any kind: an unbroken run of text, cut by tokens as the last resort
            out += _cut_by_tokens(s, e, counter, max_tokens)
        else:
            out.append((s, e))
    return out


def _cut_by_tokens(start: int, end: int, counter: TokenCounter, max_tokens: int) -> list[tuple[int, int]]:
    starts = counter.starts_between(start, end)
    bounds = [start, *(int(s) for s in starts[max_tokens::max_tokens]), end]
    return list(zip(bounds[:-1], bounds[1:]))


def _units(node: _Node, doc: Document, counter: TokenCounter, max_tokens: int, parent: tuple[str, ...],
           force_open: bool = False) -> list[_Unit]:
    tokens = counter.count(node.start, node.end)
    fits = (tokens <= max_tokens and not node.contains_hard()) or (not node.children and tokens <= max_tokens)
    if fits and not force_open:
        return [_Unit(node.start, node.end, node.path, parent, node.hard, tokens, label=node.title)]
    out: list[_Unit] = []
    intro_end = node.children[0].start if node.children else node.end
    if trim_span(doc.text, node.start, intro_end)[1] > trim_span(doc.text, node.start, intro_end)[0]:
        intro_tokens = counter.count(node.start, intro_end)
        if intro_tokens <= max_tokens:
            out.append(_Unit(node.start, intro_end, node.path, node.path, False, intro_tokens))
        else:
            pieces = _split_leaf(doc.text, node.start, intro_end, counter, max_tokens)
            for k, (s, e) in enumerate(pieces, 1):
                path = node.path + (f"part {k} of {len(pieces)}",) if len(pieces) > 1 else node.path
                out.append(_Unit(s, e, path, node.path + ("#split",), False, counter.count(s, e),
                                 label=path[-1] if len(pieces) > 1 else ""))
    for child in node.children:
        out += _units(child, doc, counter, max_tokens, node.path)
    return out


def _merge(units: list[_Unit], target_tokens: int) -> list[_Unit]:
    merged: list[_Unit] = []
    for u in units:
        prev = merged[-1] if merged else None
        if (prev is not None and not prev.hard and not u.hard and prev.parent == u.parent
                and prev.end == u.start and prev.tokens + u.tokens <= target_tokens):
            first = prev.label.split(" … ")[0]
            if first:
                label = f"{first} … {u.label}" if u.label and u.label != first else first
                path = prev.path[:-1] + (label,)
            else:  # a node's intro absorbing its first children keeps the node's own path
                label, path = "", prev.path
            merged[-1] = _Unit(prev.start, u.end, path, prev.parent, False, prev.tokens + u.tokens, label=label)
        else:
            merged.append(u)
    return merged


def build_sections(
    doc: Document,
    headings: list[Heading],
    *,
    target_tokens: int,
    max_tokens: int,
    root_title: str = "",
    counter: TokenCounter | None = None,
    open_root: bool = False,
) -> list[Section]:
    """Headings → sections covering the document in order (whitespace-only spans dropped).

    ``open_root``: open the document into its top-level parts even when it fits ``max_tokens`` (they
    still merge up to ``target_tokens``), instead of keeping a short document as one section.
    """
    counter = counter or TokenCounter(doc.text)
    root = _build_tree(doc, headings, root_title)
    units = _merge(_units(root, doc, counter, max_tokens, (), force_open=open_root), target_tokens)
    sections: list[Section] = []
    for u in units:
        s, e = trim_span(doc.text, u.start, u.end)
        if e <= s:
            continue
        text = doc.text[s:e]
        sections.append(Section(id=Section.make_id(doc.id, s, e, text), doc_id=doc.id, path=u.path or (doc.title or doc.id,),
                                start=s, end=e, text=text, pages=doc.pages_of(s, e), tokens=counter.count(s, e),
                                ordinal=len(sections)))
    return sections
