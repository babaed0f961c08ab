#!/usr/bin/env bash
# Packs what bench/scratch_device.sh needs on a machine that has only the repository's tracked
# files (the device machine of the `run` tool, which takes at most 64 MiB along): the build
# (dist/src, dist/bench), the runtime node_modules for linux-x64 only (onnxruntime-node's
# other platforms, typescript, fast-check and @types left out) and the datasets, in one
# xz-compressed tar whose paths are relative to the repository root.
#
#   bench/scratch_device_pack.sh [PACKDIR] [DATAROOT]
#
#   PACKDIR   where the tar goes (default .devpack, added to git's info/exclude so it is
#             ignored and can be carried)
#   DATAROOT  folder holding bccd/ and raccoon/ (default ../shared/data beside the repository)
#
# Environment: DATASETS (default "bccd raccoon"); WITH_NODE=1 also packs this machine's node
# binary as PACKDIR/node (for a machine without node; about +25 MiB).
#
# On the other machine, in the repository root: tar -xJf PACKDIR/scratch.tar.xz, then
# bench/scratch_device.sh BUDGET OUTDIR PACKDIR/data (with NODE=PACKDIR/node if packed).
set -eu
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
PACK=${1:-.devpack}
ROOT=${2:-$REPO/../shared/data}
DATASETS=${DATASETS:-bccd raccoon}
[ -f dist/src/cli/main.js ] && [ -f dist/bench/scratch.js ] || { echo "scratch_device_pack.sh: build first (npx tsc -p .)" >&2; exit 2; }
case "$PACK" in /*) echo "scratch_device_pack.sh: PACKDIR must be inside the repository, relative to its root" >&2; exit 2 ;; esac
mkdir -p "$PACK"
exclude=$(git rev-parse --git-path info/exclude)
grep -qxF "/$PACK/" "$exclude" 2>/dev/null || echo "/$PACK/" >>"$exclude"

# The datasets, under PACKDIR/data in the tar (copied, not linked: links do not travel).
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$PACK/data"
for ds in $DATASETS; do
  [ -d "$ROOT/$ds" ] || { echo "scratch_device_pack.sh: no $ROOT/$ds" >&2; exit 2; }
  cp -rL "$ROOT/$ds" "$stage/$PACK/data/$ds"
done
chmod -R u+w "$stage"
if [ "${WITH_NODE:-0}" = 1 ]; then
  cp -L "$(command -v node)" "$stage/$PACK/node"
fi

ort=node_modules/onnxruntime-node/bin/napi-v6
# protobufjs: onnx-proto needs only protobufjs/minimal (src/); its cli (20 MB) and browser dist are left out.
export XZ_OPT=${XZ_OPT:--6 -T0}
tar -cJf "$PACK/scratch.tar.xz" \
  --exclude="$ort/darwin" --exclude="$ort/win32" --exclude="$ort/linux/arm64" \
  --exclude=node_modules/typescript --exclude=node_modules/fast-check --exclude=node_modules/@types \
  --exclude=node_modules/pure-rand --exclude=node_modules/undici-types --exclude=node_modules/.cache \
  --exclude=node_modules/protobufjs/cli --exclude=node_modules/protobufjs/dist --exclude='*.d.ts' --exclude='*.map' \
  dist/src dist/bench node_modules -C "$stage" "$PACK"
ls -l "$PACK/scratch.tar.xz" | awk '{printf "%s: %.1f MiB\n", $NF, $5 / 1048576}'
echo "tracked files: $(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | awk '{printf "%.1f MiB", $1 / 1048576}') (the run tool takes at most 64 MiB in all)"
