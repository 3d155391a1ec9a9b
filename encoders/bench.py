"""``sectionrag bench encoder``: our long encoder on every available attention backend against its peers.

Peers, same size as all-MiniLM-L6-v2 (6 layers, 384 hidden, 12 heads), random weights (timing only):
HF ``LongformerModel`` (attention_window=512, token 0 global), HF ``BigBirdModel`` (block_sparse, 64-token blocks,
3 random blocks) and dense ``BertModel`` with SDPA. Ours: ``LongEncoderModel`` on the MiniLM weights, window 256
each side (= attention_window 512), token 0 global.

Each (impl, length) row runs in a fresh child process so rows cannot contaminate each other: one warm-up
forward (for compiled FlexAttention this is the compile, reported as ``compile_s``), then ``repeats`` timed
forwards (median ``ms``; fewer when one forward takes over 40 s, so that a row times for about 2 minutes).
``peak_mb`` is the memory one forward adds on top of the loaded model, input and warm caches: on the CPU
the peak resident set (VmHWM, reset through /proc/self/clear_refs) minus the resident set before it, measured
in a second fresh process with glibc's mmap threshold fixed at 128 KiB so that freed tensors leave the
resident set (the timing process keeps glibc's defaults); on CUDA ``max_memory_allocated`` minus the
allocated bytes before it, in the timing process.

    python -m encoders.bench --lengths 1024,4096,16384 --json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

OURS = ("cpp", "blocked", "flex", "flex_eager", "triton", "flash")
PEERS = ("hf_longformer", "hf_bigbird", "hf_bert_sdpa")
DTYPES = ("float32", "bfloat16")
DENSE_EAGER_LIMIT = 8192  # eager FlexAttention forms S x S scores per head: 16k would need > 12 GB


def _log(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


def default_impls(device: str) -> list[str]:
    """Our backends available on ``device``, then the peers."""
    from kernels import backend_available

    ours = [impl for impl in OURS if backend_available(impl, device)]
    if device == "cpu":  # the Triton interpreter is a correctness tool, not a benchmark
        ours = [impl for impl in ours if impl != "triton"]
    return [f"sectionrag_{impl}" for impl in ours] + list(PEERS)


def bench_encoder(lengths: list[int], device: str = "cpu", impls: list[str] | None = None, repeats: int = 3,
                  progress: bool = True, timeout_s: float = 1800.0, threads: int | None = None,
                  dtypes: list[str] | None = None) -> dict:
    """Time the encoders at each length: {"device", "rows": [{"impl", "length", "ms", "tokens_per_s",
    "peak_mb", ...}], "skipped": [{"impl", "length", "reason"}], ...}.

    ``impls`` names rows as in ``default_impls`` (``sectionrag_<backend>`` or a peer); ``threads`` sets
    torch's CPU threads in every child (default: torch's own choice); ``dtypes`` are the precisions every
    row runs in (``float32``, ``bfloat16``; default float32 on the CPU, bfloat16 on CUDA), ratios taken
    between rows of the same length and precision; progress goes to stderr.
    """
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be cpu or cuda, got {device!r}")
    if not lengths or any(n < 16 for n in lengths):
        raise ValueError("lengths must be a non-empty list of token counts >= 16")
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    dtypes = dtypes or ["float32" if device == "cpu" else "bfloat16"]
    if bad := [d for d in dtypes if d not in DTYPES]:
        raise ValueError(f"unknown dtype(s) {bad}; choose from {', '.join(DTYPES)}")
    impls = impls or default_impls(device)
    unknown = [i for i in impls if i not in PEERS and i.removeprefix("sectionrag_") not in OURS]
    if unknown:
        raise ValueError(f"unknown encoder impl(s) {unknown}; choose from {default_impls(device)}")
    rows, skipped = [], []
    for length, dtype, impl in ((n, d, i) for n in lengths for d in dtypes for i in impls):
        if impl == "sectionrag_flex_eager" and device == "cpu" and length > DENSE_EAGER_LIMIT:
            skipped.append({"impl": impl, "length": length, "dtype": dtype,
                            "reason": f"eager FlexAttention on the CPU forms dense S x S scores (> {DENSE_EAGER_LIMIT} tokens)"})
            continue
        _log(progress, f"bench encoder: {impl} at {length} tokens on {device}, {dtype} ...")
        spec = {"impl": impl, "length": length, "device": device, "repeats": repeats, "threads": threads,
                "dtype": dtype}
        # Timing and memory come from two fresh processes. glibc keeps freed blocks up to 32 MB in its heap,
        # so a row's resident set would depend on how its tensors happen to be sized: the memory child fixes
        # the mmap threshold at 128 KiB, so every large block leaves the resident set on free and the peak
        # tracks live memory alike for every row. That setting costs a page fault per fresh large
        # allocation, which is not how anyone runs a model, so the timing child keeps glibc's defaults.
        # On CUDA the allocator's own statistics need no such setting: one child does both.
        row = _run_child({**spec, "mode": "time" if device == "cpu" else "both"}, {}, timeout_s)
        if "error" not in row and device == "cpu":
            mem = _run_child({**spec, "mode": "memory"}, {"MALLOC_MMAP_THRESHOLD_": "131072"}, timeout_s)
            row = mem if "error" in mem else {**row, "peak_mb": mem["peak_mb"], "process_peak_mb": mem["process_peak_mb"]}
        if "error" in row:
            skipped.append({"impl": impl, "length": length, "dtype": dtype, "reason": row["error"]})
            _log(progress, f"  skipped: {row['error']}")
            continue
        rows.append(row)
        _log(progress, f"  {row['ms']:.1f} ms, {row['tokens_per_s']:.0f} tokens/s, peak {row['peak_mb']:.0f} MB")
    _add_ratios(rows)
    return {"device": _device_name(device), "rows": rows, "skipped": skipped,
            "config": {"layers": 6, "hidden": 384, "heads": 12, "attention_window": 512, "global_tokens": 1,
                       "batch": 1, "dtype": dtypes[0] if len(dtypes) == 1 else dtypes, "repeats": repeats,
                       "threads": threads or _threads()}}


def section_throughput(sections: list[tuple[str, str]], *, max_tokens: int = 16384, model_path=None) -> dict:
    """Tokens per second of ``LongEncoder`` (automatic backend) reading each ``(section text, question)`` whole,
    the question as global tokens, after one warm-up; sections past ``max_tokens`` are cut there."""
    from encoders.long_encoder import LongEncoder

    if not sections:
        return {"tokens_per_s": None}
    enc = LongEncoder(model_path, max_tokens=max_tokens)
    enc.encode("warm up", query="warm up")
    tokens, truncated, t0 = [], 0, time.perf_counter()
    for text, question in sections:
        out = enc.encode(text, query=question)
        tokens.append(len(out.token_embeddings))
        truncated += out.truncated
    dt = time.perf_counter() - t0
    return {"tokens_per_s": sum(tokens) / dt if dt else None, "sections": len(sections), "tokens": sum(tokens),
            "longest_tokens": max(tokens), "truncated": truncated, "seconds": round(dt, 3)}


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _device_name(device: str) -> str:
    import platform

    import torch

    if device == "cuda":
        return f"cuda: {torch.cuda.get_device_name()}"
    return f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"


def _add_ratios(rows: list[dict]) -> None:
    """Throughput ratios against the two peers at the same length and precision, by wall clock and by CPU time."""
    def at(row: dict) -> tuple:
        return row["length"], row.get("dtype", "float32")

    for peer, key in (("hf_longformer", "ratio_vs_hf_longformer"), ("hf_bert_sdpa", "ratio_vs_bert_sdpa")):
        for measure, suffix in (("tokens_per_s", ""), ("tokens_per_cpu_s", "_cpu")):
            base = {at(row): row[measure] for row in rows if row["impl"] == peer and measure in row}
            for row in rows:
                if at(row) in base and measure in row:
                    row[key + suffix] = round(row[measure] / base[at(row)], 3)


# --- the child: one row -------------------------------------------------------------------------------------


def _build(impl: str, length: int, device: str, dtype_name: str):
    """(model, forward()) for one row; models are built in eval mode with the row's dtype."""
    import torch

    dtype = getattr(torch, dtype_name)
    torch.manual_seed(0)
    ids = torch.randint(1000, 20000, (1, length), device=device)
    common = dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
    if impl.startswith("sectionrag_"):
        from encoders.embedder import default_model_path
        from encoders.long_model import LongEncoderModel

        model = LongEncoderModel.from_pretrained(default_model_path(), window=256, max_positions=max(length, 512),
                                                 impl=impl.removeprefix("sectionrag_"))
        model = model.to(device=device, dtype=dtype)
        return lambda: model(ids, global_tokens=(0,))
    if impl == "hf_longformer":
        from transformers import LongformerConfig, LongformerModel

        padded = -(-length // 512) * 512
        model = LongformerModel(LongformerConfig(attention_window=512, max_position_embeddings=padded + 2, **common))
        model = model.eval().to(device=device, dtype=dtype)
        glob = torch.zeros_like(ids)
        glob[:, 0] = 1
        return lambda: model(input_ids=ids, global_attention_mask=glob).last_hidden_state
    if impl == "hf_bigbird":
        from transformers import BigBirdConfig, BigBirdModel

        model = BigBirdModel(BigBirdConfig(attention_type="block_sparse", block_size=64, num_random_blocks=3,
                                           max_position_embeddings=max(length, 512), **common))
        model = model.eval().to(device=device, dtype=dtype)
        return lambda: model(input_ids=ids).last_hidden_state
    if impl == "hf_bert_sdpa":
        from transformers import BertConfig, BertModel

        model = BertModel(BertConfig(max_position_embeddings=max(length, 512), attn_implementation="sdpa", **common))
        model = model.eval().to(device=device, dtype=dtype)
        return lambda: model(input_ids=ids).last_hidden_state
    raise ValueError(f"unknown encoder impl {impl!r}")


def _run_child(spec: dict, env: dict, timeout_s: float) -> dict:
    """One row in a fresh process: its row dict, or {"error": why}."""
    try:
        done = subprocess.run([sys.executable, "-m", "encoders.bench", "--child", json.dumps(spec)],
                              capture_output=True, text=True, timeout=timeout_s, env={**os.environ, **env})
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {tail[:300]}"}
    return json.loads(lines[-1])


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _hwm_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _reset_hwm() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets the peak resident set size (Linux >= 4.0)


def _child(spec: dict) -> dict:
    import gc

    import torch

    impl, length, device, repeats, dtype = spec["impl"], spec["length"], spec["device"], spec["repeats"], spec["dtype"]
    cuda = device == "cuda"
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    load_before = os.getloadavg()[0]

    def sync():
        if cuda:
            torch.cuda.synchronize()

    with torch.inference_mode():
        forward = _build(impl, length, device, dtype)
        start = time.perf_counter()
        forward()
        sync()
        warmup_s = time.perf_counter() - start
        gc.collect()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated() / 2**20
        else:
            _reset_hwm()
            base = _rss_mb()
        steady_s = warmup_s
        if impl == "sectionrag_flex":  # the warm-up was mostly the compile: time one compiled forward
            start = time.perf_counter()
            forward()
            sync()
            steady_s = time.perf_counter() - start
        # slow rows (dense peers at 16k, eager FlexAttention) get fewer repeats: at most ~2 minutes of timing
        repeats = max(1, min(repeats, int(120 / max(steady_s, 1e-3))))
        if spec.get("mode") == "memory":  # the peak of one forward; its time is not reported
            repeats = 1
        times, cpu_times = [], []
        for _ in range(repeats):
            start, cpu_start = time.perf_counter(), time.process_time()
            out = forward()
            sync()
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
            del out
        peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else _hwm_mb()
    ms = statistics.median(times) * 1000
    cpu_ms = statistics.median(cpu_times) * 1000
    row = {"impl": impl, "length": length, "dtype": dtype, "ms": round(ms, 2), "tokens_per_s": round(length / ms * 1000, 1),
           "peak_mb": round(peak - base, 1), "process_peak_mb": round(peak, 1), "warmup_s": round(warmup_s, 2),
           # CPU seconds the process used (all its threads): on a shared machine this moves far less than the
           # wall clock, and with one thread it is the time the forward takes on an idle core
           "cpu_ms": round(cpu_ms, 2), "tokens_per_cpu_s": round(length / cpu_ms * 1000, 1), "repeats": repeats, "times_ms": [round(t * 1000, 1) for t in times], "min_ms": round(min(times) * 1000, 2),
           # the machine is shared: the 1-minute load average before and after the row says how much
           "loadavg": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    if impl in ("sectionrag_flex", "sectionrag_flex_eager"):
        row["compiled"] = impl == "sectionrag_flex"
        if row["compiled"]:
            row["compile_s"] = round(max(0.0, warmup_s - steady_s), 2)
    return row


def to_markdown(result: dict) -> str:
    """The rows as a Markdown table (for docs/benchmarks.md): wall clock and CPU time, with the ratios."""

    def num(row: dict, key: str, fmt: str = ".2f") -> str:
        return format(row[key], fmt) if key in row else "—"

    lines = ["| impl | length | ms (wall) | tokens/s | × Longformer | × dense BERT | CPU ms | tokens/CPU-s "
             "| × Longformer (CPU) | × dense BERT (CPU) | peak MB | notes |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for row in sorted(result["rows"], key=lambda r: (r["length"], r.get("dtype", ""),
                                                     -r.get("tokens_per_cpu_s", r["tokens_per_s"]))):
        notes = [row["dtype"]] if row.get("dtype", "float32") != "float32" else []
        if "compiled" in row:
            notes.append(f"compiled, compile {row.get('compile_s', 0):.0f} s" if row["compiled"] else "eager")
        if "loadavg" in row:
            notes.append(f"n={row.get('repeats', '?')}, load {row['loadavg'][0]:.1f}→{row['loadavg'][1]:.1f}")
        lines.append(
            f"| {row['impl']} | {row['length']} | {row['ms']:.0f} | {row['tokens_per_s']:.0f} | "
            f"{num(row, 'ratio_vs_hf_longformer')} | {num(row, 'ratio_vs_bert_sdpa')} | {num(row, 'cpu_ms', '.0f')} | "
            f"{num(row, 'tokens_per_cpu_s', '.0f')} | {num(row, 'ratio_vs_hf_longformer_cpu')} | "
            f"{num(row, 'ratio_vs_bert_sdpa_cpu')} | {row['peak_mb']:.0f} | {'; '.join(notes)} |")
    for skip in result.get("skipped", []):
        lines.append(f"| {skip['impl']} | {skip['length']} | — | — | — | — | — | — | — | — | — | "
                     f"skipped: {skip['reason']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m encoders.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="1024,4096,16384", help="comma-separated token counts")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--impls", default=None, help="comma-separated rows (default: all available)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads per row")
    parser.add_argument("--dtype", default=None, help="comma-separated precisions every row runs in: float32, bfloat16 "
                                                      "(default float32 on the CPU, bfloat16 on CUDA)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--markdown", default=None, help="render a saved --json result as a Markdown table")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(json.loads(args.child))), flush=True)
        return 0
    if args.markdown:
        with open(args.markdown) as f:
            print(to_markdown(json.load(f)))
        return 0
    try:
        lengths = [int(x) for x in args.lengths.split(",") if x.strip()]
        impls = [x.strip() for x in args.impls.split(",")] if args.impls else None
        result = bench_encoder(lengths, device=args.device, impls=impls, repeats=args.repeats,
                               threads=args.threads, dtypes=args.dtype.split(",") if args.dtype else None)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        for row in result["rows"]:
            extra = "".join(f"  {k}={row[k]}" for k in ("ratio_vs_hf_longformer", "ratio_vs_bert_sdpa") if k in row)
            print(f"{row['impl']:>24} {row['length']:>6} {row['ms']:>10.1f} ms {row['tokens_per_s']:>10.0f} tok/s "
                  f"{row['peak_mb']:>8.0f} MB{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
