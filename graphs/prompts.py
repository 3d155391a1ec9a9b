"""Prompts for the answer writer."""

from __future__ import annotations

from pipeline.types import ClaimCheck, Evidence

NOT_FOUND = "NOT FOUND"

SYSTEM = (
    "You answer questions about documents using only the numbered evidence you are given. "
    "Reply with one or two short sentences taken from the evidence, each ending with the number of the "
    "evidence that supports it in square brackets, like [2]. Copy names, dates and numbers exactly. "
    f"If no evidence answers the question, reply with exactly: {NOT_FOUND}"
)

# One worked example: small models follow a format they have seen far better than one described.
EXAMPLE = [
    {"role": "user", "content": (
        "Evidence:\n[1] The Company was incorporated in Delaware in 1990.\n"
        "[2] Either party may terminate this Agreement on ninety (90) days written notice to the other party.\n\n"
        "Question: How can the agreement be terminated?")},
    {"role": "assistant", "content": "Either party may terminate the Agreement on ninety (90) days written notice [2]."},
]


def evidence_block(evidence: list[Evidence]) -> str:
    return "\n".join(f"[{ev.n}] {' '.join(ev.text.split())}" for ev in evidence)


def answer_messages(question: str, evidence: list[Evidence]) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM},
        *EXAMPLE,
        {"role": "user", "content": f"Evidence:\n{evidence_block(evidence)}\n\nQuestion: {question}"},
    ]


def revision_messages(question: str, evidence: list[Evidence], draft: str, claims: list[ClaimCheck]) -> list[dict[str, str]]:
    problems = "\n".join(f"- \"{c.claim}\": {'; '.join(c.reasons) or 'not supported by the cited evidence'}"
                         for c in claims if not c.supported)
    return [
        *answer_messages(question, evidence),
        {"role": "assistant", "content": draft},
        {"role": "user", "content": (
            "These sentences are not supported by the evidence they cite:\n"
            f"{problems}\n"
            "Rewrite the answer using only what the evidence says, citing it as [n]. "
            f"If the evidence does not answer the question, reply with exactly: {NOT_FOUND}")},
    ]


CALC = "CALC:"

NUMBER_SYSTEM = (
    "You answer questions about documents using only the numbered evidence. The answer is a number. Write one line "
    f"starting with {CALC} and an arithmetic expression whose every number is copied exactly from the evidence and "
    f"preceded by the number of the evidence it comes from, like {CALC} [2] 1,204 - [3] 311. Use only + - * / and "
    f"parentheses. Do not compute the result yourself. If the number is written in the evidence, write {CALC} [n] "
    f"number. If no evidence answers the question, reply with exactly: {NOT_FOUND}"
)

NUMBER_EXAMPLE = [
    {"role": "user", "content": (
        "Evidence:\n[1] Total revenue (in millions) 2,410 2,050\n[2] Cost of revenue (in millions) 1,320 1,190\n\n"
        "Question: What was the gross profit in the first year shown?")},
    {"role": "assistant", "content": f"{CALC} [1] 2,410 - [2] 1,320"},
]


def number_messages(question: str, evidence: list[Evidence], problems: list[str] | None = None) -> list[dict[str, str]]:
    """The writer states a calculation over cited numbers; code evaluates it (``graphs.calc``). On a revision,
    ``problems`` lists what the check found wrong with the last one."""
    note = ("\n\nYour last calculation had these problems: " + "; ".join(problems) + ". Write it again.") if problems else ""
    return [
        {"role": "system", "content": NUMBER_SYSTEM},
        *NUMBER_EXAMPLE,
        {"role": "user", "content": f"Evidence:\n{evidence_block(evidence)}\n\nQuestion: {question}{note}"},
    ]
