#!/usr/bin/env bash
# A lent GPU's whole check in one call: issue 24's eval figures on a d = 12288 Gaussian (the f64
# CPU route against the f32 GPU route, tiles and quantities), then ../shared/device/acceptance.sh
# (verify, gpu_parity, bench, the PyTorch reference), with every log packed into one archive
# (the device tool returns at most 8 files).
#
# Prepare here (as acceptance.sh's header says), then copy this script beside it:
#   cargo build --release && mkdir -p .gpu-bin && cp target/release/diffusion-theorems .gpu-bin/
#   cp "$(cargo test --release --no-run --message-format=json 2>/dev/null \
#        | grep -o '"executable":"[^"]*gpu_parity[^"]*"' | cut -d'"' -f4)" .gpu-bin/gpu_parity
#   mkdir -p .gl && cp ../shared/device/gl/*.deb .gl/
#   cp ../shared/device/acceptance.sh scripts/device_run.sh benches/eval_image_scale.py .gpu-bin/
# and call the device tool with carry [".gl", ".gpu-bin"], command "bash .gpu-bin/device_run.sh",
# timeout_s ≈ 420. The first run (benches/results/h200-2026-11-27) took 136 s.
set -u
OUT="${OUT:-acceptance-out}"; mkdir -p "$OUT"; LOG="$OUT/eval.log"
for f in .gl/*.deb; do dpkg -x "$f" / >/dev/null 2>&1; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
B=.gpu-bin/diffusion-theorems
timeout 100 python3 .gpu-bin/eval_image_scale.py --binary $B --d 12288 --n 1000 \
  --quantity score --backends cpu,gpu --tile 1024 --dir /tmp/eis >> "$LOG" 2>&1
echo "eval_image_scale rc=$?" >> "$LOG"
one() { # one BACKEND TILE QUANTITY
  echo "== $1 tile=$2 $3" >> "$LOG"
  /usr/bin/time -f "wall %e s, max RSS %M KB" timeout 40 $B eval --target /tmp/eis/target.json \
    --sigma 0.5 --points /tmp/eis/points.npy --quantity "$3" --out "/tmp/eis/v-$1-$2-$3.npy" \
    --timings --backend "$1" --tile "$2" 2>&1 | grep -v XDG >> "$LOG"
}
one gpu 512 score; one gpu 2048 score; one gpu 1024 score
one gpu 1024 log-density; one cpu 1024 log-density
one gpu 1024 posterior-mean; one cpu 1024 posterior-mean
python3 - >> "$LOG" 2>&1 <<'PY'
import numpy as np
for q in ["log-density", "posterior-mean"]:
    a = np.load(f"/tmp/eis/v-gpu-1024-{q}.npy"); b = np.load(f"/tmp/eis/v-cpu-1024-{q}.npy")
    rel = (np.abs(a - b) / np.abs(b) if a.ndim == 1
           else np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1))
    print(q, "gpu vs cpu: max per-point relative difference", float(rel.max()))
PY
bash .gpu-bin/acceptance.sh > /dev/null 2>&1
tar czf "$OUT/acceptance-logs.tgz" -C "$OUT" --exclude acceptance-logs.tgz --exclude eval.log . 2>/dev/null
cat "$OUT/summary.txt"; cat "$LOG"
