#!/usr/bin/env bash
# Issue 17's two wall times on this machine, as medians of RUNS runs (default 3), after an
# untimed build: `cargo run --release` (verify, every claim, with the GPU rows on whatever
# adapter wgpu finds) and the README's `cargo test` (run only: the build is done first).
# Time on an otherwise idle machine: wall times swing ~10× when anything else runs.
#
#   scripts/measure_speed.sh [RUNS]
#   scripts/measure_speed.sh --fresh-build   # the third figure: a fresh clone of HEAD, its
#                                            # `cargo test --no-run` in an empty target folder
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--fresh-build" ]; then
  clone=$(mktemp -d)
  trap 'rm -rf "$clone"' EXIT
  git clone -q . "$clone/repo"
  s=$(date +%s.%N)
  (cd "$clone/repo" && CARGO_TARGET_DIR="$clone/target" CARGO_INCREMENTAL=0 cargo test --no-run -q 2>/dev/null)
  e=$(date +%s.%N)
  printf 'fresh clone build for cargo test: %.0f s (%s cores), target folder %s\n' \
    "$(echo "$e - $s" | bc)" "$(nproc)" "$(du -sh "$clone/target" | cut -f1)"
  exit 0
fi
runs="${1:-3}"
cargo build --release -q
cargo test --no-run -q 2>/dev/null
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
wall() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s.%N); echo "$e - $s" | bc; }
verify=$(for _ in $(seq "$runs"); do wall cargo run --release -q -- verify --report /tmp/measure-speed-report.json; done | median)
tests=$(for _ in $(seq "$runs"); do wall cargo test -q; done | median)
printf 'verify (cargo run --release): %.1f s   cargo test (run only): %.1f s   (medians of %s, %s cores)\n' \
  "$verify" "$tests" "$runs" "$(nproc)"
