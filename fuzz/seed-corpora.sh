#!/usr/bin/env bash
# Seed the working corpora of the cargo-fuzz targets (directory $1) from the corpora in
# fuzz/corpus/: each target reads a selector byte first (trace: the format; snapshot: 0, keep
# the header as it is; steps: the profile, already in the files), then the input.
set -euo pipefail
out=$1
mkdir -p "$out/trace" "$out/snapshot" "$out/steps"
i=0
for fmt in binary csv oracle damon perf; do
  for f in fuzz/corpus/trace-$fmt/*; do
    { printf "\\$(printf '%03o' "$i")"; cat "$f"; } > "$out/trace/$fmt-$(basename "$f")"
  done
  i=$((i + 1))
done
for f in fuzz/corpus/snapshot/*; do
  { printf '\000'; cat "$f"; } > "$out/snapshot/$(basename "$f")"
done
cp fuzz/corpus/steps/* "$out/steps/"
