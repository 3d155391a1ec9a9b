"""The end of the CUAD full run in two even processes (``continue.sh rest``).

The two ``--shard K/2`` parts deal whole documents at the start of the run, so near the end one part can
finish while the other still has a long tail, leaving a core idle. This deals the documents that still
have unanswered questions into two halves afresh (largest first, by unanswered answers, to the half with
fewer so far) and answers each half in its own process with the pinned harness. Only which items a
process answers changes: the answers come from the same code, arguments and models as the parts', and
half K appends to the part file ``items.shard-K-of-2.jsonl`` (its records labelled ``K/2``).

Run from the pinned worktree (``python -m`` is not used, so the worktree is put on the path here):

    python split_rest.py plan OUT DATA                     # writes OUT/rest-plan.json
    python split_rest.py HARNESS-ARGS... --out OUT --shard K/2   # K = 1, 2: answer half K of the plan
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.getcwd())

PLAN = "rest-plan.json"
SYSTEMS = ("sectionrag", "chunk_baseline")
LLM = "local"


def plan(out: Path, data: Path) -> dict:
    from eval.datasets import load_suite
    from eval.harness import SEED, _key, _load_records, sample_items

    items = sample_items(load_suite("cuad", data).items, None, SEED)
    done = _load_records(out)
    left: dict[str, int] = {}
    for it in items:
        n = sum(_key(s, LLM, it.id) not in done for s in SYSTEMS)
        if n:
            left[it.doc_id] = left.get(it.doc_id, 0) + n
    load = [0, 0]
    half: dict[str, int] = {}
    for doc, n in sorted(left.items(), key=lambda kv: (-kv[1], kv[0])):
        j = min(range(2), key=lambda i: (load[i], i))
        half[doc] = j + 1
        load[j] += n
    (out / PLAN).write_text(json.dumps({"answers_left": load, "half": half}, indent=1))
    return {"documents": len(half), "answers_left": load}


def answer(argv: list[str]) -> int:
    import eval.harness as harness

    out = Path(argv[argv.index("--out") + 1])
    half = json.loads((out / PLAN).read_text())["half"]

    def rest_items(items, k, n):  # replaces the parts' document deal: half k of the plan
        return [it for it in items if half.get(it.doc_id) == k]

    harness.shard_items = rest_items
    return harness.main(argv)


if __name__ == "__main__":
    if sys.argv[1:2] == ["plan"]:
        print(json.dumps(plan(Path(sys.argv[2]), Path(sys.argv[3]))))
    else:
        sys.exit(answer(sys.argv[1:]))
