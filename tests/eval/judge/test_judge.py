"""The hallucination judge (eval/judge/): real MiniLM, the shipped weights, a real loopback OpenAI-compatible server."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from http.server import BaseHTTPRequestHandler

import numpy as np
import pytest
from conftest import ROOT, SHARED_DATA, loopback_server, send_chat_reply

from eval.judge import DEFAULT_WEIGHTS, JudgeError, JudgeResult, make_judge, split_claims

SOURCE = ("Either party may terminate this Agreement upon ninety (90) days written notice to the other party. "
          "The Supplier shall deliver the goods to the Customer's warehouse in Rotterdam. "
          "The Customer shall pay an annual fee of $25,000 within thirty (30) days of each invoice. "
          "The Supplier is not liable for delays caused by events beyond its reasonable control.")


@pytest.fixture(scope="module")
def judge():
    return make_judge("local")


def test_copied_claims_are_supported_and_altered_claims_are_not(judge):
    r = judge.judge("", [
        "The Customer shall pay an annual fee of $25,000 within thirty (30) days of each invoice.",  # copied
        "The Customer shall pay an annual fee of $40,000 within thirty (30) days of each invoice.",  # number
        "The Supplier is liable for delays caused by events beyond its reasonable control.",         # negation
        "The Supplier shall deliver the goods to the Customer's warehouse in Hamburg.",              # entity
    ], [SOURCE])
    assert r.unsupported == [False, True, True, True], r.scores
    assert r.scores[0] < min(r.scores[1:])
    assert r.hallucination_rate == pytest.approx(0.75)


def test_answer_text_is_split_into_claims_without_citation_markers(judge):
    text = "Either party may terminate on ninety (90) days written notice [1]. The annual fee is $25,000 [2, 3]."
    assert split_claims(text) == ["Either party may terminate on ninety (90) days written notice.",
                                  "The annual fee is $25,000."]
    r = judge.judge(text, None, [SOURCE])
    assert r.claims == split_claims(text) and len(r.scores) == 2
    assert all(0.0 <= s <= 1.0 for s in r.scores)


def test_no_claims_means_rate_zero(judge):
    r = judge.judge("", None, [SOURCE])
    assert r == JudgeResult([], [], [], 0.0)
    assert judge.judge("[1]", None, []).hallucination_rate == 0.0


def test_shipped_weights_load_and_are_small():
    from eval.judge.features import FEATURE_NAMES
    from eval.judge.head import BoostedTreesHead

    head = BoostedTreesHead.load(DEFAULT_WEIGHTS, FEATURE_NAMES)
    assert head.trees and 0.0 < head.threshold < 1.0
    assert DEFAULT_WEIGHTS.stat().st_size < 1_000_000
    assert (ROOT / "data" / "judge" / "README.md").exists()
    p = head.predict(np.zeros((3, len(FEATURE_NAMES)), dtype=np.float32))
    assert p.shape == (3,) and np.all((p >= 0) & (p <= 1))


def test_exported_trees_reproduce_scikit_learn_after_a_round_trip(tmp_path):
    from eval.judge.head import BoostedTreesHead

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    y = x[:, 0] + 0.5 * x[:, 1] * x[:, 2] > 0
    head = BoostedTreesHead.fit(x, y, ["a", "b", "c"], n_estimators=20)  # fit itself checks the export
    head.save(tmp_path / "head.json", note="test")
    again = BoostedTreesHead.load(tmp_path / "head.json", ["a", "b", "c"])
    assert np.allclose(again.predict(x), head.predict(x))
    with pytest.raises(RuntimeError, match="other features"):
        BoostedTreesHead.load(tmp_path / "head.json", ["a", "b"])


def test_unknown_kind_names_the_kinds():
    with pytest.raises(ValueError, match="local, openai"):
        make_judge("nli")


@pytest.mark.skipif(not (SHARED_DATA / "faithbench").exists(), reason="needs ../shared/data")
def test_calibrate_reports_held_out_agreement_on_a_small_sample():
    from eval.judge.calibrate import calibrate

    report = calibrate(SHARED_DATA, limit=12, seed=0)
    json.dumps(report)  # JSON-able
    assert "held-out" in report["method"] and report["threshold"] == 0.5
    for name in ("faithbench", "contractnli"):
        m = report[name]
        assert m["n"] == 12 and 0 < m["positives"] < 12
        for key in ("auroc", "balanced_accuracy"):
            assert 0.0 <= m[key] <= 1.0
            lo, hi = m[f"{key}_ci95"]
            assert lo <= hi and m[f"{key}_margin"] == pytest.approx(lo - 0.5)
        assert m["chance"] == 0.5
    assert report["faithbench"]["claims"]["n"] >= 12


def test_calibrate_runs_as_a_module_and_finds_the_shared_data_and_weights(tmp_path):
    from eval.judge import calibrate

    assert calibrate.DATA == SHARED_DATA  # the default --data, two folders above the package
    assert DEFAULT_WEIGHTS == ROOT / "data" / "judge" / "head.json"
    run = subprocess.run([sys.executable, "-m", "eval.judge.calibrate", "--data", str(tmp_path), "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and run.stdout == ""
    assert f"no FaithBench batches under {tmp_path / 'faithbench'}" in run.stderr


# ---------------------------------------------------------------- the OpenAI-compatible judge

class _Handler(BaseHTTPRequestHandler):
    calls: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls.append({"body": body, "auth": self.headers.get("Authorization")})
        prompt = body["messages"][-1]["content"]
        claims = re.findall(r"^(\d+)\. (.+)$", prompt.split("CLAIMS:")[1], re.M)
        match body["model"]:
            case "rule":  # a claim is supported when its text is in the source
                source = prompt.split("CLAIMS:")[0]
                verdicts = [{"claim": int(n), "verdict": "SUPPORTED" if c in source else "UNSUPPORTED"} for n, c in claims]
                content = "```json\n" + json.dumps({"verdicts": verdicts}) + "\n```"
            case "lines":  # no JSON at all
                content = "\n".join(f"{n}. {'UNSUPPORTED' if '99' in c else 'SUPPORTED'}" for n, c in claims)
            case "partial":  # only the first claim gets a verdict
                content = json.dumps({"verdicts": [{"claim": 1, "verdict": "SUPPORTED"}]})
            case _:
                self.send_response(500)
                self.end_headers()
                self.wfile.write(b"boom")
                return
        send_chat_reply(self, content)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    with loopback_server(_Handler) as url:
        yield url


def test_openai_judge_parses_per_claim_verdicts(server):
    judge = make_judge("openai", base_url=server, model="rule", api_key="k")
    copied = "The Supplier shall deliver the goods to the Customer's warehouse in Rotterdam."
    r = judge.judge(f"{copied} [1] The fee is $99 per year. [2]", None, [SOURCE])
    assert r.claims == [copied, "The fee is $99 per year."]
    assert r.unsupported == [False, True] and r.scores == [0.0, 1.0] and r.hallucination_rate == 0.5
    assert _Handler.calls[-1]["auth"] == "Bearer k" and _Handler.calls[-1]["body"]["temperature"] == 0.0


def test_openai_judge_reads_plain_lines_and_counts_missing_verdicts_as_unsupported(server, monkeypatch):
    monkeypatch.setenv("SECTIONRAG_JUDGE_BASE_URL", server)
    monkeypatch.setenv("SECTIONRAG_JUDGE_MODEL", "lines")
    r = make_judge("openai").judge("", ["The term is one year.", "The fee is $99."], [SOURCE])
    assert r.unsupported == [False, True]
    r = make_judge("openai", model="partial").judge("", ["The term is one year.", "The fee is $99."], [SOURCE])
    assert r.unsupported == [False, True] and not math.isnan(r.hallucination_rate)


def test_openai_judge_errors_are_clear(server, monkeypatch):
    monkeypatch.delenv("SECTIONRAG_JUDGE_BASE_URL", raising=False)
    with pytest.raises(ValueError, match="SECTIONRAG_JUDGE_BASE_URL"):
        make_judge("openai", model="rule")
    with pytest.raises(JudgeError, match="HTTP 500"):
        make_judge("openai", base_url=server, model="error").judge("", ["A claim."], [SOURCE])


def test_a_yes_no_verdict_is_its_label_and_its_quotes_are_the_claims(judge):
    from eval.judging import judge_one, judged_text
    from eval.records import AnswerRecord

    quote = "Either party may terminate this Agreement upon ninety (90) days written notice to the other party."
    rec = AnswerRecord(system="sectionrag", llm="extractive", item="i", suite="contractnli", doc_id="d",
                       label="Contradiction", impossible=False, answer=f"No: {quote} [1]", verdict="Contradiction")
    assert judged_text(rec) == f"{quote} [1]"
    judge_one(judge, rec, [SOURCE])
    assert rec.judge.claims == [quote] and rec.judge.unsupported == [False]
    # an answer the writer wrote keeps every word
    rec.verdict = None
    assert judged_text(rec) == rec.answer


def test_a_computed_claim_is_checked_by_arithmetic_not_by_the_text_judge(judge):
    from eval.judging import judge_one
    from eval.records import AnswerRecord

    rows = ["Net cash provided by operating activities 1,469,502 1,287,482",
            "Total current liabilities 2,213,556 2,494,435"]

    def judged(answer: str):
        rec = AnswerRecord(system="sectionrag", llm="extractive", item="i", suite="financebench", doc_id="d",
                           label="metrics-generated", impossible=False, answer=answer)
        judge_one(judge, rec, rows)
        return rec.judge

    right = judged("0.66, computed as (1,469,502 / 2,213,556) [1][2]")
    assert right.claims == ["0.66, computed as (1,469,502 / 2,213,556)"] and right.unsupported == [False]
    assert judged("0.71, computed as (1,469,502 / 2,213,556) [1][2]").unsupported == [True]  # wrong result
    assert judged("0.66, computed as (1,469,502 / 2,213,557) [1][2]").unsupported == [True]  # operand not in a row
    # a result stated in another scale (a table in thousands, the answer in millions) or as a percentage
    assert judged("$1,469.50 million, computed as 1,469,502 [1]").unsupported == [False]
    assert judged("66.4%, computed as (1,469,502 / 2,213,556) [1][2]").unsupported == [False]
