"""The trained section reader: the shipped weights load offline and reproduce their recorded validation figures
on a slice of ContractNLI dev; its scores are per unit and its verdicts well formed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import SHARED_DATA

from encoders.reader import META, WEIGHTS_DIR, EvidenceReader

pytestmark = pytest.mark.skipif(not EvidenceReader.available(), reason="no trained reader weights in data/reader")


@pytest.fixture(scope="module")
def reader():
    r = EvidenceReader(impl="blocked")  # the backend the recorded figures were measured with
    r.warm_up()
    return r


def test_shipped_weights_reproduce_their_validation_slice(reader):
    if not (SHARED_DATA / "contractnli" / "dev.json").exists():
        pytest.skip("needs ../shared/data/contractnli")
    from encoders.train_reader import SLICE_DOCS, load_contractnli, validate_contractnli

    recorded = json.loads((WEIGHTS_DIR / META).read_text())["validation"]["contractnli_dev_slice"]
    docs, hyps = load_contractnli(SHARED_DATA / "contractnli" / "dev.json")
    again = validate_contractnli(reader, docs[:SLICE_DOCS], hyps, reader.tokenizer,
                                 json.loads((WEIGHTS_DIR / META).read_text())["settings"]["piece_tokens"], progress=False)
    for key in ("accuracy", "evidence_map", "evidence_p_at_r80"):
        assert again[key] == pytest.approx(recorded[key], abs=1e-3), key


def test_scores_follow_the_question(reader):
    text = ("The Receiving Party shall not disclose Confidential Information to any third party. "
            "This Agreement shall be governed by the laws of the State of New York. "
            "The Receiving Party may disclose Confidential Information to its employees who need to know it.")
    units = [(0, 85), (86, 157), (158, len(text))]
    law = reader.read(text, units, "The Agreement is governed by the laws of New York.")
    staff = reader.read(text, units, "Receiving Party may share some Confidential Information with its employees.")
    assert law.unit_scores.shape == (3,) and np.all((0 <= law.unit_scores) & (law.unit_scores <= 1))
    assert int(np.argmax(law.unit_scores)) == 1 and int(np.argmax(staff.unit_scores)) == 2
    assert law.probs.shape == (3,) and abs(float(law.probs.sum()) - 1) < 1e-5
    assert reader.read(text, [], "anything").unit_scores.shape == (0,)


def test_bench_reader_times_every_row():
    import subprocess

    from conftest import CLI, ROOT

    proc = subprocess.run([*CLI, "bench", "reader", "--lengths", "300,600", "--repeats", "1", "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout)["rows"]
    assert {r["row"] for r in rows} == {"untrained-encoder", "trained-cold", "trained-warm"}
    assert {r["length"] for r in rows} == {300, 600} and all(r["ms"] > 0 for r in rows)
    # each length's warm reading uses that section's cached lower layers (the cache is keyed per section)
    assert [r["matches_cold"] for r in rows if r["row"] == "trained-warm"] == [True, True]
    proc = subprocess.run([*CLI, "bench", "reader", "--train", "--lengths", "128", "--repeats", "1", "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    timed = {(r["row"], r["impl"]) for r in json.loads(proc.stdout)["rows"] if "ms" in r}
    assert {("train-upper-cached", "blocked"), ("train-all-layers", "reference")} <= timed
