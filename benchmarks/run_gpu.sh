#!/usr/bin/env bash
# The GPU benchmark of issue 5 / chapter 08, as one prepared run of a few minutes on a GPU machine.
#
# The GPU machine has Python 3.12 and torch 2.11 (CUDA) but no internet and no learn2learn install.
# learn2learn's algorithm modules (algorithms/maml.py, algorithms/meta_sgd.py, utils/) are pure Python,
# so we carry its package folder from this project's virtualenv and load only those modules
# (mlcourse.bench.load_learn2learn: empty package modules stand in for learn2learn/__init__ (gym,
# Cython extensions) and learn2learn/algorithms/__init__ (lightning)).
#
# From a session with a device machine (the `run` tool), in the repository root:
#   run(command="bash benchmarks/run_gpu.sh", carry=[".venv/lib/python3.11/site-packages/learn2learn"], timeout_s=540)
# or anywhere with a GPU:  MLCOURSE_L2L_SRC=/path/to/learn2learn bash benchmarks/run_gpu.sh
#
# Writes (into $OUT when set, which the device tool copies back, else benchmarks/results/):
#   bench-cuda-<date>.json   mlcourse bench: conv4-32 (Conv-4/64, 3x32x32, 5-way 5-shot, 15 queries,
#                            32 tasks, 5 inner steps) and conv4-84 (Conv-4/32, 84x84, 16 tasks), all
#                            implementations, maml fomaml anil metasgd protonet; CUDA peak memory per row
#   scaling-cuda-<date>.json chapter 08's sweeps (FULL_GRID around FULL_BASE) on the GPU
#   run_gpu.log              everything printed
# Commit the JSON files under benchmarks/results/; notebook 08 and 07 show them labelled with the device.
set -uo pipefail
cd "$(dirname "$0")/.."
DEST=${OUT:-benchmarks/results}
mkdir -p "$DEST"
LOG="$DEST/run_gpu.log"
DATE=$(date -u +%Y-%m-%d)
PY=${PYTHON:-python3}
# Overrides for a dry run on a CPU machine, e.g.:
#   OUT=/tmp/gpu-dry MLCOURSE_BENCH_DEVICE=cpu MLCOURSE_BENCH_SHAPES=tiny MLCOURSE_SCALING_ARGS= bash benchmarks/run_gpu.sh
BENCH_DEVICE=${MLCOURSE_BENCH_DEVICE:-cuda}
BENCH_SHAPES=${MLCOURSE_BENCH_SHAPES:-conv4-32 conv4-84}
SCALING_ARGS=${MLCOURSE_SCALING_ARGS---full}
if [ -z "${MLCOURSE_L2L_SRC:-}" ]; then
  MLCOURSE_L2L_SRC=$(ls -d .venv/lib/python3*/site-packages/learn2learn 2>/dev/null | head -n1 || true)
fi
export MLCOURSE_L2L_SRC PYTHONUNBUFFERED=1
{
  echo "== $(date -u) on $(hostname)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  $PY -c "import sys, torch; print('python', sys.version.split()[0], '| torch', torch.__version__, '| cuda', torch.version.cuda, '|', torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA device')"
  echo "learn2learn source: ${MLCOURSE_L2L_SRC:-none (learn2learn rows skipped)}"
} 2>&1 | tee "$LOG"

# 1. the benchmark table (about 3-5 minutes on an H100/H200)
timeout 420 $PY -m mlcourse bench --device "$BENCH_DEVICE" --shapes $BENCH_SHAPES \
  --algorithms maml fomaml anil metasgd protonet --repeats 5 \
  ${MLCOURSE_L2L_SRC:+--l2l-source "$MLCOURSE_L2L_SRC"} \
  --out "$DEST/bench-$BENCH_DEVICE-$DATE.json" 2>&1 | tee -a "$LOG"
status=${PIPESTATUS[0]}

# 2. the scaling sweeps of chapter 08 (1-2 minutes), whatever time is left
timeout 150 $PY -m mlcourse scaling --device "$BENCH_DEVICE" $SCALING_ARGS --repeats 3 \
  --algorithms maml fomaml anil reptile protonet \
  --out "$DEST/scaling-$BENCH_DEVICE-$DATE.json" 2>&1 | tee -a "$LOG"
echo "== done $(date -u), bench exit status $status" | tee -a "$LOG"
exit "$status"
