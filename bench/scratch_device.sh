#!/usr/bin/env bash
# The from-scratch measurement of docs/results.md ("From scratch: the automatic recipe") on a
# machine with many cores: `retinanet bench scratch` for each dataset and each arm (today's
# BCCD recipe, the automatic recipe, torchvision with the automatic recipe), all at once, each
# arm in a process of its own pinned to its own THREADS cores with taskset and run with
# --threads THREADS, so every arm sees a 2-core machine for the same wall-clock budget.
#
#   bench/scratch_device.sh BUDGET OUTDIR [DATAROOT]
#
#   BUDGET    training time of each arm, as --time-budget takes it (15m in the issue; 6m fits a
#             short lease: the whole script takes about BUDGET + 1-2 minutes)
#   OUTDIR    results: OUTDIR/<data>-<arm>/ (each arm's runs and summary.json, its stderr in
#             OUTDIR/<data>-<arm>.log), OUTDIR/<data>/summary.json (the arms merged) and
#             OUTDIR/summary.md (the tables, the machine and the command)
#   DATAROOT  folder holding bccd/ and raccoon/ (default: ../shared/data beside the repository)
#
# Environment: DATASETS (default "bccd raccoon"), ARMS (default "today auto torchvision"),
# THREADS (2), SEED (0), NODE (node), CORES (default: nproc), TORCH_PYTHON (default: the first of python3 on PATH and
# /usr/bin/python3 that imports torch and torchvision). With fewer than THREADS x runs cores
# the runs share cores (a smoke test, not a measurement; the summary says so). Needs a build
# (`npx tsc -p .`). Exit status 0 when every arm finished, 1 otherwise (the tables then hold
# the arms that did).
#
# The splits are fixed files: BCCD's ImageSets/Main/train.txt (205 images) / test.txt (72),
# raccoon's train_labels.csv (160) / test_labels.csv (40), the split published with it.
set -u
if [ $# -lt 2 ]; then
  sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
fi
BUDGET=$1
OUT=$2
REPO=$(cd "$(dirname "$0")/.." && pwd)
ROOT=${3:-$REPO/../shared/data}
DATASETS=${DATASETS:-bccd raccoon}
ARMS=${ARMS:-today auto torchvision}
THREADS=${THREADS:-2}
SEED=${SEED:-0}
NODE=${NODE:-node}
if [ -z "${TORCH_PYTHON:-}" ]; then
  # The first of python3 on PATH and /usr/bin/python3 (Debian's python3-torch) that has torch.
  for py in python3 /usr/bin/python3; do
    if "$py" "$REPO/bench/torch_compat.py" >/dev/null 2>&1; then TORCH_PYTHON=$(command -v "$py"); break; fi
  done
  TORCH_PYTHON=${TORCH_PYTHON:-python3}
fi
export TORCH_PYTHON
# torch's own thread pools follow --threads (torch.set_num_threads); these keep BLAS in line too.
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS

CLI=$REPO/dist/src/cli/main.js
[ -f "$CLI" ] || { echo "scratch_device.sh: no build at $CLI (run npx tsc -p . first)" >&2; exit 2; }
command -v "$NODE" >/dev/null || { echo "scratch_device.sh: no node at '$NODE' (set NODE)" >&2; exit 2; }
for ds in $DATASETS; do
  [ -d "$ROOT/$ds" ] || { echo "scratch_device.sh: no $ROOT/$ds (give DATAROOT)" >&2; exit 2; }
done
ROOT=$(cd "$ROOT" && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# GNU nproc honours OMP_NUM_THREADS (set above for torch): count without it. CORES overrides.
cores=${CORES:-$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)}
njobs=0
for ds in $DATASETS; do for arm in $ARMS; do njobs=$((njobs + 1)); done; done
shared=""
if [ $((njobs * THREADS)) -gt "$cores" ]; then
  shared="$njobs runs x $THREADS threads on $cores cores: runs share cores, a smoke test rather than a measurement"
  echo "scratch_device.sh: warning: $shared" >&2
fi
pin=""
# Pinning only where it works (a sandbox may refuse sched_setaffinity): a refused taskset
# would otherwise fail every run.
command -v taskset >/dev/null && [ "$cores" -ge "$THREADS" ] && taskset -c 0 true 2>/dev/null && pin=taskset
[ -z "$pin" ] && echo "scratch_device.sh: warning: taskset missing or refused (or fewer cores than THREADS); runs are not pinned, only limited to --threads $THREADS" >&2

start=$(date -u +%s)
echo "scratch_device.sh: $njobs runs of $BUDGET (${THREADS} threads each) on $cores cores -> $OUT" >&2
k=0
pids=()
names=()
for ds in $DATASETS; do
  for arm in $ARMS; do
    first=$(((k * THREADS) % cores))
    last=$((first + THREADS - 1))
    [ "$last" -ge "$cores" ] && last=$((cores - 1))
    name=$ds-$arm
    prefix=()
    [ -n "$pin" ] && prefix=(taskset -c "$first-$last")
    echo "  $name on cores $first-$last" >&2
    (
      "${prefix[@]}" "$NODE" "$CLI" bench scratch --data "$ds" --root "$ROOT" --runs "$arm" --budget "$BUDGET" \
        --threads "$THREADS" --seed "$SEED" --out "$OUT/$name" >"$OUT/$name.stdout" 2>"$OUT/$name.log"
      echo $? >"$OUT/$name.rc"
    ) &
    pids+=($!)
    names+=("$name")
    k=$((k + 1))
  done
done
for p in "${pids[@]}"; do wait "$p"; done
end=$(date -u +%s)

failed=0
{
  echo "# bench scratch, $BUDGET per run"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ); $cores cores ($(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //')); node $("$NODE" --version);" \
    "torch: $("$TORCH_PYTHON" "$REPO/bench/torch_compat.py" 2>/dev/null || echo "$TORCH_PYTHON has none")"
  echo "each run: ${pin:+pinned with taskset to }$THREADS cores${shared:- of its own}, --threads $THREADS, seed $SEED; all $njobs at once; $((end - start)) s in all${shared:+. WARNING: $shared}"
  echo
  echo '```'
  echo "bench/scratch_device.sh $BUDGET OUTDIR DATAROOT   # DATASETS='$DATASETS' ARMS='$ARMS'"
  echo '```'
  for ds in $DATASETS; do
    dirs=()
    for arm in $ARMS; do
      rc=$(cat "$OUT/$ds-$arm.rc" 2>/dev/null || echo '?')
      if [ "$rc" = 0 ] && [ -f "$OUT/$ds-$arm/summary.json" ]; then
        dirs+=("$OUT/$ds-$arm")
      else
        failed=1
        echo
        echo "**$ds $arm failed (exit $rc)**; last lines of $ds-$arm.log:"
        echo '```'
        tail -n 5 "$OUT/$ds-$arm.log" 2>/dev/null
        echo '```'
      fi
    done
    if [ ${#dirs[@]} -gt 0 ]; then
      echo
      (IFS=,; "$NODE" "$CLI" bench scratch --merge "${dirs[*]}" --out "$OUT/$ds") 2>&1
    fi
  done
} >"$OUT/summary.md"
cat "$OUT/summary.md"
exit $failed
