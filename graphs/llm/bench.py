"""The local answer writer's speed: our CPU attention (``graphs/llm/attention.py``) against transformers'
SDPA, the same SmolLM2 weights, the same prompts, in the same run.

Prompts are CUAD contract text cut to a given number of tokens, followed by a clause question, in the
writer's chat template. For each dtype, prompt length and batch size it times, alternating the two
sides: reading one prompt (a forward pass that keeps only the cache), and a whole ``chat_many`` call
(each prompt read alone, then the batch decoded together for up to ``--new-tokens`` tokens). Prints
one JSON object (``--json``) or a table: milliseconds, generated tokens, the ratio SDPA / ours, and
whether both sides wrote the same replies, and how many leading tokens each pair shares (greedy
decoding: a rounding difference that flips one token changes the rest of the reply).

    sectionrag bench writer [--tokens 1000,3000] [--batch 1,4] [--dtype bfloat16,float32]
                            [--new-tokens 96] [--threads 1] [--repeats 2] [--contracts DIR] [--json]
    python -m graphs.llm.bench (the same arguments)

With ``--engines transformers,llama_cpp`` (and ``--model``, a ``[synthesize] local_model``) it compares the two
engines that can run a local writer instead, on the answer prompt the pipeline writes (the system prompt, its worked
example, a contract's text as the evidence): per engine and prompt length, the seconds to load, the prompt read cold
(prefill tokens/s: a one-token reply from an empty cache), decoding (tokens/s over the rest of an up to
``--new-tokens`` reply), and a second prompt sharing the first one's fixed prefix (llama.cpp keeps the prefix's
cache; the transformers engine reads every prompt whole).

With ``--server URL`` (and ``--server-model``, the model name the server serves) it measures an OpenAI-compatible
server instead (vLLM, llama.cpp's server, …): the same answer prompts, sent ``--requests`` at a time from
``--concurrency`` clients; per prompt length and concurrency, requests/s, generated tokens/s over the wall clock,
and the latency of one request (p50, p95), with the token counts the server reports. It is the batch throughput a
deployment that outgrows one machine gets from its serving engine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DEFAULT_CONTRACTS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cuad" / "contracts"
"""The CUAD contracts beside the checkout (``../shared/data/cuad/contracts``), the default ``--contracts``."""
QUESTION = "Does the contract specify a governing law? Quote the clause and cite it."


def prompts(tokenizer, n_tokens: int, count: int, folder: Path) -> list[list[dict[str, str]]]:
    """``count`` conversations, each a different contract's text cut to ``n_tokens`` tokens, then the question."""
    out = []
    for path in sorted(folder.glob("*.txt")):
        ids = tokenizer(path.read_text(encoding="utf-8", errors="replace"))["input_ids"]
        if len(ids) < n_tokens:
            continue
        text = tokenizer.decode(ids[:n_tokens])
        out.append([{"role": "system", "content": "Answer from the evidence only, citing it."},
                    {"role": "user", "content": f"Evidence:\n{text}\n\nQuestion: {QUESTION}"}])
        if len(out) == count:
            return out
    raise ValueError(f"{folder}: fewer than {count} contract .txt files have {n_tokens} tokens (--tokens, --batch)")


def _common_prefix(a: list[int], b: list[int]) -> int:
    """How many leading tokens two replies share."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def bench(tokens: list[int], batches: list[int], dtypes: list[str], new_tokens: int, repeats: int,
          folder: Path) -> list[dict]:
    import torch

    from graphs.llm import LocalLLM

    rows = []
    for dtype in dtypes:
        sides = {"ours": LocalLLM(dtype=dtype), "sdpa": LocalLLM(dtype=dtype, attention="sdpa")}
        for llm in sides.values():
            llm.warm_up()
        tok = sides["ours"].tokenizer
        for n in tokens:
            convs = prompts(tok, n, max(batches), folder)
            ids = torch.tensor([tok.apply_chat_template(convs[0], add_generation_prompt=True, tokenize=True,
                                                        return_dict=True)["input_ids"]])
            read = {name: [] for name in sides}
            with torch.inference_mode():
                for _ in range(repeats + 1):  # the first round warms up
                    for name, llm in sides.items():
                        read[name].append(_time(lambda m=llm.model, x=ids: m(input_ids=x, use_cache=True,
                                                                      logits_to_keep=1)))
            row = {"dtype": dtype, "prompt_tokens": int(ids.shape[1]), "batch": None, "what": "read one prompt",
                   **{f"{k}_ms": statistics.median(v[1:]) for k, v in read.items()}}
            row["ratio_sdpa_over_ours"] = row["sdpa_ms"] / row["ours_ms"]
            rows.append(row)
            for b in batches:
                times = {name: [] for name in sides}
                replies = {}
                for _ in range(repeats):
                    for name, llm in sides.items():
                        start = time.perf_counter()
                        replies[name] = llm.chat_many(convs[:b], new_tokens)
                        times[name].append((time.perf_counter() - start) * 1e3)
                generated = {k: sum(len(tok(r)["input_ids"]) for r in v) for k, v in replies.items()}
                prefix = [_common_prefix(tok(a)["input_ids"], tok(c)["input_ids"])
                          for a, c in zip(replies["ours"], replies["sdpa"], strict=True)]
                row = {"dtype": dtype, "prompt_tokens": int(ids.shape[1]), "batch": b,
                       "what": f"chat_many, up to {new_tokens} new tokens",
                       **{f"{k}_ms": statistics.median(v) for k, v in times.items()},
                       **{f"{k}_generated_tokens": v for k, v in generated.items()},
                       "same_replies": sum(a == c for a, c in zip(replies["ours"], replies["sdpa"], strict=True)),
                       "replies": b, "common_prefix_tokens": prefix}
                row["ratio_sdpa_over_ours"] = row["sdpa_ms"] / row["ours_ms"]
                rows.append(row)
    return rows


def _engine(name: str, model: str, threads: int):
    """(writer, count tokens of a text, cut a text to n tokens, forget the cached prompt) for an engine."""
    if name == "transformers":
        from graphs.llm import LocalLLM

        llm = LocalLLM(model or None)
        llm.warm_up()
        tok = llm.tokenizer
        return (llm, lambda t: len(tok(t)["input_ids"]), lambda t, n: tok.decode(tok(t)["input_ids"][:n]),
                lambda: None)
    if name == "llama_cpp":
        from graphs.llm.llamacpp import LlamaCppLLM

        llm = LlamaCppLLM(model or None, threads=threads)
        raw = llm.warm_up()
        return (llm, lambda t: len(raw.tokenize(t.encode(), add_bos=False)),
                lambda t, n: raw.detokenize(raw.tokenize(t.encode(), add_bos=False)[:n]).decode("utf-8", "ignore"),
                raw.reset)
    raise ValueError(f"unknown engine {name!r}; use transformers and/or llama_cpp")


def bench_engines(engines: list[str], model: str, tokens: list[int], new_tokens: int, repeats: int, threads: int,
                  folder: Path) -> list[dict]:
    from graphs.prompts import answer_messages
    from pipeline.types import Evidence

    rows = []
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in sorted(folder.glob("*.txt"))[:40]]
    for name in engines:
        t0 = time.perf_counter()
        llm, count, cut, forget = _engine(name, model, threads)
        load_s = time.perf_counter() - t0
        for n in tokens:
            docs = [cut(t, n) for t in texts if count(t[: n * 8]) >= n][:2]
            if len(docs) < 2:
                raise ValueError(f"{folder}: fewer than 2 contract .txt files have {n} tokens (--tokens)")
            convs = [answer_messages(QUESTION, [Evidence(n=1, doc_id="d", section_id="s", start=0, end=len(d),
                                                         text=d)]) for d in docs]
            prompt_tokens = count("".join(m["content"] for m in convs[0]))
            first, full, warm, generated = [], [], [], 0
            for _ in range(repeats):
                forget()
                first.append(_time(lambda w=llm, c=convs[0]: w.chat(c, 1)) / 1e3)
                forget()
                start = time.perf_counter()
                reply = llm.chat(convs[0], new_tokens)
                full.append(time.perf_counter() - start)
                generated = count(reply) if reply else 0
                warm.append(_time(lambda w=llm, c=convs[1]: w.chat(c, 1)) / 1e3)  # after convs[0]: the prefix is cached
            pre, tot = statistics.median(first), statistics.median(full)
            rows.append({"engine": name, "model": model or "smollm2-135m", "threads": threads, "load_s": load_s,
                         "prompt_tokens": prompt_tokens, "prefill_s": pre, "prefill_tok_s": prompt_tokens / pre,
                         "reply_tokens": generated, "reply_s": tot,
                         "decode_tok_s": (generated - 1) / (tot - pre) if generated > 1 and tot > pre else None,
                         "second_prompt_prefill_s": statistics.median(warm)})
    return rows


def _answer_prompts(texts: list[str], chars: int, count: int) -> list[list[dict[str, str]]]:
    """``count`` answer prompts as the pipeline writes them, each over a different contract cut to ``chars``."""
    from graphs.prompts import answer_messages
    from pipeline.types import Evidence

    docs = [t[:chars] for t in texts if len(t) >= chars]
    if not docs:
        raise ValueError(f"no contract .txt file has {chars} characters (--tokens)")
    return [answer_messages(QUESTION, [Evidence(n=1, doc_id="d", section_id="s", start=0, end=len(d), text=d)])
            for d in (docs * count)[:count]]


def _request(client, url: str, model: str, messages, new_tokens: int) -> dict:
    start = time.perf_counter()
    resp = client.post(f"{url}/chat/completions", json={"model": model, "messages": messages,
                                                         "max_tokens": new_tokens, "temperature": 0.0})
    seconds = time.perf_counter() - start
    if resp.status_code != 200:
        raise ValueError(f"the server at {url} returned HTTP {resp.status_code}: {resp.text[:200]}")
    usage = resp.json().get("usage") or {}
    return {"s": seconds, "prompt_tokens": usage.get("prompt_tokens"), "completion_tokens": usage.get("completion_tokens")}


def bench_server(url: str, model: str, tokens: list[int], concurrency: list[int], requests: int, new_tokens: int,
                 folder: Path, api_key: str | None = None) -> list[dict]:
    """Batch throughput of an OpenAI-compatible server (see the module docstring); a prompt length is in tokens,
    cut as four characters a token and reported as the server counted it."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    url = url.rstrip("/")
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in sorted(folder.glob("*.txt"))[:200]]
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    rows = []
    with httpx.Client(timeout=600, headers=headers, limits=httpx.Limits(max_connections=max(concurrency))) as client:
        try:
            client.get(f"{url}/models")
        except httpx.HTTPError as exc:
            raise ValueError(f"no OpenAI-compatible server answers at {url}: {exc}") from None
        for n in tokens:
            convs = _answer_prompts(texts, n * 4, requests)
            _request(client, url, model, convs[0], 1)  # the first request pays for the server's warm-up
            for c in concurrency:
                start = time.perf_counter()
                with ThreadPoolExecutor(max_workers=c) as pool:
                    done = list(pool.map(lambda m: _request(client, url, model, m, new_tokens), convs))
                wall = time.perf_counter() - start
                lat = sorted(d["s"] for d in done)
                generated = sum(d["completion_tokens"] or 0 for d in done)
                prompt = [d["prompt_tokens"] for d in done if d["prompt_tokens"] is not None]
                rows.append({"server": url, "model": model, "prompt_tokens": statistics.median(prompt) if prompt else None,
                             "concurrency": c, "requests": len(done), "wall_s": wall,
                             "requests_per_s": len(done) / wall, "generated_tokens": generated,
                             "generated_tok_s": generated / wall, "latency_p50_s": statistics.median(lat),
                             "latency_p95_s": lat[min(len(lat) - 1, int(0.95 * len(lat)))]})
    return rows


def _ints(text: str, what: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"{what} must be comma-separated whole numbers, not {text!r}") from None
    if not values or min(values) < 1:
        raise ValueError(f"{what} must be comma-separated positive numbers, not {text!r}")
    return values


def bench_writer(tokens: str = "1000,3000", batches: str = "1,4", dtypes: str = "bfloat16,float32",
                 new_tokens: int = 96, repeats: int = 2, threads: int = 1,
                 contracts: Path = DEFAULT_CONTRACTS, engines: str = "", model: str = "", server: str = "",
                 server_model: str = "", concurrency: str = "1,4,16", requests: int = 32) -> dict:
    """``{"machine", "rows"}`` (see the module docstring); arguments as on the command line."""
    import torch

    from pipeline.config import LOCAL_DTYPES
    from pipeline.host import cpu_model

    lengths, sizes = _ints(tokens, "--tokens"), _ints(batches, "--batch")
    names = [d.strip() for d in dtypes.split(",") if d.strip()]
    if not names or any(d not in LOCAL_DTYPES or d == "auto" for d in names):
        raise ValueError(f"--dtype must be float32 and/or bfloat16, not {dtypes!r}")
    if new_tokens < 1 or repeats < 1 or threads < 1 or requests < 1:
        raise ValueError("--new-tokens, --repeats, --threads and --requests must be at least 1")
    if not Path(contracts).is_dir():
        raise ValueError(f"{contracts}: no such folder of contract .txt files (--contracts)")
    if server:
        if not server.startswith(("http://", "https://")):
            raise ValueError(f"--server must be an http(s) URL such as http://127.0.0.1:8000/v1, not {server!r}")
        if not server_model:
            raise ValueError("--server needs --server-model, the model name the server serves")
        rows = bench_server(server, server_model, lengths, _ints(concurrency, "--concurrency"), requests, new_tokens,
                            Path(contracts), os.environ.get("OPENAI_API_KEY"))
        return {"machine": {"cpu": cpu_model()}, "server": rows}
    torch.set_num_threads(threads)
    if engines:
        chosen = [e.strip() for e in engines.split(",") if e.strip()]
        rows = bench_engines(chosen, model, lengths, new_tokens, repeats, threads, Path(contracts))
        return {"machine": {"cpu": cpu_model(), "threads": threads, "torch": torch.__version__}, "engines": rows}
    rows = bench(lengths, sizes, names, new_tokens, repeats, Path(contracts))
    return {"machine": {"cpu": cpu_model(), "threads": threads, "torch": torch.__version__}, "rows": rows}


def table(result: dict) -> str:
    """The result as a Markdown table."""
    if "server" in result:
        lines = ["| model | prompt tokens | concurrency | requests | wall s | requests/s | generated tok/s | "
                 "latency p50 s | latency p95 s |", "|---|---|---|---|---|---|---|---|---|"]
        for r in result["server"]:
            lines.append(f"| {r['model']} | {r['prompt_tokens']} | {r['concurrency']} | {r['requests']} | "
                         f"{r['wall_s']:.1f} | {r['requests_per_s']:.2f} | {r['generated_tok_s']:.1f} | "
                         f"{r['latency_p50_s']:.2f} | {r['latency_p95_s']:.2f} |")
        return "\n".join(lines)
    if "engines" in result:
        lines = ["| engine | model | load s | prompt tokens | prefill s | prefill tok/s | reply tokens | decode tok/s | "
                 "second prompt, shared prefix: prefill s |", "|---|---|---|---|---|---|---|---|---|"]
        for r in result["engines"]:
            dec = f"{r['decode_tok_s']:.1f}" if r["decode_tok_s"] else ""
            lines.append(f"| {r['engine']} | {r['model']} | {r['load_s']:.1f} | {r['prompt_tokens']} | "
                         f"{r['prefill_s']:.2f} | {r['prefill_tok_s']:.0f} | {r['reply_tokens']} | {dec} | "
                         f"{r['second_prompt_prefill_s']:.2f} |")
        return "\n".join(lines)
    lines = ["| dtype | prompt tokens | batch | what | ours ms | SDPA ms | SDPA / ours | same replies | "
             "shared leading tokens |", "|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        same = f"{r['same_replies']} of {r['replies']}" if r["batch"] else ""
        shared = ", ".join(map(str, r.get("common_prefix_tokens", [])))
        lines.append(f"| {r['dtype']} | {r['prompt_tokens']} | {r['batch'] or ''} | {r['what']} | {r['ours_ms']:.0f} | "
                     f"{r['sdpa_ms']:.0f} | {r['ratio_sdpa_over_ours']:.2f} | {same} | {shared} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", default="1000,3000", help="prompt lengths in tokens, comma-separated")
    parser.add_argument("--batch", default="1,4", help="batch sizes for chat_many, comma-separated")
    parser.add_argument("--dtype", default="bfloat16,float32")
    parser.add_argument("--new-tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--contracts", type=Path, default=DEFAULT_CONTRACTS, help="a folder of contract .txt files")
    parser.add_argument("--engines", default="", help="transformers and/or llama_cpp: compare the engines instead")
    parser.add_argument("--model", default="", help="the local_model the engines run (default smollm2-135m)")
    parser.add_argument("--server", default="", help="an OpenAI-compatible server's URL: its batch throughput instead")
    parser.add_argument("--server-model", default="", help="with --server: the model name it serves")
    parser.add_argument("--concurrency", default="1,4,16", help="with --server: clients at once, comma-separated")
    parser.add_argument("--requests", type=int, default=32, help="with --server: requests per concurrency")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        result = bench_writer(args.tokens, args.batch, args.dtype, args.new_tokens, args.repeats, args.threads,
                              args.contracts, args.engines, args.model, args.server, args.server_model,
                              args.concurrency, args.requests)
    except ValueError as exc:
        parser.error(str(exc))
    print(json.dumps(result) if args.json else table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
