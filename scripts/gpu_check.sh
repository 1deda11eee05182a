#!/usr/bin/env bash
# The whole GPU path checked in one command, on a bare machine with one NVIDIA GPU (see docs/gpu.md):
#
#   scripts/gpu_check.sh WHEELS_DIR [OUT_DIR]
#
# The machine has Python with torch (CUDA), torchvision, lightning, timm and onnx, and no package index: the other
# packages come from WHEELS_DIR (pip install --no-index --find-links WHEELS_DIR), cbam3d's own wheel among them,
# built from this checkout. Stages, each under a time limit (8 minutes in all):
#   install    cbam3d, then its train, export and monai extras, pytorchvideo and pytest from WHEELS_DIR  (30 + 45 s)
#   pytest     python -m pytest -m gpu on this checkout's tests, against the installed cbam3d          (270 s)
#   benchmark  cbam3d benchmark --device cuda --amp bf16 --peers --compile-networks on CBAM, r3d_18  (120 s)
#   report     OUT_DIR/gpu_check.json and OUT_DIR/gpu_check.md (scripts/gpu_report.py)                 (15 s)
# A stage that fails or runs out of time is recorded as such and the next ones still run; the exit status is 0 when
# every stage passed (and every test), 1 otherwise. OUT_DIR (default ./gpu-check-<UTC time>) also keeps pytest's
# JUnit XML, the benchmark's JSON and markdown, and each stage's log.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 || ! -d "$1" ]]; then
    echo "usage: scripts/gpu_check.sh WHEELS_DIR [OUT_DIR]   (WHEELS_DIR: a folder of wheels, see docs/gpu.md)" >&2
    exit 2
fi
repo="$(cd "$(dirname "$0")/.." && pwd)"
wheels="$(cd "$1" && pwd)"
out="${2:-gpu-check-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
python="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Compiled kernels and demo data go to the temporary folder, not the home folder.
export TORCHINDUCTOR_CACHE_DIR="$work/inductor" CBAM3D_CACHE="$work/cache" MPLBACKEND=Agg
# Everything runs from the temporary folder: python -m puts the working folder first on sys.path, and the checkout's
# cbam3d/ folder must not shadow the installed package (whose cbam3d.models comes from models/).
cd "$work"

stages=()
failed=0
# run_stage NAME SECONDS COMMAND...: runs COMMAND under a time limit, its output to OUT_DIR/NAME.log and the
# terminal; records NAME=ok, NAME=failed (exit status) or NAME=timed out.
run_stage() {
    local name="$1" limit="$2" status=0
    shift 2
    echo "== $name (at most ${limit} s)"
    timeout --kill-after=15 "$limit" "$@" > >(tee "$out/$name.log") 2>&1 || status=$?
    if [[ $status -eq 0 ]]; then
        stages+=("--stage" "$name=ok")
    elif [[ $status -eq 124 || $status -eq 137 ]]; then
        stages+=("--stage" "$name=timed out after ${limit} s")
        failed=1
    else
        stages+=("--stage" "$name=failed (exit status $status)")
        failed=1
    fi
}

run_stage install 30 "$python" -m pip install --no-index --find-links "$wheels" --force-reinstall --no-deps cbam3d
# cbam3d's extras for training, export and MONAI, and pytorchvideo and pytest: pip takes what is installed already
# and the rest from WHEELS_DIR, and names any package it finds in neither.
run_stage install-extras 45 "$python" -m pip install --no-index --find-links "$wheels" \
    "cbam3d[train,export,monai]" pytorchvideo pytest

run_stage pytest 270 "$python" -m pytest -m gpu -c "$repo/pyproject.toml" --rootdir "$repo" \
    --junitxml "$out/pytest.xml" --durations 20 -p no:cacheprovider -q "$repo/tests"

# Training-sized shapes: CBAM on 8x64x8x28x28 (the --peers case), r3d_18 steps on 8 clips of 16x112x112.
run_stage benchmark 120 "$python" -m cbam3d benchmark --device cuda --amp bf16 --peers --compile-networks \
    --dims 3 --blocks cbam --models --step-attention cbam --step-clip 8 3 16 112 112 --repeats 20 --warmup 3 \
    --step-repeats 10 --json "$out/benchmark.json" --markdown "$out/benchmark.md"

machine="$("$python" -c 'import torch; print(torch.cuda.get_device_name(0), "| CUDA", torch.version.cuda, "| torch", torch.__version__)' 2>/dev/null || echo unknown)"
run_stage report 15 "$python" "$repo/scripts/gpu_report.py" --junit "$out/pytest.xml" \
    --benchmark "$out/benchmark.json" --machine "$machine" "${stages[@]}" \
    --json "$out/gpu_check.json" --markdown "$out/gpu_check.md"

echo "reports: $out/gpu_check.json and $out/gpu_check.md (logs, JUnit XML and the benchmark's files beside them)"
exit "$failed"
