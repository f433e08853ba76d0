#!/usr/bin/env bash
# Issue 27's GPU measurements as one prepared command, for a session that is lent a GPU
# (docs/performance.md, "GPU"): the main job (Table 1: six methods, three seeds) timed from an
# empty results folder with `--device cuda` and the default `--jobs` (pairs share the GPU, as
# many as its free memory holds, up to 8), then the extended suite's remaining pairs in the
# time left; between the two (issue 48), the per-model step time of the LiteEval family at 1, 3
# and 6 times the operand width. What it writes under $OUT comes back: the logs, each run's wall time, the
# environment, and the results folder as one archive (tables, records, scores, provenance; no weights).
#
# On the device tool (the GPU machine lacks ptflops; carry it as a wheel, see
# /work/.library/device/README.md):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 -d .whl ptflops==0.7.5
#   run(command="bash tests/perf/device_check.sh", carry=[".whl"], timeout_s=590)
# Rehearse the mechanics on a CPU first (minutes, no GPU; PYTHON: an environment with the suite's packages):
#   OUT=/tmp/device-out DEVICE=cpu DATASET=tiny PYTHON=.venv/bin/python bash tests/perf/device_check.sh
# While it runs, nvidia-smi samples the GPU's utilisation and memory once a second (gpu-usage.csv;
# the mean and peaks are printed at the end), so the report can say whether the GPU was kept busy.
set -euo pipefail
: "${OUT:?set OUT to the folder the results go to}"
DEVICE=${DEVICE:-cuda}
DATASET=${DATASET:-default}
BUDGET_S=${BUDGET_S:-540}  # seconds for everything; the device tool stops a command at 600
PYTHON=${PYTHON:-python3}
started=$(date +%s)
mkdir -p "$OUT"
if ! "$PYTHON" -c "import ptflops" 2>/dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1 LITEEVAL_PROGRESS=0
results=$(mktemp -d)
sampler=""
if command -v nvidia-smi > /dev/null; then  # utilisation (%) and memory (MiB), once a second, until the end
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used,memory.total --format=csv,noheader,nounits -l 1 \
    > "$OUT/gpu-usage.csv" 2>&1 &
  sampler=$!
  trap 'kill "$sampler" 2> /dev/null || true' EXIT
fi
{
  date -u
  git rev-parse HEAD 2>/dev/null || true
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
  "$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
  nproc
} > "$OUT/environment.txt" 2>&1

timed() {  # timed NAME SECONDS ARGS...: one benchmark command, its log and its wall time
  local name=$1 limit=$2
  shift 2
  local begin ms rc=0
  begin=$(date +%s%N)
  timeout "$limit" "$PYTHON" -m benchmark "$@" > "$OUT/$name.log" 2>&1 || rc=$?
  ms=$((($(date +%s%N) - begin) / 1000000))
  echo "$name rc=$rc wall_s=$((ms / 1000)).$(printf %03d $((ms % 1000))) limit_s=$limit" | tee -a "$OUT/times.txt"
  return 0
}

left() { echo $((BUDGET_S - ($(date +%s) - started))); }

timed main-job "$(left)" run --dataset "$DATASET" --device "$DEVICE" --results-dir "$results"
# Issue 48: what wider operands save a LiteEval model's training step on this device (one model on
# each batch tiled k times; docs/performance.md, "Wider operands"), on the store the main job made;
# at most two minutes, before the extended suite takes the time left.
if [ "$(left)" -gt 150 ]; then
  begin=$(date +%s)
  timeout 120 "$PYTHON" tests/perf/step_bound.py --store "${LITEEVAL_DATA:-data}/synthetic/$DATASET-seed0" \
    --methods liteeval liteeval_rl --widths 1 3 6 --precision fp32 bf16 --steps 6 --device "$DEVICE" --no-profile \
    --out "$OUT/widths.json" > "$OUT/widths.log" 2>&1 && rc=0 || rc=$?
  echo "widths rc=$rc wall_s=$(($(date +%s) - begin))" | tee -a "$OUT/times.txt"
fi
if [ "$(left)" -gt 60 ]; then  # the extended suite keeps the main job's pairs and adds its own
  timed extended "$(($(left) - 30))" run --dataset "$DATASET" --device "$DEVICE" --results-dir "$results" \
    --suite extended
fi
# Not the weights (the device tool brings back 16 MiB a file): tables, records, scores, provenance.
tar czf "$OUT/results.tgz" --exclude='*.pt' -C "$results" .
ls -l "$OUT/results.tgz"
if [ -n "$sampler" ]; then
  kill "$sampler" 2> /dev/null || true
  awk -F', *' '$2 ~ /^[0-9]+$/ {n++; u += $2; if ($2 > mu) mu = $2; if ($3 > mm) mm = $3; total = $4}
    END {if (n) printf "gpu samples=%d mean_util_percent=%.0f max_util_percent=%d max_memory_mib=%d of %d\n",
                         n, u / n, mu, mm, total; else print "gpu: no samples"}' "$OUT/gpu-usage.csv" \
    | tee -a "$OUT/times.txt"
fi
cat "$OUT/times.txt"
