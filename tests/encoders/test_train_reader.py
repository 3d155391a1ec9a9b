"""The reader's training data, built from the real files in ``../shared``: each source labels the evidence its
dataset marks, and the documents held out for validation never reach training."""

from __future__ import annotations

import ast
import json
import random

import pytest
from conftest import SHARED_DATA

from encoders.train_reader import (
    Corpus,
    doc_split,
    evidence_inference_examples,
    financebench_examples,
    finqa_examples,
    load_financebench,
    mention_operating_point,
    tatqa_examples,
)

SHARED_TRAIN = SHARED_DATA.parent / "train"


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from encoders.embedder import default_model_path

    tok = AutoTokenizer.from_pretrained(str(default_model_path()), local_files_only=True)
    tok.model_max_length = 1 << 20
    return tok


def positives(corpus: Corpus, example) -> list[str]:
    piece = corpus.pieces[example.piece]
    return [piece.text[s:e] for (s, e), lab in zip(piece.units, example.unit_labels) if lab]


def test_split_is_stable_disjoint_and_whole():
    names = [f"doc-{i}" for i in range(200)]
    train, val = doc_split(names, 0.3)
    assert train.isdisjoint(val) and train | val == set(names)
    assert doc_split(list(reversed(names)), 0.3) == (train, val)
    assert 30 < len(val) < 90


def test_mention_operating_point_keeps_entailment_recall_and_maximises_notmentioned():
    gold = ["Entailment", "Entailment", "Entailment", "Entailment", "Entailment",
            "NotMentioned", "NotMentioned", "NotMentioned", "NotMentioned"]
    sweep = [("Entailment", m) for m in (0.9, 0.8, 0.7, 0.6, 0.2)] + [("Entailment", m) for m in (0.1, 0.3, 0.65, 0.95)]
    point = mention_operating_point(gold, sweep)
    # raising the threshold past 0.6 would drop Entailment recall to 0.6; at 0.6, 0.1 and 0.3 turn NotMentioned
    assert point == {"threshold": 0.6, "recall_notmentioned": 0.5, "recall_entailment": 0.8}
    assert mention_operating_point(gold, sweep, min_entailment=0.6)["recall_notmentioned"] == 0.75
    # a pair the reader calls Contradiction does not count as Entailment, whatever the threshold
    assert mention_operating_point(gold, [("Contradiction", 0.99)] * 5 + sweep[5:])["threshold"] is None


def test_financebench_positives_are_the_gold_page(tokenizer):
    texts, questions = load_financebench(SHARED_DATA)
    name = "ADOBE_2015_10K"
    corpus = Corpus()
    n = financebench_examples(corpus, {name: texts[name]}, questions, {name}, tokenizer, 1024, 2, random.Random(0))
    asked = [q for q in questions if q["doc_name"] == name]
    assert n == len(asked) > 0
    pages = texts[name].split("\f")
    gold_pages = {p for q in asked for e in q["evidence"] for p in [e["evidence_page_num"]]}
    held = [e for e in corpus.examples if any(e.unit_labels)]
    assert held
    for ex in held:
        for quote in positives(corpus, ex):
            assert any(quote.strip()[:30] in pages[p] for p in gold_pages), quote[:60]
    # a negative piece for each question, holding no unit of a gold page
    assert sum(not any(e.unit_labels) for e in corpus.examples) == 2 * len(asked)


def test_financebench_split_leaves_validation_filings_out(tokenizer):
    texts, questions = load_financebench(SHARED_DATA)
    train, val = doc_split(texts, 0.6)
    assert val and train
    corpus = Corpus()
    small = set(sorted(train)[:2])
    financebench_examples(corpus, texts, questions, small, tokenizer, 1024, 1, random.Random(0))
    read = {key.split("@")[0].removeprefix("fb-") for key in corpus.pieces}
    assert read == small & {q["doc_name"] for q in questions}


def test_finqa_positives_are_the_gold_rows_and_sentences():
    path = SHARED_TRAIN / "finqa" / "train_100.json"
    corpus = Corpus()
    assert finqa_examples(corpus, path) >= 90
    raw = {ex["id"]: ex for ex in json.loads(path.read_text())}
    for ex in corpus.examples[:30]:
        qa = raw[ex.piece.removeprefix("finqa-")]["qa"]
        qa = ast.literal_eval(qa) if isinstance(qa, str) else qa
        got = positives(corpus, ex)
        assert 0 < len(got) <= len(qa["gold_inds"])
        assert ex.question == qa["question"]


def test_tatqa_holds_its_validation_tables_out_and_labels_the_relevant_paragraphs():
    path = SHARED_DATA / "tatqa" / "tatqa_dataset_dev.json"
    corpus = Corpus()
    n, val = tatqa_examples(corpus, path, 0.2, 10_000, random.Random(0))
    assert n == len(corpus.examples) > 500 and val
    assert not {key.removeprefix("tatqa-") for key in corpus.pieces} & set(val)
    data = {d["table"]["uid"]: d for d in json.loads(path.read_text())}
    text_answers = 0
    for ex in corpus.examples:
        d = data[ex.piece.removeprefix("tatqa-")]
        q = next(q for q in d["questions"] if q["question"] == ex.question)
        if q["answer_from"] == "text":
            rel = {p["text"] for p in d["paragraphs"] if str(p["order"]) in {str(x) for x in q["rel_paragraphs"]}}
            assert set(positives(corpus, ex)) == rel
            text_answers += 1
    assert text_answers > 50


def test_evidence_inference_positives_overlap_the_annotated_evidence(tokenizer):
    folder = SHARED_TRAIN / "evidence_inference"
    corpus = Corpus()
    n, articles = evidence_inference_examples(corpus, folder, 40, tokenizer, 1024, random.Random(0))
    assert n > 20 and articles
    train_ids = set((folder / "splits" / "ev2_train_article_ids.txt").read_text().split())
    assert set(articles) <= train_ids
    with_evidence = [e for e in corpus.examples if any(e.unit_labels)]
    assert len(with_evidence) >= n
    import csv

    with open(folder / "prompts_merged.csv", newline="") as fh:
        article_of = {r["PromptID"]: r["PMCID"] for r in csv.DictReader(fh)}
    spans: dict[str, list[tuple[int, int]]] = {}
    with open(folder / "v2_annotations.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            if r["Evidence Start"].isdigit():
                spans.setdefault(article_of.get(r["PromptID"], ""), []).append((int(r["Evidence Start"]), int(r["Evidence End"])))
    for ex in with_evidence[:20]:
        assert ex.question.startswith("What is the effect of ")
        pmcid, start = ex.piece.removeprefix("ei-").split("@")
        piece = corpus.pieces[ex.piece]
        for (s, e), lab in zip(piece.units, ex.unit_labels):
            if lab:
                assert any(int(start) + s < ge and int(start) + e > gs for gs, ge in spans[pmcid])


def _tiny_corpus() -> Corpus:
    from encoders.train_reader import Piece

    corpus = Corpus()
    text = "The supplier shall deliver the goods within thirty days.\nThis Agreement is governed by Delaware law."
    piece = Piece("p0", text, [(0, 56), (57, len(text))])
    corpus.add(piece, "Which law governs the agreement?", [0.0, 1.0], None)
    corpus.add(piece, "Delivery is due within thirty days.", [1.0, 0.0], 0)
    corpus.add(piece, "The recipient may keep copies.", [0.0, 0.0], 2)
    return corpus


@pytest.mark.parametrize("bf16", [0, 1])
def test_training_runs_checkpoints_and_resumes(tmp_path, tokenizer, bf16):
    import torch

    from encoders.embedder import default_model_path
    from encoders.reader_model import ReaderArgs, ReaderModel
    from encoders.train_reader import Settings, train

    settings = Settings(epochs=2, checkpoint_every=2, bf16=bf16)
    model = ReaderModel.from_minilm(default_model_path(), ReaderArgs())
    before = {k: v.clone() for k, v in model.trained_state().items()}
    run = train(model, tokenizer, _tiny_corpus(), settings, tmp_path, resume=False, progress=False)
    assert run["steps"] == 6 and run["tokens_per_s"] > 0
    after = model.trained_state()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert state["step"] == 6
    # a resumed run starts at the checkpoint: nothing left to do, the first run's time carried over
    again = ReaderModel.from_minilm(default_model_path(), ReaderArgs())
    resumed = train(again, tokenizer, _tiny_corpus(), settings, tmp_path, resume=True, progress=False)
    assert resumed["steps"] == 6 and len(resumed["segments"]) == 2
    assert all(torch.equal(again.trained_state()[k], after[k]) for k in after)


def test_shipped_weights_were_not_trained_on_non_commercial_data():
    """FinanceBench is CC BY-NC 4.0: the weights the project ships are trained without it."""
    from encoders.reader import META, WEIGHTS_DIR

    meta = json.loads((WEIGHTS_DIR / META).read_text())
    recipe = [meta, *meta.get("init_training", [])]  # a fine-tune and the runs it started from
    assert all(run["settings"]["financebench"] == 0 and run["data"]["financebench_questions"] == 0 for run in recipe)
    assert meta["data"]["financebench_trained_on"] == []
    for source in ("finqa_examples", "tatqa_questions", "evidence_inference_prompts", "contractnli_rows"):
        assert sum(run["data"][source] for run in recipe) > 0, source


def test_a_fine_tune_keeps_the_documents_its_starting_weights_were_trained_on():
    from encoders.train_reader import inherit

    init = {"settings": {"epochs": 2}, "training": {"seconds": 10.0},
            "data": {"cuad_trained_on": ["a", "b"], "cuad_examples": 4, "financebench_trained_on": []}}
    meta = {"data": {"cuad_trained_on": [], "cuad_examples": 0}}
    inherit(meta, init)
    assert meta["data"]["init_trained_on"] == ["a", "b"]
    assert meta["init_training"] == [{"settings": {"epochs": 2}, "data": {"cuad_examples": 4},
                                      "training": {"seconds": 10.0}}]
    again = {"data": {}}
    inherit(again, meta)  # a fine-tune of a fine-tune keeps the whole chain
    assert again["data"]["init_trained_on"] == ["a", "b"] and len(again["init_training"]) == 2


def test_a_fine_tune_cannot_freeze_layers_its_starting_weights_trained(tmp_path):
    from encoders.reader import WEIGHTS_DIR
    from encoders.train_reader import main

    with pytest.raises(SystemExit, match="--split 5 would freeze layers"):
        main(["--out", str(tmp_path), "--init", str(WEIGHTS_DIR), "--split", "5", "--no-progress"])
    assert not (tmp_path / "reader.safetensors").exists()
