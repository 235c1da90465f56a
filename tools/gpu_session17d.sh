#!/usr/bin/env bash
# Device session 17, part 4: the segment maxima and minima by one redux.sync over the segment's lanes (rdx)
# instead of log2(L) xor shuffles and maxima, on every segment preset; DeepSeek-V2 also with each row requested
# one row ahead (curla, rdxla). tools/source_probe.py, bitwise checked.
# Usage (GPU machine, repo root; .probe/s17 carried): OUT=dir bash tools/gpu_session17d.sh
source tools/gpu_env.sh
SECONDS=0
timeout 400 python3 tools/source_probe.py --variant cur=optimized/kernels/route.cu \
  --variant rdx=.probe/s17/route_rdx.cu --variant curla=.probe/s17/route_curla.cu \
  --variant rdxla=.probe/s17/route_rdxla.cu --preset deepseek-v2 --preset qwen3-moe \
  --preset moonlight-16b-a3b --preset glm-4.5-air --preset gpt-oss-120b --preset deepseek-v2-lite \
  --preset llama-4-maverick --rows 4096,65536,262144 --rounds 2 > "$OUT/source_probe.log" 2>&1
echo "source_probe exit $? in ${SECONDS}s"; grep -v "kernels \[" "$OUT/source_probe.log"
