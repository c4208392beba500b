#!/usr/bin/env bash
# The GL backend under load (issue 22, item 7): runs the GPU parity tests on Mesa GL/EGL
# (llvmpipe) with four test threads while six busy loops keep the CPUs occupied. Before the
# context serialised its users (`Gpu::turn`), 3 of 32 tests panicked here in wgpu-hal's GL
# backend with "Could not lock adapter context. This is most-likely a deadlock."
# Usage: scripts/gl_under_load.sh [busy loops, default 6] [test threads, default 4]
set -euo pipefail
cd "$(dirname "$0")/.."
loops=${1:-6}
threads=${2:-4}
binary=$(cargo test --no-run --test proof_check --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "proof_check":
        print(m["executable"])')
pids=()
for _ in $(seq "$loops"); do
  (while :; do :; done) &
  pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
WGPU_BACKEND=gl "$binary" --test-threads "$threads" gpu_parity::
