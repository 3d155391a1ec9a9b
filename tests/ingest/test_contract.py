"""The contract sectionizer on real CUAD contracts (fixtures) and hand-made snippets; corpus checks behind ``slow``."""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import replace
from pathlib import Path

import pytest

from ingest.readers import read
from ingest.sectionizers import sectionize
from ingest.sectionizers.contract import find_headings
from pipeline.types import Document

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "contract"
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _doc(text: str, doc_id: str = "c") -> Document:
    return Document(id=doc_id, source=doc_id, text=text, kind="contract", title=doc_id)


def _fixture(name: str) -> Document:
    return replace(read(FIXTURES / name)[0], kind="contract")


def _titles(doc: Document) -> list[str]:
    return [h.title for h in find_headings(doc)]


def _numbers(titles: list[str]) -> list[str]:
    return [m.group(1) for t in titles if (m := re.match(r"(?:Section )?(\d+(?:\.\d+)*)\.? ", t))]


def test_inline_contract_hierarchy_follows_the_numbering():
    doc = _fixture("cuad_inline_services.txt")  # the whole contract sits on a handful of very long lines
    heads = find_headings(doc)
    titles = [h.title for h in heads]
    assert "1. Services" in titles and "1.1 Provision of Services" in titles and "2.3 Invoice Disputes" in titles
    nums = _numbers(titles)
    assert nums[:6] == ["1", "1.1", "1.2", "1.3", "1.4", "2"]
    # "... pursuant to Section 3.2. 3.2 Each of ..." : the clause is a heading, the cross-reference is not
    ref = doc.text.index("Section 3.2. 3.2 Each")
    assert not any(h.start == ref for h in heads)
    assert any(h.start == ref + len("Section 3.2. ") for h in heads)
    level = {h.title: h.level for h in heads}
    assert level["1.1 Provision of Services"] == level["1. Services"] + 1
    assert {"Preamble", "Recitals", "Signatures"} <= set(titles)
    exhibit = [h for h in heads if h.hard]
    assert len(exhibit) == 1 and exhibit[0].title.startswith("EXHIBIT A")
    assert max(h.start for h in heads if not h.hard) < exhibit[0].start


def test_articles_and_sections_nest_and_list_items_inside_a_section_are_not_headings():
    doc = _fixture("cuad_articles_agency.txt")
    heads = find_headings(doc)
    titles = [h.title for h in heads]
    assert titles[titles.index("ARTICLE I GENERAL UNDERTAKING") + 1] == "Section 1.01 Appointment"
    arts = [h for h in heads if h.title.startswith("ARTICLE")]
    secs = [h for h in heads if h.title.startswith("Section")]
    assert [a.title.split()[1] for a in arts] == ["I", "II", "III"]
    assert all(s.level > arts[0].level for s in secs)
    # Section 2.05 lists "1. Lessee 2. ... 3. Basic Term": numbered items that do not follow 2.05's Article
    assert not any(re.match(r"\d\. ", t) for t in titles)


FALSE_POSITIVES = (
    "MASTER SUPPLY AGREEMENT This Agreement is made between Acme Inc. and Beta LLC. "
    "The parties agree as follows: 1. Definitions. Terms have the meanings below. "
    "2. Supply. 2.1 Orders. Buyer shall order at least 1.5 million units by 12.31 each year, "
    "as required under Section 9.2 of the Master Agreement. Buyer may terminate if: 1. Seller fails to deliver; "
    "2. Seller becomes insolvent. 2.2 Prices. The price is $2.50 per unit, 3.5% above list. "
    "3. Term. 3.1 Initial Term. This Agreement lasts 5 years. 3.2 Renewal. It renews for 2. additional years. "
    "IN WITNESS WHEREOF, the parties have signed this Agreement."
)


def test_amounts_dates_cross_references_and_lists_are_not_headings():
    titles = _titles(_doc(FALSE_POSITIVES))
    assert _numbers(titles) == ["1", "2", "2.1", "2.2", "3", "3.1", "3.2"]
    assert titles[-1] == "Signatures" and "Preamble" in titles


def test_line_structured_articles_keep_their_captions_and_give_nested_paths():
    text = (
        "LICENSE AGREEMENT\n\nThis License Agreement is entered into by Licensor and Licensee.\n\n"
        "WHEREAS, Licensor owns the Software;\n\nNOW, THEREFORE, the parties agree as follows:\n\n"
        + "".join(
            f"ARTICLE {a}\n{name}\n\n"
            + "".join(f"{a}.{s} {sub}. " + "The parties shall act in good faith. " * 80 + "\n\n"
                      for s, sub in enumerate(("Scope", "Termination for Cause", "Effect"), 1))
            for a, name in enumerate(("DEFINITIONS", "LICENSE GRANT", "TERM AND TERMINATION"), 1))
        + "IN WITNESS WHEREOF, the parties have executed this Agreement.\n\nEXHIBIT A\nPRICE LIST\n\nFee: $10.\n"
    )
    doc = _doc(text)
    sections = sectionize(doc, target_tokens=600, max_tokens=1500)
    paths = [s.path for s in sections]
    assert ("ARTICLE 3 TERM AND TERMINATION", "3.2 Termination for Cause") in paths
    assert paths[-1] == ("EXHIBIT A",)
    for s in sections:
        assert s.text == doc.text[s.start:s.end] and s.tokens <= 1500
    assert [s.start for s in sections] == sorted(s.start for s in sections)


def test_sections_merge_to_the_target_split_only_above_the_maximum_and_exhibits_stand_alone():
    doc = _fixture("cuad_inline_services.txt")
    sections = sectionize(doc)  # defaults: target 4000, maximum 32000
    assert 2 <= len(sections) <= 4
    body = [s for s in sections if not s.path[0].startswith("EXHIBIT")]
    assert all(s.tokens <= 4000 or " … " not in s.path[-1] for s in body)  # merged units stay within the target
    assert sections[-1].path == ("EXHIBIT A Services [ * * * ] 11",)
    assert statistics.median(s.tokens for s in body) > 1000
    for s in sections:
        assert s.text == doc.text[s.start:s.end]
        assert s.pages == doc.pages_of(s.start, s.end)
    non_ws = re.sub(r"\s", "", doc.text)
    assert "".join(re.sub(r"\s", "", s.text) for s in sections) == non_ws  # nothing lost, nothing repeated


def test_a_contract_without_numbers_is_sectioned_at_its_caption_lines():
    text = "JOINT VENTURE AGREEMENT\n\nThis Agreement is made between A and B.\n\n" + "".join(
        f"{name}\n\n" + "The participants agree to the following terms in this matter. " * 5 + "\n\n"
        for name in ("Formation", "Purpose", "Capital Contributions", "Withdrawal of Capital"))
    assert _titles(_doc(text)) == ["Preamble", "Formation", "Purpose", "Capital Contributions", "Withdrawal of Capital"]


def _shared(*parts: str) -> Path:
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared evaluation data not found at {path}")
    return path


def test_a_real_flattened_cuad_contract_from_shared_data():
    folder = _shared("cuad", "contracts")
    flat = min(folder.glob("*.txt"), key=lambda p: (p.read_text(encoding="utf-8").count("\n") > 20, p.name))
    doc = replace(read(flat)[0], kind="contract")
    sections = sectionize(doc)
    assert all(s.text == doc.text[s.start:s.end] for s in sections)


# ---------------------------------------------------------------- the whole corpora (slow)

def _corpus_stats(item: tuple[str, str]) -> dict:
    """One contract's sectioning: numbered headings found, section sizes, exact offsets, nothing lost."""
    from ingest.tokens import TokenCounter

    doc_id, text = item
    doc = _doc(text, doc_id)
    heads = find_headings(doc)
    sections = sectionize(doc)
    numbered = [h for h in heads if not h.hard and h.title not in ("Preamble", "Recitals", "Signatures")]
    inside = "".join(re.sub(r"\s", "", s.text) for s in sections)
    return {"doc_id": doc_id, "tokens": TokenCounter(text).total, "section_tokens": [s.tokens for s in sections],
            "hierarchy": len(numbered) >= 3,
            "offsets_exact": all(s.text == text[s.start:s.end] for s in sections)
            and all(a.end <= b.start for a, b in zip(sections, sections[1:])),
            "covers_text": inside == re.sub(r"\s", "", text)}


def _corpus(items: list[tuple[str, str]]) -> list[dict]:
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2) as pool:
        return list(pool.map(_corpus_stats, items, chunksize=4))


def _share(stats: list[dict], key: str) -> float:
    return sum(s[key] for s in stats) / len(stats)


@pytest.mark.slow
def test_cuad_corpus_has_article_structure_and_sections_of_thousands_of_tokens():
    folder = _shared("cuad", "contracts")
    stats = _corpus([(f.stem, read(f)[0].text) for f in sorted(folder.glob("*.txt"))])
    assert len(stats) == 410
    assert [s["doc_id"] for s in stats if not s["offsets_exact"] or not s["covers_text"]] == []
    # measured at 446b6cb: hierarchy found in 0.907, median section 2,229 tokens, 0.972 of the contracts
    # over 20k tokens in >= 5 sections
    assert _share(stats, "hierarchy") >= 0.85, [s["doc_id"] for s in stats if not s["hierarchy"]][:10]
    assert statistics.median(t for s in stats for t in s["section_tokens"]) >= 1000
    long = [s for s in stats if s["tokens"] > 20000]
    assert sum(len(s["section_tokens"]) >= 5 for s in long) / len(long) >= 0.9


@pytest.mark.slow
def test_contractnli_ndas_are_sectioned():
    dev = _shared("contractnli", "dev.json")
    docs = json.loads(dev.read_text(encoding="utf-8"))["documents"]
    stats = _corpus([(Path(d["file_name"]).stem or str(d["id"]), d["text"]) for d in docs])
    assert len(stats) == 61
    assert [s["doc_id"] for s in stats if not s["offsets_exact"] or not s["covers_text"]] == []
    # measured at 446b6cb: hierarchy found in 0.951 of the NDAs
    assert _share(stats, "hierarchy") >= 0.7, [s["doc_id"] for s in stats if not s["hierarchy"]]
