"""The shared merge/split rule on hand-made documents."""

from __future__ import annotations

from ingest.sectionizers.tree import Heading, _merge, _Unit, build_sections
from pipeline.types import Document


def _doc(text: str) -> Document:
    return Document(id="d", source="d.txt", text=text)


def test_small_siblings_merge_up_to_target_and_hard_ones_do_not():
    body = "word " * 40
    parts = [f"Clause {i}\n{body}\n" for i in range(1, 7)]
    text = "".join(parts) + "EXHIBIT A\n" + body
    starts = [sum(len(p) for p in parts[:i]) for i in range(6)]
    heads = [Heading(start=s, level=1, title=f"Clause {i + 1}") for i, s in enumerate(starts)]
    heads.append(Heading(start=len("".join(parts)), level=1, title="EXHIBIT A", hard=True))
    sections = build_sections(_doc(text), heads, target_tokens=100, max_tokens=1000, open_root=True)
    assert [s.path for s in sections] == [("Clause 1 … Clause 2",), ("Clause 3 … Clause 4",), ("Clause 5 … Clause 6",),
                                          ("EXHIBIT A",)]
    assert all(text[s.start:s.end] == s.text for s in sections)
    assert "".join(c for s in sections for c in s.text if not c.isspace()) == "".join(c for c in text if not c.isspace())


def test_split_pieces_merge_with_both_labels():
    units = [_Unit(0, 10, ("A", "part 1 of 3"), ("A", "#split"), False, 40, "part 1 of 3"),
             _Unit(10, 20, ("A", "part 2 of 3"), ("A", "#split"), False, 10, "part 2 of 3"),
             _Unit(20, 30, ("A", "part 3 of 3"), ("A", "#split"), False, 10, "part 3 of 3")]
    merged = _merge(units, target_tokens=50)
    assert [u.path for u in merged] == [("A", "part 1 of 3 … part 2 of 3"), ("A", "part 3 of 3")]


def test_leaf_over_the_maximum_is_split_at_paragraphs():
    text = "Intro\n" + "\n\n".join("sentence " * 30 for _ in range(6))
    sections = build_sections(_doc(text), [Heading(0, 1, "Intro")], target_tokens=50, max_tokens=70, open_root=True)
    assert len(sections) >= 3 and all(s.tokens <= 70 for s in sections)
    assert all(s.path[-1].startswith("part ") or s.path == ("Intro",) for s in sections)
