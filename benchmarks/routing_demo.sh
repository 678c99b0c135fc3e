#!/usr/bin/env bash
# The demo model's per-country scores for each routing mode on the bundled sample (a plumbing check:
# a 135M model, adapters trained for a few steps on 6 descriptions). Writes the comparison table to
# benchmarks/results/routing_demo.txt and the JSON beside it.
#   bash benchmarks/routing_demo.sh [max_steps]     (uses $CULTURESAFE_VENV or ./.venv)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CULTURESAFE_VENV:-$ROOT/.venv}"
export PATH="$VENV/bin:$PATH" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
STEPS="${1:-8}"
WORK="$(mktemp -d)"
BASE="$(python -c 'from culturesafe_ext.demo_model import demo_model_dir; print(demo_model_dir())')"
culturesafe train adapters --base "$BASE" --data bundled --out "$WORK/adapters" --max-steps "$STEPS" | tail -8
culturesafe train router --base "$BASE" --data bundled --out "$WORK/router" --split "$WORK/adapters/split.json"
META="{\"culturesafe_data\": \"bundled\", \"culturesafe_split\": \"$WORK/adapters/split.json\"}"
for MODE in none fixed:china learned oracle; do
  lm_eval run --model hf-router --tasks adaculturesafe_knowledge --batch_size 8 --log_samples \
    --model_args "pretrained=$BASE,dtype=float32,adapters=$WORK/adapters,router=$WORK/router,routing=$MODE" \
    --metadata "$META" --output_path "$WORK/out/${MODE/:/_}" > "$WORK/${MODE/:/_}.log" 2>&1
done
mkdir -p "$ROOT/benchmarks/results"
{
  echo "routing_demo: SmolLM2-135M-Instruct (demo model), bundled sample, held-out descriptions only"
  echo "(1 of 2 descriptions per country; 5 MCQs each). Adapters: $STEPS steps on the other description."
  echo "PLUMBING, NOT A FINDING. $(nproc) CPU cores, no GPU, load average $(cut -d' ' -f1-3 /proc/loadavg). $(date -u +%F)"
  RUNS=(--run "base=$WORK/out/none" --run "fixed_china=$WORK/out/fixed_china" --run "learned=$WORK/out/learned"
        --run "oracle=$WORK/out/oracle" --router "$WORK/router")
  for METRIC in acc acc_norm; do
    echo
    culturesafe analyze routing "${RUNS[@]}" --metric "$METRIC,none" \
      --out "$ROOT/benchmarks/results/routing_demo.$METRIC.json"
  done
} | tee "$ROOT/benchmarks/results/routing_demo.txt"
