#!/usr/bin/env bash
# The GPU check as one script, for a machine with an NVIDIA GPU and CuPy (CUDA 12:
# pip install cupy-cuda12x). It needs no network. It runs, in this order, and writes everything
# to $OUT, or to ./gpu-results when OUT is not set:
#   1. nvidia-smi and the Python packages found;
#   2. the whole test suite on CuPy:  python -m pytest --backend cupy tests
#   3. the benchmark on the GPU, paper MLP and CNN (JSON + text), each checked against the
#      performance targets by benchmarks/targets.py ([ok] / [FAIL] per target; on the GPU an
#      epoch of 45,000 images in under 0.5 s for BackProp and exact ProxProp);
#   4. the penalty family on the GPU: bench --method bcd / admm / altmin on a small MLP
#      (each method's step or sweep against BackProp and its flop floor);
#   5. the CNN beside PyTorch on the machine's CPU (benchmarks/cnn_vs_torch.py; skipped with a
#      message when PyTorch is not installed).
#
# Usage, from the repository root:   bash benchmarks/gpu_check.sh
# On a GPU machine without internet, bring the test suite's pure-Python dependencies as wheels
# in .wheels/ (made on a machine with internet; the script installs them from there):
#   pip download --dest .wheels --only-binary=:all: hypothesis pooch tqdm threadpoolctl
# Expect a few minutes, most of it the CNN benchmark (an estimate: it has not yet run on a GPU).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-results}
mkdir -p "$out"
export MPLBACKEND=Agg PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

{
  nvidia-smi || echo "nvidia-smi failed"
  python -V
  if [ -d .wheels ]; then
    python -m pip install --quiet --no-index --find-links .wheels hypothesis pooch tqdm threadpoolctl \
      || echo "pip install from .wheels failed"
  fi
  python - <<'EOF'
import importlib
for name in ("numpy", "scipy", "cupy", "hypothesis", "pooch", "tqdm", "threadpoolctl", "matplotlib"):
    try:
        module = importlib.import_module(name)
        print(f"{name} {getattr(module, '__version__', '?')}")
    except ImportError as err:
        print(f"{name} MISSING ({err})")
EOF
} > "$out/machine.txt" 2>&1
cat "$out/machine.txt"

start=$(date +%s)
timeout 300 python -m pytest --backend cupy -q -p no:cacheprovider -o addopts="" tests \
  > "$out/pytest-cupy.txt" 2>&1
echo "pytest --backend cupy: exit $? after $(( $(date +%s) - start )) s"
tail -n 15 "$out/pytest-cupy.txt"

for model in mlp cnn; do
  start=$(date +%s)
  # the bench (report and JSON), then the targets; exit 1: a target of the paper MLP failed
  timeout 200 python benchmarks/targets.py --run --backend cupy --model "$model" \
    --json "$out/bench-gpu-$model.json" > "$out/bench-gpu-$model.txt" 2>&1
  echo "bench --backend cupy --model $model + targets: exit $? after $(( $(date +%s) - start )) s"
  sed -n '/^GEMM peak/,$p' "$out/bench-gpu-$model.txt"
done

for method in bcd admm altmin; do
  start=$(date +%s)
  timeout 60 python -m penaltyprop bench --backend cupy --method "$method" --model 784-300-10 \
    --batch-size 1000 --repetitions 3 --no-breakdown --json "$out/bench-gpu-$method.json" \
    > "$out/bench-gpu-$method.txt" 2>&1
  echo "bench --backend cupy --method $method: exit $? after $(( $(date +%s) - start )) s"
  sed -n '/^mode/,/^x BP/p' "$out/bench-gpu-$method.txt"
done

start=$(date +%s)
timeout 120 python benchmarks/cnn_vs_torch.py --repetitions 5 --json "$out/cnn-vs-torch-cpu.json" \
  > "$out/cnn-vs-torch-cpu.txt" 2>&1
echo "cnn_vs_torch (on this machine's CPU): exit $? after $(( $(date +%s) - start )) s"
tail -n 8 "$out/cnn-vs-torch-cpu.txt"
