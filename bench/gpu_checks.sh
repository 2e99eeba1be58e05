#!/usr/bin/env bash
# The engine's GPU checks and benchmarks in one short run (see bench/README.md, "GPU").
#
# Prepared on a machine with network (the GPU machine has none), in the ignored folder build/gpu/:
#   bash bench/gpu_checks.sh prepare
# Then on the GPU machine, from the repository root, with build/gpu carried along:
#   bash bench/gpu_checks.sh            # logs under $OUT (or /tmp/gpu-out), a summary on stdout
# Every step is bounded by `timeout`; about 8 minutes in all on an H200.
set -u
HERE=$(cd "$(dirname "$0")/.." && pwd)
GPU=$HERE/build/gpu

if [ "${1:-}" = "prepare" ]; then
  mkdir -p "$GPU/wheels" "$GPU/cache"
  pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$GPU/wheels" transformers==5.23.0 peft==0.21.2 moocore==0.3.0 cffi pycparser platformdirs
  python -c "import shutil; from paretoapp.models import smollm2_tokenizer_dir as d; \
shutil.copytree(d(), '$GPU/cache/SmolLM2-135M-Instruct-tokenizer', dirs_exist_ok=True)"
  du -sh "$GPU"
  exit 0
fi

OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT" /tmp/site
pip install -q --no-index --no-deps --target /tmp/site "$GPU"/wheels/*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/site:$HERE PARETOAPP_CACHE=$GPU/cache HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
cd "$HERE" || exit 1
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"

step() {  # step NAME SECONDS COMMAND...: run bounded, log, print the last lines
  local name=$1 limit=$2
  shift 2
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  echo "== $name (rc=$?)"
  tail -n 4 "$OUT/$name.log"
}

# 1. correctness first: CUDA graphs, static and dynamic decoders answer for answer (tiny fp32 model)
step check 150 python bench/engine_check.py --device cuda
GRAPHS=()
grep -q "all decoders exact" "$OUT/check.log" || { GRAPHS=(--no-graphs); export PARETOAPP_ENGINE_GRAPHS=0; }
# 2. decode per step through the engine (bank per-row w vs merged, batch 1 and 16), chats, TTFT
step engine 240 python bench/engine.py --config qwen2-0.5b --device cuda --dtype bf16 --repeats 5 "${GRAPHS[@]}"
# 3. the front at 16 prompts per w: one engine job vs merging per w (generate, and engine with weights in place)
PARETOAPP_ENGINE_MAX_BATCH=256 step front 240 python bench/front_eval_device.py --config qwen2-0.5b \
  --device cuda --dtype bf16 --prompts 16 --max-new-tokens 64 --repeats 2 --batch-size 176 --seq-batch-size 16 \
  --no-bank-per-w
# 4. transformers' persistent ContinuousBatchingManager vs the engine
step cb 120 python bench/cb_manager.py --config qwen2-0.5b --device cuda --dtype bf16 --n 32 --new-tokens 64
