"""Contracts: Articles, numbered clauses (1., 1.1, Section 1.01), recitals, signature blocks, exhibits.

Works on the stored text alone, whether the contract kept its line structure or was flattened onto
one line, as many EDGAR exhibits are (``... as follows: 1. Services. 1.1 Provision of Services. (a) ...``).

A number is taken as a heading only when it continues the document's own numbering (1, 2, 3 …;
1.1, 1.2 …; 2.1 after 1.4): every numeral that *could* open a clause is a candidate, and the
heaviest chain of candidates in which each one plausibly follows the one before is found by dynamic
programming (``_best_chain``). Amounts ("1.5 million"), dates, cross-references inside sentences
("under Section 9.2 the ...") and lists inside a clause do not continue the chain, so they fall out.

Front matter, recitals (WHEREAS …) and the signature block (IN WITNESS WHEREOF …) become level-1
headings beside the Articles; exhibits, schedules, appendices and annexes are *hard* headings (always
a section boundary) and each gets its own numbering chain.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from ingest.sectionizers.tree import Heading
from pipeline.types import Document

_WORD_NUMBERS = {w: i for i, w in enumerate(
    ["ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE", "TEN", "ELEVEN", "TWELVE", "THIRTEEN", "FOURTEEN", "FIFTEEN", "SIXTEEN", "SEVENTEEN", "EIGHTEEN", "NINETEEN", "TWENTY"], 1)}
_ROMAN = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100}

_ARTICLE = re.compile(r"(?P<label>(?:ARTICLE|Article|PART|Part)[ \t]+(?P<num>[IVXLC]{1,7}|\d{1,2}|"
                      + "|".join(_WORD_NUMBERS) + r")\b\.?)")
_CLAUSE = re.compile(r"(?P<label>(?:(?P<kw>SECTION|Section|Sec\.|§)[ \t]*)?(?P<num>\d{1,2}(?:\.\d{1,3}){0,3})(?P<dot>\.?))"
                     r"(?=[ \t]*(?:\n[ \t]*)?[A-Z\"“(\[])")
_EXHIBIT = re.compile(r"(?P<label>(?P<kw>EXHIBIT|Exhibit|SCHEDULE|Schedule|APPENDIX|Appendix|ANNEX|Annex|ATTACHMENT|"
                      r"Attachment|ADDENDUM|Addendum)(?:[ \t]+(?:No\.[ \t]*)?(?P<id>[A-Z0-9]{1,3}(?:[.\-]\d{1,2})?)\b)?\.?)")
_RECITALS = re.compile(r"RECITALS|Recitals|W[ \t]*I[ \t]*T[ \t]*N[ \t]*E[ \t]*S[ \t]*S[ \t]*E[ \t]*T[ \t]*H|BACKGROUND|"
                       r"PRELIMINARY STATEMENTS?|WHEREAS|Whereas,")
_SIGNATURE = re.compile(r"IN WITNESS (?:WHEREOF|THEREOF)|In (?:Witness|witness) (?:Whereof|whereof|Thereof)")
_CAPS_RUN = re.compile(r"[A-Z][A-Z0-9&'’/\-]*(?![a-z])(?:[ \t,]+(?:[A-Z][A-Z0-9&'’/\-]*(?![a-z])|OF|AND|TO|IN|FOR|ON|OR|THE|A|&))*")
_TITLE_PHRASE = re.compile(r"[A-Z][^.:;\n]{0,90}?[.:](?=\s|$)")
_SMALL_WORDS = frozenset(["a", "an", "and", "as", "at", "by", "for", "from", "in", "of", "on", "or", "the", "to", "with", "under", "upon", "into", "its", "non"])
_CAPTION_BEFORE = re.compile(r"(?:^|\s)\d{1,2}(?:\.\d{1,3})*\.?[ \t]+(?:[A-Z][\w'’&\-]*,?[ \t]+|(?:of|and|for|to|in|on|or|the|with)[ \t]+){0,7}"
                             r"[A-Z][\w'’&\-]*$")
# words that open a clause's first sentence, so end a caption written without a period
_OPENERS = frozenset(["This", "The", "Each", "Neither", "No", "All", "Any", "In", "If", "Either", "Upon", "Unless", "Except", "Subject", "Notwithstanding", "Nothing", "During", "Within", "Such", "Said", "Both", "Where", "When", "Without", "Party", "Parties", "Company", "It", "We", "You"])
_TOC_LINE = re.compile(r"(?:\.{3,}|…+|\s{2,}|\t)\s*(?:Page\s+)?\d{1,3}[ \t]*$")


@dataclass(frozen=True, slots=True)
class _Candidate:
    start: int
    end: int  # end of the label
    family: str  # "article" | "clause"
    nums: tuple[int, ...]
    label: str
    weight: float
    line_start: bool


def _roman(s: str) -> int:
    total = 0
    for a, b in zip(s, s[1:] + " "):
        v = _ROMAN[a]
        total += -v if b != " " and _ROMAN[b] > v else v
    return total


def _at_line_start(text: str, pos: int) -> bool:
    i = pos - 1
    while i >= 0 and text[i] in " \t":
        i -= 1
    return i < 0 or text[i] in "\n\f"


def _after_boundary(text: str, pos: int) -> bool:
    """True where a clause may open inline: after a sentence end, a colon, or an ALL-CAPS caption."""
    i = pos - 1
    while i >= 0 and text[i] in " \t\n\f\r":
        i -= 1
    if i < 0 or text[i] in "\n\f":
        return True
    if i == pos - 1:  # glued to the previous word ("$1.5", "A1.2")
        return False
    c = text[i]
    if c in ".:;":
        return True
    if c in "\"”')]" and i > 0 and text[i - 1] in ".:;":
        return True
    before = text[max(0, i - 100):i + 1]
    # "1. SERVICES 1.1 Provision of ...", "3. Rights and Obligations 3.1 ...": the previous heading's caption
    word = re.search(r"([A-Z][A-Z&'’\-]+)$", before)
    if word and len(word.group(1)) >= 3:
        return True
    if _CAPTION_BEFORE.search(before):
        return True
    # a running page header between the page break and the clause ("Contract No.: 2018 5. Taxes ...")
    brk = before.rfind("\n\n")
    return brk != -1 and len(before) - brk <= 70


def _caption(text: str, pos: int, limit: int) -> str:
    """The short title following a heading label at ``pos`` ('' when the clause starts with prose)."""
    i = pos
    while i < limit and text[i] in " \t.:-–—":
        i += 1
    line_end = text.find("\n", i, limit)
    if line_end == i or (line_end == -1 and i >= limit):
        # the label stands alone on its line: the caption is the next non-empty short line
        j = i
        while j < limit and text[j] in " \t\n\f":
            j += 1
        nxt = text.find("\n", j, limit)
        line = text[j:nxt if nxt != -1 else min(limit, j + 100)].strip()
        return line if 0 < len(line) <= 80 and not _CLAUSE.match(line) else ""
    window = text[i:min(limit, i + 120)]
    m = _CAPS_RUN.match(window)
    if m and sum(ch.isalpha() for ch in m.group(0)) >= 4:
        caps = m.group(0).rstrip(" ,")
        # an ALL-CAPS run that is followed by lower-case is the first word of a sentence ("THE Company")
        if not re.match(r"\s*[a-z]", window[m.end():]) or len(caps.split()) > 1:
            return _squash(caps)
    m = _TITLE_PHRASE.match(window)
    if m:
        phrase = m.group(0)[:-1]
        words = re.findall(r"[A-Za-z][\w'’\-]*", phrase)
        if 0 < len(words) <= 10 and all(w[0].isupper() or w.lower() in _SMALL_WORDS for w in words):
            return _squash(phrase)
    return _title_run(window.split("\n\n")[0])


def _title_run(window: str) -> str:
    """A caption without a closing period: "Liability for Breach 10.1 ...", "Taxes The taxes incurred ..."."""
    words: list[str] = []
    stop = "end"
    for w in window.split():
        if re.match(r"\(?\d|\(?[a-z]{1,4}\)", w):
            stop = "number"
            break
        if not (w[0].isupper() or w in _SMALL_WORDS or w == "&") or not re.match(r"[\w&'’\-]+,?$", w):
            stop = "lower"
            break
        words.append(w)
        if len(words) > 12:
            return ""
    if words and words[0] in _OPENERS and stop != "number":
        return ""  # "The Company shall ...", "All Confidential Information remains ...": a sentence, not a caption
    cut = next((k for k in range(1, len(words)) if words[k] in _OPENERS and words[k - 1] not in _SMALL_WORDS), None)
    if cut is not None:
        words = words[:cut]
    while words and words[-1] in _SMALL_WORDS:
        words.pop()
    if cut is None and stop == "lower":
        if len(words) < 3:
            return ""
        words.pop()  # the last capitalised word opens the clause's first sentence
        while words and words[-1] in _SMALL_WORDS:
            words.pop()
    return _squash(" ".join(words)) if words and len(words) <= 10 else ""


def _title(label: str, caption: str, text: str, pos: int) -> str:
    """``"9.2 Termination for Cause"``; a clause without a caption is named by its first words."""
    if not caption:
        words = []
        for w in text[pos:pos + 80].split()[:6]:
            if re.match(r"\d{1,2}(?:\.\d{1,3})+\.?$|\([a-z]{1,3}\)$", w):
                break  # the next clause's number
            words.append(w)
        caption = " ".join(words) + " …" if words else ""
    return _squash(f"{label} {caption}")


def _squash(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip(" ,;")


def _label_nums(num: str) -> tuple[int, ...]:
    nums = tuple(int(p) for p in num.split("."))
    while len(nums) > 1 and nums[-1] == 0:  # "1.0" is clause 1
        nums = nums[:-1]
    return nums


def _candidates(text: str, start: int, end: int) -> list[_Candidate]:
    out: list[_Candidate] = []
    for m in _ARTICLE.finditer(text, start, end):
        line_start = _at_line_start(text, m.start())
        if not (line_start or _after_boundary(text, m.start())):
            continue
        raw = m.group("num")
        n = int(raw) if raw.isdigit() else _WORD_NUMBERS.get(raw) or _roman(raw)
        caption = _caption(text, m.end(), end)
        upper = m.group("label").isupper()
        if not (line_start or upper or caption):
            continue  # "Article 5 of the Code" inline
        weight = 1.0 + 2.0 * line_start + 1.0 * bool(caption) + 0.5 * upper
        out.append(_Candidate(m.start(), m.end(), "article", (n,), _squash(f"{m.group('label')} {caption}"), weight,
                              line_start))
    for m in _CLAUSE.finditer(text, start, end):
        num, kw, dot = m.group("num"), m.group("kw"), m.group("dot")
        if m.start() > 0 and (text[m.start() - 1].isalnum() or text[m.start() - 1] in "$.,-/"):
            continue
        line_start = _at_line_start(text, m.start())
        if not (line_start or _after_boundary(text, m.start())):
            continue
        if "." not in num and not dot and not kw and not line_start:
            continue  # "2 Parties" inline is prose, not a clause
        line_end = _line_end(text, m.end(), end)
        if line_start and line_end - m.start() <= 120 and _TOC_LINE.search(text, m.end(), line_end):
            continue  # a table-of-contents entry ("1.1 Definitions ........ 3")
        caption = _caption(text, m.end(), end)
        if "." not in num and not dot and not kw and not caption.isupper():
            continue  # a bare "3" at a line start is a page number unless an ALL-CAPS caption follows
        nums = _label_nums(num)
        if nums[0] == 0 or len(nums) > 4:
            continue
        weight = 1.0 + 2.0 * line_start + 1.0 * bool(caption) + 0.5 * bool(kw or dot)
        out.append(_Candidate(m.start(), m.end(), "clause", nums, _title(m.group("label"), caption, text, m.end()),
                              weight, line_start))
    out.sort(key=lambda c: c.start)
    return out


def _line_end(text: str, pos: int, limit: int) -> int:
    e = text.find("\n", pos, limit)
    return limit if e == -1 else e


def _follows(prev: tuple[int, ...], nxt: tuple[int, ...], max_gap: int = 2) -> int | None:
    """How many numbers ``nxt`` skips after ``prev`` (0 = the very next clause), or None if it cannot follow.

    1.3 → 1.4 (sibling), 1.3 → 1.3.1 (first child), 1.3 → 2 or 2.1 (next parent, maybe without its own
    heading); a skip of up to ``max_gap`` numbers is allowed ("[Reserved]" clauses, lost headings).
    """
    # first child(ren): 1.3 → 1.3.1
    if len(nxt) > len(prev) and nxt[:len(prev)] == prev and all(n == 1 for n in nxt[len(prev):]):
        return 0
    for depth in range(min(len(prev), len(nxt)), 0, -1):
        if nxt[:depth - 1] != prev[:depth - 1]:
            continue
        step = nxt[depth - 1] - prev[depth - 1]
        if 1 <= step <= 1 + max_gap and all(n == 1 for n in nxt[depth:]):
            return step - 1
    return None


def _best_chain(cands: list[_Candidate], lookback: int = 400) -> list[_Candidate]:
    """The heaviest sequence of candidates in which each one follows the one before in numbering."""
    if not cands:
        return []
    best = [0.0] * len(cands)
    back = [-1] * len(cands)
    for j, c in enumerate(cands):
        starts_fresh = all(n == 1 for n in c.nums)
        score = c.weight if starts_fresh else c.weight - 3.0  # a chain opening at "7." is doubtful
        for i in range(max(0, j - lookback), j):
            gap = _follows(cands[i].nums, c.nums)
            if gap is None:
                continue
            s = best[i] + c.weight - 1.5 * gap
            if s > score:
                score, back[j] = s, i
        best[j] = score
    j = last = max(range(len(cands)), key=best.__getitem__)
    chain = []
    while j != -1:
        chain.append(cands[j])
        j = back[j]
    chain.reverse()
    return chain if len(chain) >= 2 and best[last] > 3.0 else []


def _drop_toc(chain: list[_Candidate], text: str) -> list[_Candidate]:
    """A table of contents repeats the numbering with almost no text between entries: skip to the body."""
    if len(chain) < 6:
        return chain
    gaps = [b.start - a.end for a, b in itertools.pairwise(chain)]
    run = 0
    for k, g in enumerate(gaps):
        if g < 90:
            run += 1
            continue
        if run >= 5:  # at least six headings in a row with nothing under them: a contents list
            return chain[k + 1:]
        break
    return chain


def _special(text: str, pattern: re.Pattern[str], start: int, end: int) -> list[int]:
    return [m.start() for m in pattern.finditer(text, start, end)
            if _at_line_start(text, m.start()) or _after_boundary(text, m.start())]


def _exhibits(text: str, start: int, end: int) -> list[tuple[int, str]]:
    """Exhibit/schedule headings: at a line start on a short line, or inline in capitals before capitals."""
    found: list[tuple[int, str]] = []
    for m in _EXHIBIT.finditer(text, start, end):
        label, kw = m.group("label"), m.group("kw")
        if m.start() > 0 and text[m.start() - 1].isalnum():
            continue
        after = text[m.end():m.end() + 60]
        if re.match(r"[ \t]*(?:\(?[a-z]|to[ \t]+(?:this|the)[ \t]+[a-z]|hereto|attached|and\b|or\b)", after):
            continue  # "Exhibit A attached hereto", "Schedule 2 sets out ..."
        line_end = _line_end(text, m.start(), end)
        if _at_line_start(text, m.start()) and line_end - m.start() <= 120 and not _TOC_LINE.search(text, m.start(), line_end):
            title = _squash(text[m.start():line_end])
        elif kw.isupper() and _after_boundary(text, m.start()) and (m.group("id") or re.match(r"[ \t]*[A-Z]{2}", after)):
            title = _squash(f"{label} {_caption(text, m.end(), end)}")
        else:
            continue
        found.append((m.start(), title[:100]))
    # a list of exhibits ("Exhibit A – Products / Exhibit B – Territory") is not a run of headings
    keep = []
    for k, (pos, title) in enumerate(found):
        near_prev = k > 0 and pos - found[k - 1][0] < 250
        near_next = k + 1 < len(found) and found[k + 1][0] - pos < 250
        if not (near_prev or near_next):
            keep.append((pos, title))
    return keep


def _standalone_titles(text: str, start: int, end: int) -> list[Heading]:
    """Short ALL-CAPS or Title Case lines followed by a longer line of prose ("Grant of Rights." / "Term")."""
    heads = []
    for m in re.finditer(r"^[ \t]*(\S[^\n]{1,78}?)[ \t]*$", text[start:end], re.MULTILINE):
        line = m.group(1)
        words = line.rstrip(".:").split()
        if not (1 <= len(words) <= 10) or line.endswith((",", ";")) or not line[0].isupper():
            continue
        if not all(w[0].isupper() or w in _SMALL_WORDS or w == "&" for w in words):
            continue
        if not all(re.fullmatch(r"[A-Za-z][A-Za-z'’\-]*[,:.]?|&", w) for w in words):
            continue  # "Source: ACME, INC., 10-Q, 5/20/2014", document codes
        rest = text[start + m.end():end].lstrip()
        nxt = rest.split("\n", 1)[0]
        if len(nxt) < max(60, 2 * len(line)):
            continue
        heads.append(Heading(start + m.start(1), 1, _squash(line.rstrip(".:"))))
    return heads


def _within_articles(articles: list[_Candidate], clauses: list[_Candidate]) -> list[_Candidate]:
    """Where clauses are numbered by their Article (Article 2 → 2.1, 2.2), a clause that is not is a list item."""
    def article_of(c: _Candidate) -> int | None:
        inside = [a for a in articles if a.start < c.start]
        return inside[-1].nums[0] if inside else None

    multi = [c for c in clauses if len(c.nums) > 1 and article_of(c) is not None]
    if not multi or sum(c.nums[0] == article_of(c) for c in multi) < 0.7 * len(multi):
        return clauses  # sections numbered on their own (Article I; Section 1 … Section 15)
    return [c for c in clauses if article_of(c) in (None, c.nums[0])]


def _numbered(text: str, start: int, end: int, base: int) -> list[Heading]:
    """Article and clause headings of ``[start, end)``, their levels counted from ``base``."""
    cands = _candidates(text, start, end)
    articles = _drop_toc(_best_chain([c for c in cands if c.family == "article"]), text)
    clauses = _drop_toc(_best_chain([c for c in cands if c.family == "clause"]), text)
    if articles and clauses and clauses[0].start < articles[0].start - 2000 and len(articles) < 3:
        articles = []  # a stray "Article" heading far after the clauses started is not the top level
    if articles and clauses:
        clauses = _within_articles(articles, clauses)
    heads = [Heading(c.start, base, c.label[:120]) for c in articles]
    clause_base = base + (1 if articles else 0)
    taken = {h.start for h in heads}
    for c in clauses:
        if any(abs(c.start - t) < 3 for t in taken):
            continue
        # "ARTICLE 2" followed by "2. LICENSES": the clause number restates the Article, same level below it
        heads.append(Heading(c.start, clause_base + len(c.nums) - 1, c.label[:120]))
    return heads


def find_headings(doc: Document) -> list[Heading]:
    text = doc.text
    n = len(text)
    body = _numbered(text, 0, n, 1)
    first_clause = min((h.start for h in body), default=n // 10)
    exhibits = [(p, t) for p, t in _exhibits(text, 0, n) if p > first_clause]

    heads: list[Heading] = []
    bounds = [p for p, _ in exhibits] + [n]
    main_end = bounds[0]
    heads += [h for h in body if h.start < main_end]
    if not heads:  # no numbering (or Word auto-numbers lost in the export): captions on lines of their own
        heads += _standalone_titles(text, 0, main_end)
    first = min((h.start for h in heads), default=main_end)

    recitals = _special(text, _RECITALS, 0, min(first + 1, main_end))
    if recitals:
        heads.append(Heading(recitals[0], 1, "Recitals"))
        first = min(first, recitals[0])
    opening = len(text) - len(text.lstrip())
    if first - opening > 40:
        heads.append(Heading(opening, 1, "Preamble"))
    for pos in _special(text, _SIGNATURE, first, main_end)[-1:]:
        heads.append(Heading(pos, 1, "Signatures"))
    for (pos, title), stop in zip(exhibits, bounds[1:]):
        heads.append(Heading(pos, 1, title, hard=True))
        heads += [h for h in _numbered(text, pos, stop, 2) if h.start > pos + 2]
    heads.sort(key=lambda h: (h.start, h.level))
    return heads
