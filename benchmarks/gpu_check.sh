#!/usr/bin/env bash
# The GPU check of issue 7 as one prepared script, for a lent device machine (CuPy, CUDA and
# PyTorch installed there; no network). It runs, in this order, and writes everything to
# $OUT (the device tool's output folder) or ./gpu-results:
#   1. nvidia-smi and the Python packages found;
#   2. the whole test suite on CuPy:  python -m pytest --backend cupy tests
#   3. the benchmark on the GPU, paper MLP and CNN (JSON + text), each checked against the
#      targets of issues 7 and 16 by benchmarks/targets.py ([ok] / [FAIL] per target);
#   4. the penalty family on the GPU: bench --method bcd / admm / altmin on a small MLP
#      (each method's step or sweep against BackProp and its flop floor);
#   5. the CNN beside PyTorch (benchmarks/cnn_vs_torch.py; PyTorch is on the device machine).
#
# The test suite needs a few pure-Python packages that the device machine may lack. Prepare
# them here (they travel with `carry`), once:
#   echo /.wheels/ >> .git/info/exclude
#   pip download --dest .wheels --only-binary=:all: hypothesis pooch tqdm threadpoolctl
# and run through the device tool, e.g.
#   run(command="bash benchmarks/gpu_check.sh", carry=[".wheels"], timeout_s=480)
# Budget: about 4 minutes on an H100 for steps 2-3 (most of it is the CNN benchmark).
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
echo "cnn_vs_torch (CPU of the device machine): exit $? after $(( $(date +%s) - start )) s"
tail -n 8 "$out/cnn-vs-torch-cpu.txt"
