#!/usr/bin/env bash
# Device session 16, part 3: the named keys with an id field of log2(E) bits, winners out of order ranked in
# place, the rare paths out of line (finish_named_selection) and the bias table per block: its GPU tests,
# then session 15's route.cu against it as committed ("a": 78 to 80 registers at E = 128 softmax) and held to
# 4 blocks of 256 ("b": 64 registers, spilling), with and without a bias (tools/source_probe.py, bitwise
# checked), and its throughput plan against the bound plan (tools/grid_probe.py).
# Usage (GPU machine, repo root; .probe/s16 carried): OUT=dir bash tools/gpu_session16c.sh
source tools/gpu_env.sh
gpu_suite 240 named tests/test_optimized_gpu.py \
  -k "named or segment or plans_agree or nonfinite or specialization_equals or softmax_near or capped"
SECONDS=0
timeout 240 python3 tools/source_probe.py --variant head=.probe/s16/route_head.cu --variant a=.probe/s16/route_a.cu \
  --variant b=.probe/s16/route_b.cu --preset qwen3-moe --preset gpt-oss-120b --preset deepseek-v2-lite \
  --preset glm-4.5-air --preset moonlight-16b-a3b --rows 4096,16384,65536,262144 --rounds 2 \
  > "$OUT/source_probe.log" 2>&1
echo "source_probe exit $? in ${SECONDS}s"; grep -v "kernels \[" "$OUT/source_probe.log"
SECONDS=0
timeout 120 python3 tools/source_probe.py --variant head=.probe/s16/route_head.cu --variant a=.probe/s16/route_a.cu \
  --preset glm-4.5-air --preset moonlight-16b-a3b --rows 4096,16384 --rounds 2 --no-bias \
  > "$OUT/source_probe_no_bias.log" 2>&1
echo "source_probe --no-bias exit $? in ${SECONDS}s"; grep -v "kernels \[" "$OUT/source_probe_no_bias.log"
SECONDS=0
timeout 120 python3 tools/grid_probe.py --preset glm-4.5-air --preset moonlight-16b-a3b --rows 16384,65536,262144 \
  --caps 0 --rounds 2 > "$OUT/grid_probe.log" 2>&1
echo "grid_probe exit $? in ${SECONDS}s"; grep " T=" "$OUT/grid_probe.log"
