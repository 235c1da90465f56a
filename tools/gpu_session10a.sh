#!/usr/bin/env bash
# Device session 10, part 1: the sigmoid table (bf16 logits, throughput kernels) and the shorter bias keys.
# Times the committed route.cu (build/route_head.cu), the table alone (build/route_table1.cu) and the
# working tree (table + keys) on the sigmoid presets at prefill sizes, then the table's exhaustive test and
# the kernels' bitwise tests against the generic kernel. Logs under $OUT.
# Usage (GPU machine, repo root, build/route_head.cu and build/route_table1.cu carried):
#   OUT=dir bash tools/gpu_session10a.sh
source tools/gpu_env.sh
SECONDS=0
timeout 200 python3 tools/source_probe.py --variant head=build/route_head.cu --variant table=build/route_table1.cu \
  --variant tree=optimized/kernels/route.cu --preset deepseek-v3 --preset kimi-k2 --preset glm-4.5 \
  --preset moonlight-16b-a3b --preset glm-4.5-air --preset llama-4-maverick --rows 4096,65536,262144 --rounds 2 \
  > "$OUT/source_probe.log" 2>&1; echo "source_probe exit $? in ${SECONDS}s"; cat "$OUT/source_probe.log"
SECONDS=0
timeout 200 python3 -m pytest -m gpu -q -x -p no:cacheprovider tests/test_optimized_gpu.py \
  -k "sigmoid_table or specialization_equals_generic or plans_agree or rows_per_segment or nonfinite" \
  > "$OUT/pytest_opt.log" 2>&1
echo "pytest exit $? in ${SECONDS}s: $(tail -1 "$OUT/pytest_opt.log")"; grep -E "^FAILED|^ERROR|Error|assert" "$OUT/pytest_opt.log" | head -20
