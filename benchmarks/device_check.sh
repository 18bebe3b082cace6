#!/usr/bin/env bash
# The GPU check, one command (under 8 minutes on a machine with a CUDA GPU):
#   1. the CUDA-dependent tests (tests/test_cuda.py): device placement and the recorded
#      device name, the CUDA RNG state in checkpoints, stop-and-resume on the GPU, and
#      trainer.deterministic giving bit-identical GPU runs;
#   2. the seed protocol (20 epochs, `python run.py`), timed, on the GPU: its test accuracy;
#   3. the same with trainer.deterministic=true, timed: what determinism costs.
# It prints its figures; put them in experiments/ with the GPU's name.
#
#   MNIST_LAB_DATA=../shared/mnist bash benchmarks/device_check.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-device_check}
mkdir -p "$OUT"
export WANDB_MODE=disabled

python - <<'EOF'
import torch
assert torch.cuda.is_available(), "no CUDA device: this check needs a GPU"
print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, "
      f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
EOF

start=$SECONDS
tests_rc=0  # a failing CUDA test is reported, and the timed runs still go ahead
python -m pytest -q -rfEs tests/test_cuda.py >"$OUT/cuda_tests.log" 2>&1 || tests_rc=$?
tail -n 40 "$OUT/cuda_tests.log"
echo "CUDA tests: $((SECONDS - start)) s, pytest exit code $tests_rc"

protocol() {  # name, extra overrides...
  local name=$1 t0=$SECONDS
  shift
  python run.py logger=none trainer.progress=false trainer.device=auto \
    "hydra.run.dir=$OUT/$name" "$@" >"$OUT/$name.log" 2>&1
  python - "$OUT/$name" "$((SECONDS - t0))" <<'EOF'
import json, sys
s = json.load(open(f"{sys.argv[1]}/summary.json"))
print(f"{sys.argv[1]}: {s['device_name']}, test/accuracy {100 * s['test/accuracy']:.2f}% "
      f"(test/error {100 * s['test/error']:.2f}%), val/best_error {100 * s['val/best_error']:.2f}%, "
      f"train {s['train/images_per_s']:,.0f} images/s, wall_s {s['wall_s']:.0f} "
      f"(command {sys.argv[2]} s)")
EOF
}
protocol seed_protocol
protocol seed_protocol_deterministic trainer.deterministic=true
exit "$tests_rc"
