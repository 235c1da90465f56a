#!/usr/bin/env bash
# Device session 7, part 3: the host path (tools/host_path_probe.py, `moegate bench --host` against the
# peers' launchers) and the plans at medium T (tools/plan_probe.py, with the crossed variant). Logs under
# $OUT. Usage (GPU machine, repo root, `.peers/*` carried): OUT=dir bash tools/gpu_session7c.sh
source tools/gpu_env.sh
export MOEGATE_PEER_SOURCES=$PWD/.peers/src MOEGATE_CACHE_DIR=$PWD/.peers/cache
timeout 120 python3 tools/host_path_probe.py 2>&1 | tee "$OUT/host_path_h200.txt"
SECONDS=0
timeout 200 python3 -m moegate.properties bench --impl optimized --impl vllm --impl flashinfer-default \
  --impl flashinfer-cake --impl eager --preset deepseek-v3 --rows 1 --host > "$OUT/bench_host.log" 2>&1
echo "bench --host exit $? in ${SECONDS}s"; tail -12 "$OUT/bench_host.log"
SECONDS=0
timeout 200 python3 tools/plan_probe.py --rows 1,1024,2048,4096,8192,16384 --preset deepseek-v3 --preset kimi-k2 \
  --preset moonlight-16b-a3b --preset glm-4.5-air --preset qwen3-moe --preset llama-4-maverick \
  --preset qwen3-next-80b-a3b > "$OUT/plan_probe.log" 2>&1
echo "plan_probe exit $? in ${SECONDS}s"; cat "$OUT/plan_probe.log"
