#!/usr/bin/env bash
# One CUDA GPU, under 8 minutes: the numbers of issue 16 that need a GPU.
#
#   bash bench/gpu.sh            # on a machine with one CUDA GPU (after `bash setup.sh`)
#   bash bench/gpu.sh --tiny     # seconds, on CPU: the same steps on tiny data (a test runs it)
#
# 1. Vision time to 94%: the default recipe on the GPU with the whole of Fashion-MNIST resident
#    there (data.resident), bf16 autocast, channels_last (the task's default) and
#    train.compile, for a few epoch budgets; prints, per budget, the seconds of training and
#    the test accuracy, and the first budget that reaches 94.0% (target: <= 10 s of training).
# 2. Training steps/s of speech, text and driving: short runs of `e2e train APP` on small real
#    data, timed by the engine itself (metrics.csv), after warm-up steps; and of vision streamed
#    from disk (`e2e data prepare`, then `data.source=` the prepared folder).
# Everything goes to $OUT (default bench/runs/gpu); the summary is $OUT/summary.md, ready to
# paste into bench/RESULTS.md (marked GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
OUT=${OUT:-bench/runs/gpu}
TINY=0
[ "${1:-}" = "--tiny" ] && TINY=1
mkdir -p "$OUT"
SUMMARY="$OUT/summary.md"
started=$(date +%s)
e2e() { "$PY" -m e2e "$@"; }

if [ "$TINY" = 1 ]; then
  DEV=(--set train.device=cpu --set train.precision=fp32)
  VISION=(--data digits --set model.widths=[8,16] --set train.batch_size=64)
  EPOCH_BUDGETS="1 2"
  STEPS=6
  WARM=2
  STREAM_PREP=(--set data.source=digits)
  STREAM=(--set model.widths=[8,16] --set train.batch_size=64 --set train.num_workers=2)
else
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU visible')"
  DEV=(--set train.device=cuda --set train.precision=bf16)
  VISION=(--set data.resident=true --set train.compile=true)
  EPOCH_BUDGETS="${EPOCH_BUDGETS:-6 8 10 12 16}"
  STEPS=120
  WARM=20
  STREAM_PREP=()
  STREAM=(--set train.num_workers=8)
fi

{
  echo "## GPU run (bench/gpu.sh$([ "$TINY" = 1 ] && echo ' --tiny, CPU smoke run: not GPU numbers'))"
  echo
  "$PY" - <<'EOF'
import torch
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU (CPU)"
print(f"Machine: {gpu}; torch {torch.__version__}")
EOF
  echo
  echo "| vision run | epochs | training seconds | test accuracy |"
  echo "| --- | --- | --- | --- |"
} > "$SUMMARY"

# ---- 1. vision: test accuracy against training seconds, one run per epoch budget ----
for epochs in $EPOCH_BUDGETS; do
  run="$OUT/vision-e$epochs"
  rm -rf "$run"
  e2e train vision "${VISION[@]}" "${DEV[@]}" --set train.epochs="$epochs" --out "$run" >"$run.log" 2>&1
  "$PY" - "$run" "$epochs" >>"$SUMMARY" <<'EOF'
import json, sys
r = json.load(open(f"{sys.argv[1]}/results.json"))
print(f"| `e2e train vision --set train.epochs={sys.argv[2]}` | {r['epochs']} | "
      f"{r['train_seconds']:.1f} s | {100 * r['test/accuracy']:.2f}% |")
EOF
done
"$PY" - "$OUT" $EPOCH_BUDGETS >>"$SUMMARY" <<'EOF'
import json, sys
out, budgets = sys.argv[1], sys.argv[2:]
for e in budgets:
    r = json.load(open(f"{out}/vision-e{e}/results.json"))
    if r["test/accuracy"] >= 0.94:
        print(f"\nFirst budget to reach 94.0%: {e} epochs, {r['train_seconds']:.1f} s of "
              f"training (target <= 10 s).")
        break
else:
    print("\nNo budget reached 94.0% test accuracy.")
EOF

# ---- 2. training steps/s of the other applications ----
steps_per_s() {  # RUN: steps/s between step WARM and the last step, from the engine's log
  "$PY" - "$1" "$WARM" <<'EOF'
import sys
from e2e.engine.progress import read_metrics
rows = {r["step"]: float(r["time_s"]) for r in read_metrics(f"{sys.argv[1]}/metrics.csv")
        if r["metric"] == "train/loss"}
warm, last = int(sys.argv[2]), max(rows)
print(f"{(last - warm) / (rows[last] - rows[warm]):.2f}")
EOF
}
TIMED=(--set train.max_steps=$STEPS --set train.log_every=$WARM --set train.eval_every=$STEPS)
{ echo; echo "| application | steps/s | batch | run |"; echo "| --- | --- | --- | --- |"; } >> "$SUMMARY"

# speech: a small synthetic corpus (espeak-ng), the default model
corpus="$OUT/speech-corpus"
n=$([ "$TINY" = 1 ] && echo 24 || echo 512)
[ -f "$corpus/train.tsv" ] || e2e data speech-synth --out "$corpus" --n "$n" --n-val 4 --n-test 4 \
  --kinds digits >"$OUT/speech-data.log" 2>&1
SPEECH=(--set data.corpus="$corpus" --set data.n="$n" --set data.n_val=4 --set data.n_test=4
        --set data.kinds=digits --set data.asterisk=false --set data.real= --set data.flite=0)
[ "$TINY" = 1 ] && SPEECH+=(--set model.dim=32 --set model.layers=1 --set train.batch_size=4)
rm -rf "$OUT/speech"
e2e train speech "${SPEECH[@]}" "${DEV[@]}" "${TIMED[@]}" --out "$OUT/speech" >"$OUT/speech.log" 2>&1
echo "| speech | $(steps_per_s "$OUT/speech") | $(grep -m1 batch_size "$OUT/speech/config.yaml" | awk '{print $2}') | $OUT/speech |" >> "$SUMMARY"

# text: translation on the Bible (sword packages), or a copy task in --tiny mode
if [ "$TINY" = 1 ]; then
  "$PY" - "$OUT/copy.tsv" <<'EOF'
import random, sys
rng, words = random.Random(0), "red green blue cat dog sun moon tree star fish".split()
lines = [" ".join(rng.choice(words) for _ in range(rng.randint(2, 5))) for _ in range(300)]
open(sys.argv[1], "w").write("".join(f"{s}\t{s}\n" for s in lines))
EOF
  TEXT=(--data "$OUT/copy.tsv" --set data.vocab_size=300 --set model.d_model=32 --set model.ff=64
        --set model.heads=2 --set model.encoder_layers=1 --set model.decoder_layers=1
        --set train.batch_size=16 --set data.val_decode=8)
else
  TEXT=(--set data.val_decode=32)
fi
rm -rf "$OUT/text"
e2e train text "${TEXT[@]}" "${DEV[@]}" "${TIMED[@]}" --out "$OUT/text" >"$OUT/text.log" 2>&1
echo "| text | $(steps_per_s "$OUT/text") | $(grep -m1 batch_size "$OUT/text/config.yaml" | awk '{print $2}') | $OUT/text |" >> "$SUMMARY"

# driving: expert recordings on two training tracks (CarRacing), behavior cloning
rec="$OUT/driving-data"
frames=$([ "$TINY" = 1 ] && echo 120 || echo 600)
[ -d "$rec" ] || e2e data driving --out "$rec" --seeds 0-1 --max-steps "$frames" \
  >"$OUT/driving-data.log" 2>&1
DRIVE=(--data "$rec" --set data.val_seeds=500 --set data.test_seeds=1000 --set data.max_steps=100
       --set data.workers=1 --set data.dagger_rounds=0)
[ "$TINY" = 1 ] && DRIVE+=(--set model.widths=[8,16,16] --set model.kernels=[5,5,3]
                            --set model.strides=[2,2,1] --set model.hidden=[16] --set train.batch_size=16)
rm -rf "$OUT/driving"
e2e train driving "${DRIVE[@]}" "${DEV[@]}" "${TIMED[@]}" --out "$OUT/driving" >"$OUT/driving.log" 2>&1
echo "| driving | $(steps_per_s "$OUT/driving") | $(grep -m1 batch_size "$OUT/driving/config.yaml" | awk '{print $2}') | $OUT/driving |" >> "$SUMMARY"

# vision streamed from disk: Fashion-MNIST prepared as .npy columns (`e2e data prepare`), read
# by DataLoader workers while the GPU trains; beside section 1's resident data, the loader's cost
vcorpus="$OUT/vision-columns"
[ -f "$vcorpus/columns.json" ] || e2e data prepare vision --out "$vcorpus" "${STREAM_PREP[@]}" \
  >"$OUT/vision-prepare.log" 2>&1
rm -rf "$OUT/vision-streamed"
e2e train vision "${STREAM[@]}" "${DEV[@]}" "${TIMED[@]}" --set data.source="$vcorpus" \
  --out "$OUT/vision-streamed" >"$OUT/vision-streamed.log" 2>&1
echo "| vision, streamed from disk | $(steps_per_s "$OUT/vision-streamed") | $(grep -m1 batch_size "$OUT/vision-streamed/config.yaml" | awk '{print $2}') | $OUT/vision-streamed |" >> "$SUMMARY"

echo >> "$SUMMARY"
echo "Total wall time of bench/gpu.sh: $(( $(date +%s) - started )) s." >> "$SUMMARY"
cat "$SUMMARY"
