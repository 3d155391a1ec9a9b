#!/usr/bin/env bash
# Continues the CUAD full run with the local writer on this machine (docs/evaluation.md, "Not done yet").
#
#   bash docs/eval-runs/2026-12-02/cuad-local-bf16-sample500/continue.sh start       # set up what is missing, start the two parts
#   bash docs/eval-runs/2026-12-02/cuad-local-bf16-sample500/continue.sh status      # parts running?, answers recorded
#   bash docs/eval-runs/2026-12-02/cuad-local-bf16-sample500/continue.sh checkpoint  # recorded answers -> this folder (gzipped)
#   bash docs/eval-runs/2026-12-02/cuad-local-bf16-sample500/continue.sh stop        # stop the parts, then checkpoint
#   bash docs/eval-runs/2026-12-02/cuad-local-bf16-sample500/continue.sh report DIR  # interim report (--report-only) in DIR
#   bash docs/eval-runs/2026-12-02/cuad-local-bf16-sample500/continue.sh rest        # the last answers in two even halves
#   bash docs/eval-runs/2026-12-02/cuad-local-bf16-sample500/continue.sh final DIR   # the plain command's report in DIR (all answered)
#
# `start` does only what is missing: `make setup`; the pinned worktree (commit 0aaffd6 and this folder's two
# patches); the store (CUAD's 410 contracts ingested by the pinned code, 25–40 min on two cores) and the
# baseline's chunk index (20–42 min); the run folder, filled from this folder's *.jsonl.gz (a part file that
# already holds more answers is kept). Then it starts the two `--shard K/2` parts, one thread each.
# `rest` (parts stopped) deals the documents still unanswered into two even halves afresh and answers them in
# two processes with the same pinned harness (split_rest.py): for the run's end, when one part has finished
# and the other has a long tail. Checkpoints keep only complete JSON lines. Commit this folder after `checkpoint` or `stop`.
# Paths (environment): WORK (default: cuad-run beside this checkout), PINNED, STORE, OUT under it.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(git -C "$HERE" rev-parse --show-toplevel)
WORK=${WORK:-$(dirname "$REPO")/cuad-run}
PINNED=${PINNED:-$WORK/pinned}
STORE=${STORE:-$WORK/store}
OUT=${OUT:-$WORK/out}
PY=$REPO/.venv/bin/python
CONFIG=$REPO/docs/eval-runs/2026-12-01-evening/bf16.toml
DATA=${DATA:-$(dirname "$REPO")/shared/data}
PINNED_COMMIT=0aaffd6
# The pinned harness with the arguments every part and report share (run from $PINNED)
HARNESS=("$PY" -m eval.harness --suite cuad --llm local --config "$CONFIG" --batch 4
    --systems sectionrag,chunk_baseline --store "$STORE" --data "$DATA")
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

say() { echo "continue.sh: $*" >&2; }

running() {  # the parts' pids that are alive
    local k pid
    for k in 1 2; do
        [ -f "$WORK/pid$k" ] || continue
        pid=$(cat "$WORK/pid$k")
        if kill -0 "$pid" 2>/dev/null && grep -qE "eval.harness|split_rest.py" "/proc/$pid/cmdline" 2>/dev/null; then
            echo "$pid"
        fi
    done
}

count() {  # distinct (system, writer, item) answers in the given gzipped or plain files
    "$PY" - "$@" <<'PY'
import gzip, json, sys
keys = set()
for path in sys.argv[1:]:
    with (gzip.open(path, "rt") if path.endswith(".gz") else open(path)) as fh:
        for line in fh:
            try:
                r = json.loads(line)
            except ValueError:
                continue
            keys.add((r["system"], r["llm"], r["item"]))
print(len(keys))
PY
}

setup() {
    [ -x "$PY" ] || make -C "$REPO" setup
    mkdir -p "$WORK"
    if [ ! -d "$PINNED" ]; then
        say "pinned worktree $PINNED at $PINNED_COMMIT with the two patches"
        git -C "$REPO" worktree add --detach "$PINNED" "$PINNED_COMMIT"
        git -C "$PINNED" apply "$HERE/pinned-prefill-logits.patch"
        git -C "$PINNED" apply "$HERE/pinned-bf16-widen.patch"
    fi
    [ "$(git -C "$PINNED" diff --stat | tail -1)" != "" ] || { say "error: $PINNED has no patches applied"; exit 1; }
    if [ ! -s "$WORK/ingest.json" ]; then
        say "ingesting $DATA/cuad/contracts into $STORE with the pinned code (25–40 minutes)"
        (cd "$PINNED" && "$PY" -m pipeline.cli ingest "$DATA/cuad/contracts" --store "$STORE" --workers 2 --json) \
            > "$WORK/ingest.json.part"
        mv "$WORK/ingest.json.part" "$WORK/ingest.json"
    fi
    say "the baseline's chunk index (built once, 20–42 minutes; loaded when present)"
    (cd "$PINNED" && "$PY" -c "import sys; from eval.baseline import ChunkBaseline; ChunkBaseline.open(sys.argv[1], progress=True)" "$STORE")
    mkdir -p "$OUT"
    local gz name have want
    for gz in "$HERE"/items*.jsonl.gz; do
        name=$(basename "$gz" .gz)
        want=$(gzip -dc "$gz" | wc -l)
        have=$([ -f "$OUT/$name" ] && wc -l < "$OUT/$name" || echo 0)
        if [ "$have" -lt "$want" ]; then
            gzip -dc "$gz" > "$OUT/$name"
            say "$name: $want answers from this folder"
        else
            say "$name: kept the run folder's $have answers (this folder has $want)"
        fi
    done
}

start() {  # start [rest]: the two --shard parts, or with `rest` the two halves of what is left
    local run=("${HARNESS[@]}")
    if [ -n "$(running)" ]; then
        say "parts already running: $(running | tr '\n' ' ')"
        return
    fi
    setup
    if [ "${1:-}" = rest ]; then
        (cd "$PINNED" && "$PY" "$HERE/split_rest.py" plan "$OUT" "$DATA") | sed 's/^/continue.sh: rest: /' >&2
        run=("$PY" "$HERE/split_rest.py" "${HARNESS[@]:3}")
    fi
    local k
    (
        cd "$PINNED"  # python -m takes the packages from here
        for k in 1 2; do  # a simple command in the background: $! is the part's own pid (nohup execs python)
            OMP_NUM_THREADS=1 nohup "${run[@]}" --out "$OUT" --shard "$k/2" --json --no-progress \
                >> "$WORK/part$k.json" 2>> "$WORK/part$k.err" &
            echo $! > "$WORK/pid$k"
        done
    )
    say "parts started: $(cat "$WORK/pid1") $(cat "$WORK/pid2") (stderr in $WORK/part1.err, part2.err)"
}

checkpoint() {
    local k f tmp
    for k in 1 2; do
        f=$OUT/items.shard-$k-of-2.jsonl
        [ -f "$f" ] || continue
        tmp=$(mktemp)
        "$PY" - "$f" > "$tmp" <<'PY'
import json, sys
data = open(sys.argv[1], "rb").read().decode()
lines = data.split("\n")
if not data.endswith("\n"):
    lines = lines[:-1]  # a line being written: the part writes that answer again
for line in lines:
    if line.strip():
        json.loads(line)  # a line that is not JSON stops the checkpoint
        print(line)
PY
        if [ "$(wc -l < "$tmp")" -lt "$(gzip -dc "$HERE/items.shard-$k-of-2.jsonl.gz" 2>/dev/null | wc -l)" ]; then
            say "error: $f holds fewer answers than $HERE/items.shard-$k-of-2.jsonl.gz; not overwritten"
            rm -f "$tmp"
            exit 1
        fi
        gzip -9 -n -c "$tmp" > "$HERE/items.shard-$k-of-2.jsonl.gz"
        say "items.shard-$k-of-2.jsonl: $(wc -l < "$tmp") answers"
        rm -f "$tmp"
    done
    say "distinct answers recorded: $(count "$HERE"/items*.jsonl.gz) of 33620"
}

stop() {
    local pids
    pids=$(running | tr "\n" " ")
    if [ -n "$pids" ]; then
        kill $pids
        while [ -n "$(running)" ]; do sleep 1; done
        say "parts stopped"
    fi
    checkpoint
}

status() {
    local pids
    pids=$(running | tr "\n" " ")
    say "parts running: ${pids:-none}"
    [ -d "$OUT" ] && say "answers in $OUT: $(count "$OUT"/items*.jsonl) (committed here: $(count "$HERE"/items*.jsonl.gz)) of 33620"
}

report() {  # report DIR [final]: --report-only, or with `final` the plain command (it answers what is left)
    local dest=${1:?"report needs a folder: continue.sh report DIR"}
    mkdir -p "$dest"
    cp "$OUT"/items*.jsonl "$dest"/
    if [ "${2:-}" = final ]; then
        [ -z "$(running)" ] || { say "error: parts still running: $(running | tr '\n' ' ')"; exit 1; }
        cp "$OUT"/throughput.shard-*-of-*.json "$dest"/ 2>/dev/null || true
        (cd "$PINNED" && "${HARNESS[@]}" --out "$dest" --json --no-progress)
    else
        (cd "$PINNED" && "${HARNESS[@]}" --out "$dest" --report-only --no-progress)
    fi
}

case "${1:-}" in
    start) start ;;
    rest) start rest ;;
    status) status ;;
    checkpoint) checkpoint ;;
    stop) stop ;;
    report) report "${2:-}" ;;
    final) report "${2:-}" final ;;
    *) echo "usage: $0 start | rest | status | checkpoint | stop | report DIR | final DIR" >&2; exit 2 ;;
esac
