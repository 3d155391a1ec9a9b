"""What kind of answer a question asks for, so that the component right for it produces the answer.

=========  ==========================================================  ==========================================
type       asks for                                                    answered by
=========  ==========================================================  ==========================================
``span``   a clause or passage to read ("Highlight the parts of …      the exact units the reader selected
           related to …", "What does the agreement say about …")
``yesno``  a yes or no, or a statement to check ("Does the             the reader's Entailment / Contradiction /
           agreement allow …?", "Receiving Party may share …")         NotMentioned head
``number`` an amount, ratio, count or change ("What is the FY2015      an expression over cited numbers,
           operating cash flow ratio?", "How much …")                  computed by ``graphs.calc``
``date``   a date or period ("When was …", "On what date …")           the writer, dates checked verbatim
``list``   every item of a kind ("Which medications …", "List all …")  every supporting unit, not the first
``open``   anything else                                               the writer
=========  ==========================================================  ==========================================

The rules read the question's form, not any dataset's templates: the opening words (an auxiliary verb opens a
yes-no question), the wh-word and the noun it asks about, and instructions in the question ("round your answer",
"list", "highlight the parts"). A question that matches several rules takes the first of: an instruction to quote
(span), a leading auxiliary verb (yesno, unless it asks to compute), a leading "when" (date), number (an
instruction to compute or a quantity asked with what/how), span, list, date, yesno, open.

>>> classify("What is the FY2015 operating cash flow ratio for Adobe? Round your answer to two decimal places.")
'number'
>>> classify("Which allergies does Maria Lopez have?")
'list'
"""

from __future__ import annotations

import re
from typing import Literal

QuestionType = Literal["span", "yesno", "number", "date", "list", "open"]
TYPES: tuple[QuestionType, ...] = ("span", "yesno", "number", "date", "list", "open")

_I = re.IGNORECASE
_AUXILIARIES = r"(?:does|do|did|is|are|was|were|has|have|had|can|could|will|would|shall|should|may|might|must)"
_AUX = re.compile(r"(?:^|[,:;.?]\s+)" + _AUXILIARIES + r"\s+(?!the\s+(?:total|sum|difference|ratio|amount)\b)", _I)
_COMPUTE = re.compile(r"\b(?:calculate|compute|round (?:your|the) answer|round to|decimal places?|in units of|how much|how many|what (?:is|was|were) the "
                      r"(?:total|sum|difference|change|growth|increase|decrease|ratio|percentage|proportion|amount)|"
                      r"in (?:usd|\$|dollars|thousands|millions|billions)\b|(?:usd|\$)\s*(?:thousands|millions|billions)"
                      r"|by how much|what (?:percentage|percent|share|fraction|proportion))\b", _I)
_QUANTITY = re.compile(r"\b(?:ratio|margin|rate|revenue|revenues|sales|income|profits?|loss|losses|expenses?|capex|"
                       r"capital expenditures?|"
                       r"cash flows?|earnings|eps|ebitda|dividends?|assets|liabilities|debt|equity|cost|costs|price|"
                       r"amount|balance|turnover|days|yield|percentage|count|number of)\b", _I)
_WHAT_OR_HOW = re.compile(r"(?:^|[,:;.?]\s+)(?:what|how|which)\b", _I)
_LIST = re.compile(r"\b(?:list|enumerate|name all|all (?:the |of the )?\w+|every \w+|each \w+|"
                   r"(?:what|who) (?:are|were) (?:all )?(?:the )?(?:\w+ )?\w+s\b|"
                   r"which \w+(?:\s\w+)? (?:are|were|have|has|does|do|did)\b)", _I)
_PLURAL_WHICH = re.compile(r"^\s*(?:which|what)\s+(?!(?:is|was|does|has)\b)(?:\w+\s+)?(?!(?:is|was|does|has)\b)"
                           r"(?P<noun>\w+s)\b(?!\s+(?:is|was)\b)", _I)
_DATE = re.compile(r"^\s*when\b|\b(?:what|which) (?:date|day|month|year|period|time)\b|\bon what date\b|"
                   r"\b(?:effective|expiration|termination|renewal|start|end|onset|due|filing) date\b", _I)
_SPAN = re.compile(r"\b(?:highlight|quote|clause|clauses|provision|provisions|section of|what does (?:the|this) "
                   r"\w+ (?:say|state|provide)|which (?:clause|section|provision)|terms? (?:of|on|for|regarding))\b", _I)
_LEADING_AUX = re.compile(r"^\s*" + _AUXILIARIES + r"\b", _I)
_WHEN = re.compile(r"^\s*when\s+(?:did|was|were|is|are|will|would|does|do|has|have|had|can|shall|should)\b", _I)
_QUOTE = re.compile(r"^\s*(?:please\s+)?(?:highlight|quote|extract|find) (?:the )?(?:parts?|clauses?|passages?|text|language)\b", _I)
_QUESTION = re.compile(r"\?|(?:^|[,:;.]\s+)(?:what|which|who|whom|whose|when|where|why|how)\b", _I)


def classify(question: str) -> QuestionType:
    """The answer type ``question`` asks for (see the module's table)."""
    q = " ".join(question.split())
    asks = _QUESTION.search(q) is not None or _AUX.search(q) is not None
    if _QUOTE.search(q):
        return "span"
    if _LEADING_AUX.search(q) and not _COMPUTE.search(q):  # "Does the agreement state that all …?"
        return "yesno"
    if _WHEN.search(q):
        return "date"
    if _COMPUTE.search(q) or (_WHAT_OR_HOW.search(q) and _QUANTITY.search(q) and not _SPAN.search(q)
                              and not _AUX.search(q)):
        return "number"
    if _SPAN.search(q):
        return "span"
    if _LIST.search(q) or (m := _PLURAL_WHICH.search(q)) and not m.group("noun").lower().endswith(("ss", "us", "is")):
        return "list"
    if _DATE.search(q):
        return "date"
    if _AUX.search(q) or not asks:  # "Does the agreement …?" or a statement to check
        return "yesno"
    return "open"
