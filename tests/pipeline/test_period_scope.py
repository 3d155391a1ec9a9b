"""Two real filings of one company (Johnson & Johnson's fiscal 2022 earnings release and a 2023 8-K): a question
naming a period gets that period's filing ranked wholly above the other, the trace says which filter and ranking
were applied, and a question naming a year no stored filing covers says so in its answer."""

from __future__ import annotations

import pytest
from conftest import SHARED_DATA, assert_citations_exact

from pipeline import Pipeline, PipelineConfig

DOCS = SHARED_DATA / "financebench" / "docs"
EARNINGS, EIGHT_K = "JOHNSON_JOHNSON_2022Q4_EARNINGS", "JOHNSON_JOHNSON_2023_8K_dated-2023-08-30"


@pytest.fixture(scope="module")
def jnj(tmp_path_factory):
    if not DOCS.is_dir():
        pytest.skip("FinanceBench is not beside the checkout (../shared/data)")
    cfg = PipelineConfig().replace(synthesize={"llm": "extractive"})
    with Pipeline(tmp_path_factory.mktemp("jnj"), cfg) as p:
        report = p.ingest([DOCS / f"{EARNINGS}.txt", DOCS / f"{EIGHT_K}.txt"])
        assert report.documents == 2 and not report.failed
        assert dict(p.document(EARNINGS).metadata)["fiscal_year"] == "2022"
        assert dict(p.document(EIGHT_K).metadata)["fiscal_year"] == "2023"
        yield p


def test_the_named_periods_filing_ranks_above_every_section_of_another_period(jnj):
    found = jnj.retrieve("What were Johnson & Johnson's worldwide sales in fiscal 2023?", top_sections=10)
    docs = [s.doc_id for s in found]
    assert EIGHT_K in docs and EARNINGS in docs
    first_other = docs.index(EARNINGS)
    assert set(docs[:first_other]) == {EIGHT_K} and set(docs[first_other:]) == {EARNINGS}
    answer = jnj.ask("What were Johnson & Johnson's worldwide sales in fiscal 2022?", trace=True)
    assert answer.trace.scope.startswith("names johnson johnson; fiscal year 2022")
    assert f"ranked below every section of that period: {EIGHT_K}" in answer.trace.scope
    assert answer.sections[0].doc_id == EARNINGS
    assert not answer.text.startswith("No stored filing")
    assert_citations_exact(jnj, answer)


def test_a_year_no_stored_filing_covers_is_said_in_the_answer(jnj):
    answer = jnj.ask("What were Johnson & Johnson's worldwide sales in fiscal 2019?", trace=True)
    assert answer.text.startswith("No stored filing of johnson johnson is for fiscal 2019 (stored: fiscal 2022, 2023)")
    assert "no filing of fiscal 2019" in answer.trace.scope
    assert_citations_exact(jnj, answer)


def test_the_context_line_is_stored_and_searched_beside_the_text(jnj):
    from pipeline.store import SectionStore

    store = SectionStore(jnj.folder)
    contexts = dict(store.conn.execute("SELECT doc_id, context FROM passages GROUP BY doc_id").fetchall())
    assert contexts[EARNINGS].startswith("Johnson & Johnson, earnings release, fiscal 2022")
    assert contexts[EIGHT_K].startswith("Johnson & Johnson, current report 8-K, fiscal 2023")
    # words only the context line holds find the document they name
    top = store.lexical_search("current report 8-K", 3)
    doc_of = dict(store.conn.execute("SELECT rowid, doc_id FROM passages").fetchall())
    assert [doc_of[r] for r, _ in top] == [EIGHT_K] * 3
    store.close()


def test_a_version_1_store_is_migrated_with_its_context_lines(jnj, tmp_path):
    import shutil
    import sqlite3

    from pipeline.store import DB_NAME, SectionStore

    old = tmp_path / "v1"
    shutil.copytree(jnj.folder, old, ignore=shutil.ignore_patterns("*.lock"))
    with sqlite3.connect(old / DB_NAME) as conn:  # the store as version 1 wrote it: no context column, text-only FTS
        conn.executescript("""
            DROP TABLE passages_fts;
            ALTER TABLE passages DROP COLUMN context;
            CREATE VIRTUAL TABLE passages_fts USING fts5(text, content='passages', content_rowid='rowid',
                                                         tokenize='porter unicode61');
            INSERT INTO passages_fts(passages_fts) VALUES ('rebuild');
            UPDATE meta SET value='1' WHERE key='schema_version';""")
    store, fresh = SectionStore(old), SectionStore(jnj.folder)
    assert store.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "2"
    rows = "SELECT rowid, context FROM passages ORDER BY rowid"
    assert store.conn.execute(rows).fetchall() == fresh.conn.execute(rows).fetchall()
    for query in ("current report 8-K", "worldwide sales fiscal 2022", "Kenvue exchange offer"):
        assert store.lexical_search(query, 10) == fresh.lexical_search(query, 10)
    store.close()
    fresh.close()
    with Pipeline(old, PipelineConfig().replace(synthesize={"llm": "extractive"})) as p:
        answer = p.ask("What were Johnson & Johnson's worldwide sales in fiscal 2022?")
        assert_citations_exact(p, answer)
