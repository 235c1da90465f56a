# Sourced by the device scripts (tools/gpu_session6*.sh) before their own steps: $OUT made (default
# /tmp/out), unbuffered Python, the project installed editable (the device has no package registry), and
# the card, driver and versions written to $OUT/env.log and shown.
set -o pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -1
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c "import torch, cupy; print('torch', torch.__version__, 'cupy', cupy.__version__)"; } | tee "$OUT/env.log"
