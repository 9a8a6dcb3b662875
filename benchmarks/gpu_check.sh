#!/usr/bin/env bash
# GPU check (issue 16): on one GPU, in <= 8 minutes,
#   1. the training-step benchmark, ViT-B/32, B = 256, AMP bf16: CLIP / NegCLIP / FSC-CLIP step time, samples/s,
#      torch.cuda.max_memory_allocated                                          (benchmarks/train_step.py)
#   2. the memory estimator for the same three configurations, beside the measured peak (benchmarks/memory.py)
#   3. evaluation throughput, bf16 weights: items/s and images/s               (benchmarks/eval.py)
# then a table of all three (benchmarks/gpu_check_report.py -> <out>/summary.md, summary.json).
#
# Without CUDA (or with FSC_GPU_CHECK_CPU=1) it runs a reduced CPU version as a smoke test: fsc-tiny, B = 8,
# fp32, a few steps, the tiny-model eval only. Its numbers say nothing about a GPU.
#
# Usage: benchmarks/gpu_check.sh [OUT_DIR]        (default: gpu_check_out; PYTHON=... picks the interpreter)
set -euo pipefail

cd "$(dirname "$0")/.."
OUT="${1:-gpu_check_out}"
PY="${PYTHON:-python}"
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1

if [[ "${FSC_GPU_CHECK_CPU:-0}" != "1" ]] && "$PY" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
    MODE=gpu
    MODEL=ViT-B-32 BATCH=256 TRAIN_PRECISION=amp_bf16 MEM_PRECISION=amp_bf16 DEVICE=cuda
    REPEATS=10 WARMUP=3 THREADS=0 MEM_FLAGS=() EVAL_FLAGS=(--device cuda --precision bf16 --batch-size 256 --vit-scale 20)
    # a budget per part, so that the whole stays under 8 minutes even if one part hangs
    T_TRAIN=200 T_MEM=180 T_EVAL=90
else
    MODE=cpu
    MODEL=fsc-tiny BATCH=8 TRAIN_PRECISION=fp32 MEM_PRECISION=fp32 DEVICE=cpu
    REPEATS=2 WARMUP=1 THREADS=1 MEM_FLAGS=(--cpu) EVAL_FLAGS=(--device cpu --precision fp32 --batch-size 16 --skip-vit)
    T_TRAIN=300 T_MEM=300 T_EVAL=300
fi
echo "gpu_check: mode=$MODE model=$MODEL batch=$BATCH out=$OUT"

# 1. training step (each method in its own subprocess, so each memory peak is its own)
timeout "$T_TRAIN" "$PY" benchmarks/train_step.py --model "$MODEL" --batch-size "$BATCH" \
    --precision "$TRAIN_PRECISION" --device "$DEVICE" --methods clip,negclip,fsc-clip \
    --repeats "$REPEATS" --warmup "$WARMUP" --threads "$THREADS" --out "$OUT/train_step.json"

# 2. memory estimate of the same steps (the train-step benchmark feeds the trimmed batch, hence --trim)
for loss in clip negclip fsc-clip; do
    timeout "$T_MEM" "$PY" benchmarks/memory.py --model "$MODEL" --batch "$BATCH" --loss "$loss" \
        --precision "$MEM_PRECISION" --trim "${MEM_FLAGS[@]}" --out "$OUT/memory_$loss.json"
done

# 3. evaluation throughput
timeout "$T_EVAL" "$PY" benchmarks/eval.py "${EVAL_FLAGS[@]}" --out "$OUT/eval.json"

"$PY" benchmarks/gpu_check_report.py "$OUT" --mode "$MODE"
