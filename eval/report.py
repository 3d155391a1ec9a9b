"""Reports: ``metrics.json``, ``report.md`` and a self-contained ``report.html`` with PNG plots.

Plots (matplotlib, Agg): answer quality and hallucination rate per system with 95% CIs, retrieval
recall and coverage, the latency distribution per system, and throughput. The Markdown links the
PNG files; the HTML embeds them (base64), so it can be mailed or archived as one file.
"""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path

from eval.records import AnswerRecord

PLOTS = "plots"


def _fmt(ci: dict | None, pct: bool = False) -> str:
    if not ci or ci.get("mean") is None:
        return "–"
    f = (lambda v: f"{100 * v:.1f}%") if pct else (lambda v: f"{v:.3f}")
    return f"{f(ci['mean'])} [{f(ci['lo'])}, {f(ci['hi'])}] (n={ci['n']})"


def _num(v, digits: int = 2) -> str:
    return "–" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


# -- tables ---------------------------------------------------------------------------------------
HEADLINE_HEADER = ["suite", "system", "answer quality (headline metric)", "hallucination rate (claims)",
                   "abstained / items", "latency p50 s"]


def headline_rows(result: dict) -> list[list[str]]:
    """The headline table: quality and hallucination per suite and system."""
    rows = [HEADLINE_HEADER]
    suites = result["suites"] if result["suite"] == "all" else {result["suite"]: result}
    for suite, res in suites.items():
        for name, m in res.get("systems", {}).items():
            h = m["headline"]
            rows.append([suite, name, f"{h['metric']}: {_fmt(h)}", _fmt(m["hallucination_rate"], pct=True),
                         f"{m['abstained']}/{m['items']}", _num(m["latency_s"]["p50"])])
    return rows


def judge_rows(calib: dict) -> list[list[str]]:
    """The judge's agreement per dataset: balanced accuracy and AUROC with CIs, margin of the CI over chance."""
    rows = [["labels", "level", "n (positives)", "balanced accuracy [95% CI]", "AUROC [95% CI]",
             "lower CI bound − chance (bal. acc. / AUROC)"]]

    def row(name: str, level: str, d: dict) -> list[str]:
        ba, au = d.get("balanced_accuracy_ci95") or [None, None], d.get("auroc_ci95") or [None, None]
        chance = d.get("chance", 0.5)
        margin = " / ".join("–" if c[0] is None else f"{c[0] - chance:+.3f}" for c in (ba, au))
        return [name, level, f"{d.get('n')} ({d.get('positives')})",
                f"{_num(d.get('balanced_accuracy'), 3)} [{_num(ba[0], 3)}, {_num(ba[1], 3)}]",
                f"{_num(d.get('auroc'), 3)} [{_num(au[0], 3)}, {_num(au[1], 3)}]", margin]

    for name, d in calib.items():
        if isinstance(d, dict) and "balanced_accuracy" in d:
            rows.append(row(name, "item", d))
            if isinstance(d.get("claims"), dict) and "balanced_accuracy" in d["claims"]:
                rows.append(row(name, "claim", d["claims"]))
    return rows


def _detail_rows(res: dict) -> list[list[str]]:
    names = list(res["systems"])
    rows = [["metric", *names]]
    first = res["systems"][names[0]]
    for q in first["quality"]:
        rows.append([q, *(_fmt(res["systems"][n]["quality"][q]) for n in names)])
    rows.append(["hallucination rate (claims)", *(_fmt(res["systems"][n]["hallucination_rate"], True) for n in names)])
    rows.append(["hallucination rate (per answer)",
                 *(_fmt(res["systems"][n]["hallucination_rate_per_answer"], True) for n in names)])
    for k, label in (("recall_at_k", "retrieval recall@k (gold touched)"),
                     ("evidence_coverage", "evidence coverage (retrieved)"),
                     ("context_coverage", "evidence coverage (writer's context)"),
                     ("context_chars", "writer's context, chars")):
        rows.append([label, *(_fmt(res["systems"][n]["retrieval"][k]) for n in names)])
    rows.append(["citation precision", *(_fmt(res["systems"][n]["citations"]["precision"]) for n in names)])
    rows.append(["citation precision, by characters",
                 *(_fmt(res["systems"][n]["citations"].get("char_precision")) for n in names)])
    rows.append(["citation recall", *(_fmt(res["systems"][n]["citations"]["recall"]) for n in names)])
    for k in ("precision", "recall"):
        rows.append([f"abstention {k}", *(
            f"{_num(res['systems'][n]['abstention'][k])} (tp {res['systems'][n]['abstention']['tp']}, "
            f"fp {res['systems'][n]['abstention']['fp']}, fn {res['systems'][n]['abstention']['fn']})" for n in names)])
    for k in ("p50", "p95", "mean"):
        rows.append([f"latency {k} (s)", *(_num(res["systems"][n]["latency_s"][k]) for n in names)])
    cold = {n: res["systems"][n].get("latency_first_on_doc_s") or {} for n in names}
    for k in ("p50", "p95"):
        rows.append([f"latency {k}, a process's first question on a document (s)",
                     *(f"{_num(cold[n].get(k))} (n={cold[n].get('n', 0)})" for n in names)])
    rows += _reader_rows(res, names)
    rows.append(["answered / abstained / errors", *(
        f"{res['systems'][n]['answered']} / {res['systems'][n]['abstained']} / {res['systems'][n]['errors']}"
        for n in names)])
    return rows


def _reader_rows(res: dict, names: list[str]) -> list[list[str]]:
    """The evidence scorers at the baseline's budget, ContractNLI's paper measures, the pooled unit PR curve."""
    rows = []
    sysm = res["systems"]
    for k in sorted({k for n in names for k in sysm[n].get("evidence_scorers", {})}):
        rows.append([f"gold evidence in the {k} scorer's best units at the baseline's budget",
                     *(_fmt(sysm[n].get("evidence_scorers", {}).get(k)) for n in names)])
    for k, label in (("f1_entailment", "F1 Entailment"), ("f1_contradiction", "F1 Contradiction"),
                     ("evidence_map", "evidence mAP"), ("evidence_p_at_r80", "evidence precision @ 80% recall")):
        if any(k in (sysm[n].get("nli") or {}) for n in names):
            rows.append([label, *(_fmt(v) if isinstance(v := (sysm[n].get("nli") or {}).get(k), dict) else _num(v)
                                  for n in names)])
    if any("unit_pr" in sysm[n] for n in names):
        rows.append(["trained scorer, pooled units: AUPR / precision @ 80% recall", *(
            f"{_num(sysm[n]['unit_pr']['aupr'], 3)} / {_num(sysm[n]['unit_pr']['p_at_r80'], 3)} "
            f"({sysm[n]['unit_pr']['relevant']} gold of {sysm[n]['unit_pr']['units']})" if "unit_pr" in sysm[n] else "–"
            for n in names)])
    return rows


EARLIER = " (measured by an earlier run into this folder)"
NO_RETRIEVAL_PLOT = "No retrieval plot: this suite's questions have no gold evidence spans to measure retrieval against."


def _throughput_rows(tp: dict) -> list[list[str]]:
    rows = [["measure", "value"]]
    def kept(d: dict | None) -> str:
        d = d or {}
        return EARLIER if d.get("earlier_run") else (f" (measured by --shard part {d['from_shard']})"
                                                     if d.get("from_shard") else "")

    ing = tp.get("ingest")
    if ing:
        rows += [["ingest documents / pages / passages", f"{ing['documents']} / {ing['pages']} / {ing['passages']} "
                  f"in {ing['seconds']:.1f}s ({ing['skipped']} already stored){kept(ing)}"],
                 ["ingest docs/s", _num(ing["docs_per_s"], 3)], ["ingest pages/s", _num(ing["pages_per_s"], 2)]]
    emb = tp.get("embedding")
    if emb:
        rows.append(["embedding passages/s (MiniLM, ≤256 tokens)", _num(emb.get("passages_per_s"), 1) + kept(emb)])
    b = tp.get("baseline_index")
    if b:
        rows.append(["baseline chunk index: chunks embedded/s (512 tokens)", _num(b.get("chunks_per_s"), 2) + kept(b)])
    enc = tp.get("encoder") or {}
    read = (f" ({enc['sections']} sections, {enc['tokens']} tokens, longest {enc['longest_tokens']})"
            if enc.get("sections") else "")
    rows.append(["encoder tokens/s", _num(enc.get("tokens_per_s")) + read + kept(enc) + " — " + enc.get("note", "")])
    digest = tp.get("digest") or {}
    for name, d in digest.items():
        if isinstance(d, dict):  # one entry per system (beside an "earlier_run" mark)
            rows.append([f"digest: sections read by {name}'s encoder in answers",
                         f"{d['tokens']} tokens in {_num(d['seconds'], 1)} s ({_num(d.get('tokens_per_s'))} "
                         f"tokens/s; each section once, then cached){kept(digest)}"])
    parts = tp.get("peak_rss_mb_parts")
    by_part = (" (the largest of the --shard parts: " + ", ".join(f"{k} {_num(v, 0)}" for k, v in parts.items()) + ")"
               if parts else "")
    rows.append(["peak memory (process RSS, MB)", _num(tp.get("peak_rss_mb"), 0) + by_part])
    for part in tp.get("shard_parts") or []:
        rows.append([f"--shard part {part['shard']} (its last invocation that answered)",
                     f"{part['answers']} answers in {_num(part['seconds'], 0)} s"])
    return rows


def _md_table(rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows[1:]]
    return "\n".join(out)


def _html_table(rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# -- plots ----------------------------------------------------------------------------------------
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _bars(ax, labels: list[str], cis: list[dict], title: str, pct: bool = False) -> None:
    means = [c["mean"] if c and c.get("mean") is not None else 0.0 for c in cis]
    lo = [m - c["lo"] if c and c.get("lo") is not None else 0.0 for m, c in zip(means, cis)]
    hi = [c["hi"] - m if c and c.get("hi") is not None else 0.0 for m, c in zip(means, cis)]
    scale = 100 if pct else 1
    ax.bar(range(len(labels)), [m * scale for m in means], yerr=[[v * scale for v in lo], [v * scale for v in hi]],
           capsize=4, color=["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860"][: len(labels)])
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=8)
    ax.set_title(title, fontsize=10)
    for i, c in enumerate(cis):
        if not c or c.get("mean") is None:
            ax.text(i, 0, "n/a", ha="center", va="bottom", fontsize=8)


def plot_suite(out_dir: Path, result: dict, records: dict[str, list[AnswerRecord]]) -> list[tuple[str, str]]:
    """Writes the suite's PNGs; returns ``[(file name, caption)]``."""
    plt = _plt()
    folder = out_dir / PLOTS
    folder.mkdir(parents=True, exist_ok=True)
    names = list(result["systems"])
    sysm = result["systems"]
    made = []

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    _bars(axes[0], names, [sysm[n]["headline"] for n in names], f"answer quality: {result['headline_metric']}")
    _bars(axes[1], names, [sysm[n]["hallucination_rate"] for n in names], "hallucination rate, % of claims", pct=True)
    fig.suptitle(f"{result['suite']} — {result['items']} items, writer {result['llm']} (95% bootstrap CIs)", fontsize=10)
    fig.tight_layout()
    fig.savefig(folder / "quality_hallucination.png", dpi=110)
    plt.close(fig)
    made.append(("quality_hallucination.png", "Answer quality and hallucination rate per system"))

    panels = (("recall_at_k", "retrieval recall@k"), ("evidence_coverage", "gold evidence in retrieved text"),
              ("context_coverage", "gold evidence in writer's context"))
    if any(sysm[n]["retrieval"][k].get("mean") is not None for n in names for k, _ in panels):
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
        for ax, (k, t) in zip(axes, panels):
            _bars(ax, names, [sysm[n]["retrieval"][k] for n in names], t)
        fig.tight_layout()
        fig.savefig(folder / "retrieval.png", dpi=110)
        plt.close(fig)
        made.append(("retrieval.png", "Retrieval: does the retrieved text / the writer's context contain the gold evidence"))
    else:  # no gold evidence spans (Synthea): three empty panels would say nothing
        (folder / "retrieval.png").unlink(missing_ok=True)

    fig, ax = plt.subplots(figsize=(8, 3.6))
    # log scale: cached and uncached answers differ by orders of magnitude, and one stalled answer would
    # otherwise flatten every box
    data = [[max(r.seconds, 1e-3) for r in records.get(n, []) if r.ok] or [1e-3] for n in names]
    ax.boxplot(data, whis=(5, 95), showfliers=True, flierprops={"markersize": 3})
    ax.set_yscale("log")
    ax.set_xticks(range(1, len(names) + 1), names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("seconds per question (log)")
    ax.set_title("ask latency per system (box: quartiles, whiskers: 5th-95th percentile)", fontsize=10)
    fig.tight_layout()
    fig.savefig(folder / "latency.png", dpi=110)
    plt.close(fig)
    made.append(("latency.png", "Latency distribution per question"))

    tp = result.get("throughput", {})
    vals = {"ingest docs/s": (tp.get("ingest") or {}).get("docs_per_s"),
            "ingest pages/s": (tp.get("ingest") or {}).get("pages_per_s"),
            "embed passages/s": (tp.get("embedding") or {}).get("passages_per_s"),
            "baseline chunks/s": (tp.get("baseline_index") or {}).get("chunks_per_s"),
            "long encoder tokens/s": (tp.get("encoder") or {}).get("tokens_per_s")}
    fig, ax = plt.subplots(figsize=(8, 3.6))
    labels = list(vals)
    ax.barh(labels, [v or 0.0 for v in vals.values()], color="#4c72b0")
    for i, v in enumerate(vals.values()):
        ax.text(v or 0.0, i, f" {v:.2f}" if v else " not measured in this run", va="center", fontsize=8)
    ax.set_xscale("symlog")
    ax.set_title("throughput (this machine)", fontsize=10)
    fig.tight_layout()
    fig.savefig(folder / "throughput.png", dpi=110)
    plt.close(fig)
    made.append(("throughput.png", "Throughput"))
    return made


def plot_summary(out_dir: Path, result: dict) -> list[tuple[str, str]]:
    import numpy as np

    plt = _plt()
    folder = out_dir / PLOTS
    folder.mkdir(parents=True, exist_ok=True)
    suites = [s for s, r in result["suites"].items() if r.get("systems")]
    names = list(dict.fromkeys(n for s in suites for n in result["suites"][s]["systems"]))
    made = []
    for key, title, fname, pct in (("headline", "answer quality (headline metric per suite)", "quality_by_suite.png", False),
                                   ("hallucination_rate", "hallucination rate, % of claims", "hallucination_by_suite.png", True)):
        fig, ax = plt.subplots(figsize=(10, 3.8))
        width = 0.8 / max(len(names), 1)
        for j, n in enumerate(names):
            cis = [result["suites"][s]["systems"].get(n, {}).get(key) or {} for s in suites]
            means = np.array([c.get("mean") or 0.0 for c in cis]) * (100 if pct else 1)
            err = np.array([[(c.get("mean") or 0) - (c.get("lo") or 0) if c.get("mean") is not None else 0 for c in cis],
                            [(c.get("hi") or 0) - (c.get("mean") or 0) if c.get("mean") is not None else 0 for c in cis]])
            ax.bar(np.arange(len(suites)) + j * width, means, width, yerr=err * (100 if pct else 1), capsize=3, label=n)
        ax.set_xticks(np.arange(len(suites)) + width * (len(names) - 1) / 2, suites)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(folder / fname, dpi=110)
        plt.close(fig)
        made.append((fname, title))
    return made


# -- writers --------------------------------------------------------------------------------------
_CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:4px 8px;"
        "text-align:left;vertical-align:top}th{background:#f3f3f3}img{max-width:100%;display:block;margin:1em 0}"
        "code{background:#f3f3f3;padding:1px 4px}.note{color:#555;font-size:13px}")


def _img_b64(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _about(result: dict) -> list[str]:
    return [f"suite `{result['suite']}`, data `{result.get('data')}`",
            f"items: {result.get('items')} of {result.get('items_total')} (limit {result.get('limit')}, seed {result.get('seed')})",
            f"answer writer: `{result.get('llm')}`; hallucination judge: `{result.get('judge')}`; store `{result.get('store')}`",
            f"wall time {result.get('seconds')} s on {result.get('host')}"]


def write_report(out_dir: Path, result: dict, records: dict[str, list[AnswerRecord]]) -> None:
    """``metrics.json``, ``report.md`` and ``report.html`` for one suite."""
    out_dir = Path(out_dir)
    _write_atomic(out_dir / "metrics.json", json.dumps(result, indent=2, ensure_ascii=False))
    title = f"sectionrag evaluation — {result['suite']}"
    md = [f"# {title}", ""]
    hl = [f"<h1>{html.escape(title)}</h1>"]
    if result["suite"] == "faithbench":
        calib = result.get("judge_agreement")
        rows = [["measure", "value"]] + [[k, json.dumps(v) if not isinstance(v, str) else v]
                                         for k, v in _flatten(calib or {}).items()]
        head = judge_rows(calib or {})
        md += ["Agreement of the hallucination judge with FaithBench / ContractNLI human labels.", "",
               _md_table(head), "", "## Everything the calibration reported", "", _md_table(rows)]
        hl += ["<p>Agreement of the hallucination judge with FaithBench / ContractNLI human labels.</p>",
               _html_table(head), "<h2>Everything the calibration reported</h2>", _html_table(rows)]
    elif result["systems"]:
        plots = plot_suite(out_dir, result, records)
        md += [f"- {line}" for line in _about(result)] + ["", "## Headline", "", _md_table(headline_rows(result)), "",
                                                          "## All metrics (mean [95% CI] (n items))", "",
                                                          _md_table(_detail_rows(result)), "", "## Throughput", "",
                                                          _md_table(_throughput_rows(result["throughput"])), "",
                                                          "## Plots", ""]
        md += [f"![{cap}]({PLOTS}/{f})" for f, cap in plots]
        no_retrieval = all(f != "retrieval.png" for f, _ in plots)
        if no_retrieval:
            md += ["", NO_RETRIEVAL_PLOT]
        hl += ["<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in _about(result)) + "</ul>",
               "<h2>Headline</h2>", _html_table(headline_rows(result)),
               "<h2>All metrics (mean [95% CI] (n items))</h2>", _html_table(_detail_rows(result)),
               "<h2>Throughput</h2>", _html_table(_throughput_rows(result["throughput"])), "<h2>Plots</h2>"]
        hl += [f"<figure><img alt='{html.escape(cap)}' src='{_img_b64(out_dir / PLOTS / f)}'>"
               f"<figcaption>{html.escape(cap)}</figcaption></figure>" for f, cap in plots]
        if no_retrieval:
            hl += [f"<p class='note'>{html.escape(NO_RETRIEVAL_PLOT)}</p>"]
    else:
        md += ["No results."]
        hl += ["<p>No results.</p>"]
    if result.get("notes"):
        md += ["", "## Notes", ""] + [f"- {n}" for n in result["notes"]]
        hl += ["<h2>Notes</h2><ul class='note'>" + "".join(f"<li>{html.escape(n)}</li>" for n in result["notes"]) + "</ul>"]
    _write_atomic(out_dir / "report.md", "\n".join(md) + "\n")
    _write_atomic(out_dir / "report.html", _page(title, "\n".join(hl)))


def write_summary(out_dir: Path, result: dict) -> None:
    """The ``--suite all`` report: the headline table over suites, links to each suite's report."""
    out_dir = Path(out_dir)
    _write_atomic(out_dir / "metrics.json", json.dumps(result, indent=2, ensure_ascii=False))
    plots = plot_summary(out_dir, result)
    title = "sectionrag evaluation — all suites"
    rows = headline_rows(result)
    md = [f"# {title}", "", f"answer writer `{result['llm']}`, limit {result['limit']}, wall time {result['seconds']} s", "",
          "## Headline", "", _md_table(rows), ""]
    md += [f"![{cap}]({PLOTS}/{f})" for f, cap in plots]
    links = {s: os.path.relpath(Path(r["report"]).parent, out_dir) for s, r in result["suites"].items()}
    md += ["", "## Suites", ""] + [f"- [{s}]({links[s]}/report.md)" for s in result["suites"]]
    fb = result["suites"].get("faithbench", {}).get("judge_agreement")
    if fb:
        md += ["", "## Judge agreement (faithbench)", "", "```", json.dumps(fb, indent=1)[:3000], "```"]
    hl = [f"<h1>{title}</h1>", f"<p>answer writer <code>{html.escape(result['llm'])}</code>, limit {result['limit']}, "
          f"wall time {result['seconds']} s</p>", "<h2>Headline</h2>", _html_table(rows)]
    hl += [f"<figure><img alt='{html.escape(cap)}' src='{_img_b64(out_dir / PLOTS / f)}'></figure>" for f, cap in plots]
    hl += ["<h2>Suites</h2><ul>" + "".join(f"<li><a href='{links[s]}/report.html'>{s}</a></li>" for s in result["suites"])
           + "</ul>"]
    if fb:
        hl += ["<h2>Judge agreement (faithbench)</h2>", _html_table([["measure", "value"]] + [
            [k, json.dumps(v)] for k, v in _flatten(fb).items()])]
    _write_atomic(out_dir / "report.md", "\n".join(md) + "\n")
    _write_atomic(out_dir / "report.html", _page(title, "\n".join(hl)))


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and len(json.dumps(v)) > 120:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>{body}</body></html>\n")


def combine(out_dir: Path, suite_dirs: list[Path]) -> dict:
    """The ``all`` summary from suites run separately (each folder holds a suite's ``metrics.json``).

    >>> combine(Path("runs/all"), [Path("runs/cuad"), Path("runs/financebench")])   # doctest: +SKIP
    """
    suites = {}
    for d in suite_dirs:
        res = json.loads((Path(d) / "metrics.json").read_text())
        suites[res["suite"]] = res
    systems: dict[str, dict] = {}
    for suite, res in suites.items():
        for name, met in res.get("systems", {}).items():
            systems.setdefault(name, {})[suite] = met
    llms = sorted({str(r.get("llm")) for r in suites.values() if r.get("systems")})
    result = {"suite": "all", "systems": systems, "suites": suites, "report": str(Path(out_dir) / "report.html"),
              "metrics": str(Path(out_dir) / "metrics.json"), "llm": ", ".join(llms),
              "limit": ", ".join(f"{s}: {r.get('limit')}" for s, r in suites.items()),
              "seconds": round(sum(r.get("seconds") or 0 for r in suites.values()), 1)}
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    write_summary(Path(out_dir), result)
    return result


if __name__ == "__main__":
    import sys

    if len(sys.argv) < 3:
        sys.exit("usage: python -m eval.report OUT_DIR SUITE_DIR... (combines suites run separately)")
    print(combine(Path(sys.argv[1]), [Path(a) for a in sys.argv[2:]])["report"])
