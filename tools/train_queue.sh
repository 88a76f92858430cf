#!/usr/bin/env bash
# Train configs one after another (never two at once on a small CPU), each into runs/NAME, resuming a run
# that a stopped session left behind (in runs/NAME, or committed to checkpoints/NAME) and skipping finished
# ones; then export each to runs/NAME/export/NAME.onnx.
# The decoded pre-crops are cached in runs/cache (keyed by files and crop size), shared by the runs.
#   nohup tools/train_queue.sh configs/a.yaml configs/experiments/b.yaml > runs/queue.log 2>&1 &
set -euo pipefail
for config in "$@"; do
  name=$(basename "$config" .yaml)
  run="runs/$name"
  if [[ -f "$run/export/$name.onnx" ]]; then echo "$name: done"; continue; fi
  if [[ ! -f "$run/last.pt" && -f "checkpoints/$name/last.pt" ]]; then
    mkdir -p "$run" && cp "checkpoints/$name"/* "$run/"
  fi
  resume=()
  [[ -f "$run/last.pt" ]] && resume=(--resume)
  echo "$name: training ($(date -u +%H:%M))"
  FACEMARK_CACHE="${FACEMARK_CACHE:-runs/cache}" facemark train "$config" --out "$run" "${resume[@]}"
  facemark export "$run/last.pt" --name "$name" --out "$run/export" \
    --command-line "facemark train $config --out $run"
done
