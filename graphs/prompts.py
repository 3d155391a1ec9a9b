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
