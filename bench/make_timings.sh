#!/usr/bin/env bash
# Wall time of a warm `make synth` and of `make test`, as recorded in docs/benchmarks.md.
# Usage: bench/make_timings.sh [runs]   (default 3; the median is reported)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_once() {
  local start=$EPOCHREALTIME
  "$@" >/dev/null 2>&1
  awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN {print b - a}'
}

make synth >/dev/null 2>&1 # warm: everything installed, caches filled
synth=$(for _ in $(seq "$runs"); do time_once make synth; done | median)
tests=$(for _ in $(seq "$runs"); do time_once make test; done | median)
printf '| command | median of %s runs (s) |\n|---|---|\n' "$runs"
printf '| `make synth` (warm) | %.1f |\n| `make test` | %.1f |\n' "$synth" "$tests"
