#!/usr/bin/env bash
# Stage (git add) every complete run record and its executed notebook under results/, nothing in flight.
set -euo pipefail
cd "$(dirname "$0")/.."
n=0
for d in results/runs/*/*/; do
  d=${d%/}
  [ -f "$d/metrics.json" ] || continue
  exp=$(basename "$(dirname "$d")"); run=$(basename "$d")
  git add "$d"
  [ -f "results/notebooks/$exp/$run.ipynb" ] && git add "results/notebooks/$exp/$run.ipynb"
  [ -f "results/notebooks/$exp/alignment.ipynb" ] && git add "results/notebooks/$exp/alignment.ipynb"
  n=$((n+1))
done
echo "staged $n complete runs"
