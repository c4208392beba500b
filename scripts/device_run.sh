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
# timeout_s ≈ 420 (the second run, benches/results/h200-2026-11-27b, took 205 s);
# `bash .gpu-bin/device_run.sh eval` runs issue 24's eval figures alone (medians of 3, ~2.5 min).
set -u
OUT="${OUT:-acceptance-out}"; mkdir -p "$OUT"; LOG="$OUT/eval.log"
for f in .gl/*.deb; do dpkg -x "$f" / >/dev/null 2>&1; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
B=.gpu-bin/diffusion-theorems
E="python3 .gpu-bin/eval_image_scale.py --binary $B --d 12288 --n 1000 --dir /tmp/eis"
if [ "${1:-}" = eval ]; then # issue 24's figures alone: medians of 3 at the default tile
  timeout 150 $E --quantity score --repeat 3 --tile 1024 >> "$LOG" 2>&1
  timeout 90 $E --quantity log-density,posterior-mean --tile 1024 >> "$LOG" 2>&1
  for t in 512 2048; do timeout 40 $E --quantity score --backends gpu --tile $t >> "$LOG" 2>&1; done
  cat "$LOG"; exit 0
fi
timeout 100 $E --quantity score --tile 1024 >> "$LOG" 2>&1
echo "eval_image_scale rc=$?" >> "$LOG"
timeout 60 $E --quantity log-density,posterior-mean --tile 1024 >> "$LOG" 2>&1
bash .gpu-bin/acceptance.sh > /dev/null 2>&1
tar czf "$OUT/acceptance-logs.tgz" -C "$OUT" --exclude acceptance-logs.tgz --exclude eval.log . 2>/dev/null
cat "$OUT/summary.txt"; cat "$LOG"
