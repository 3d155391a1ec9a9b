"""Fuzz harness for the readers (text, HTML, FHIR JSON and NDJSON) and every sectionizer, with atheris (libFuzzer).

An input is ``[target byte][size byte][payload]``: the target picks a reader (the payload is the file) or a
sectionizer (the payload is the text), the size byte the ``(target_tokens, max_tokens)`` pair. Whatever the
bytes, a reader returns documents or raises ``IngestError``, and the sections keep the promises
``ingest_invariants`` checks; anything else is a crash.

    python tests/ingest/fuzz_ingest.py -atheris_runs=20000 [CORPUS_DIR ...]
    python tests/ingest/fuzz_ingest.py --seeds DIR      # writes a seed corpus from the fixtures

Without atheris (``pip install -e .[fuzz]``; wheels exist for Linux CPython), ``test_fuzz_ingest.py`` drives the
same ``one_input`` with hypothesis' byte strategy.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

try:
    import atheris
except ImportError:  # the hypothesis driver in test_fuzz_ingest.py needs only one_input
    atheris = None

# coverage feedback for the project's own code, when run as the fuzzer (not when pytest imports one_input)
_instrumented = (atheris.instrument_imports(include=["ingest"]) if atheris and __name__ == "__main__"
                 else contextlib.nullcontext())
with _instrumented:
    from ingest_invariants import check_document, sectionize_checked

    import ingest.sectionizers.contract
    import ingest.sectionizers.ehr
    import ingest.sectionizers.filing
    import ingest.sectionizers.generic
    import ingest.sectionizers.note
    import ingest.sectionizers.tree  # noqa: F401  (imported here to be instrumented)
    from ingest.errors import IngestError
    from ingest.readers import fhir, html, text
    from ingest.readers.text import page_starts
    from pipeline.types import DOC_KINDS, Document

SIZES = [(4000, 32000), (200, 400), (20, 40), (3, 5), (1, 1)]
READERS = [(text, "doc.txt"), (html, "doc.html"), (fhir, "doc.json"), (fhir, "doc.ndjson")]
TARGETS = len(READERS) + len(DOC_KINDS)
"""Targets 0–3: the readers of ``READERS``, then the sectionizers of ``DOC_KINDS`` on the payload as UTF-8 text."""


def one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    target, sizes, payload = data[0] % TARGETS, SIZES[data[1] % len(SIZES)], data[2:]
    if target < len(READERS):
        module, name = READERS[target]
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / name
            path.write_bytes(payload)
            try:
                docs = module.read(path)
            except IngestError:
                return
        for doc in docs:
            check_document(doc, paged=module is not fhir)
            sectionize_checked(doc, *sizes)
        return
    kind = DOC_KINDS[target - len(READERS)]
    s = payload.decode("utf-8", errors="replace")
    sectionize_checked(Document(id="doc", source="doc.txt", text=s, kind=kind, page_starts=page_starts(s)), *sizes)


def write_seeds(folder: Path) -> list[Path]:
    """A seed corpus from the real fixtures: each reader on its own kind of file, each sectionizer on text."""
    folder.mkdir(parents=True, exist_ok=True)
    fixtures = HERE / "fixtures"
    texts = [fixtures / "contract" / "cuad_articles_agency.txt", fixtures / "contract" / "cuad_inline_services.txt",
             fixtures / "ehr" / "aci_bench_note.txt", fixtures / "ehr" / "synthea_note.md"]
    seeds: list[tuple[int, bytes]] = [(0, p.read_bytes()[:3000]) for p in texts]
    seeds.append((1, (fixtures / "filing" / "nike_2019_10k_excerpt.htm").read_bytes()[:6000]))
    bulk = fixtures / "ehr" / "bulk"
    lines = [ln for p in sorted(bulk.glob("*.ndjson")) for ln in p.read_bytes().splitlines()[:2]]
    seeds.append((3, b"\n".join(lines)[:8000]))
    bundle = {"resourceType": "Bundle", "entry": [{"resource": json.loads(ln)} for ln in lines]}
    seeds.append((2, json.dumps(bundle).encode()[:8000]))  # cut JSON too: an IngestError is a fine answer
    filing = (fixtures / "filing" / "nike_2019_10k_excerpt.htm").read_text(encoding="utf-8")
    for k in range(len(DOC_KINDS)):
        body = [p.read_bytes()[:2000] for p in texts] + [filing.encode()[:2000]]
        seeds += [(len(READERS) + k, b) for b in body]
    out = []
    for i, (target, payload) in enumerate(seeds):
        path = folder / f"seed-{i:03d}"
        path.write_bytes(bytes([target, i % len(SIZES)]) + payload)
        out.append(path)
    return out


def main(argv: list[str]) -> None:
    if len(argv) == 3 and argv[1] == "--seeds":
        print(len(write_seeds(Path(argv[2]))), "seeds written to", argv[2])
        return
    if atheris is None:
        sys.exit("atheris is not installed (pip install -e .[fuzz]); run tests/ingest/test_fuzz_ingest.py instead")
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
