#!/usr/bin/env bash
# Buildspec engine benchmarks, run side by side in one go; prints ratios against a baseline.
#
#   (a) `runner build` of a one-command buildspec   vs  `docker run --rm IMAGE true`
#       target: <= 1.10x
#   (b) 200 trivial commands over four phases with cd/export between them, CodeBuild semantics
#       kept, vs the same lines in one `docker run --rm IMAGE sh -c`
#       target: <= 5 ms of overhead per command
#
# Usage: benches/buildspec.sh [ROUNDS]   (needs Docker and the runner/test image)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-10}
image=${RUNNER_BENCH_IMAGE:-runner/test}
cargo build -q --release
runner=$(realpath -m "${CARGO_TARGET_DIR:-target}")/release/runner
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
data="$work/data"

now() { date +%s%N; }
# time_ms CMD...: median wall time in ms over $rounds runs (after one warm-up).
time_ms() {
  "$@" >/dev/null 2>&1 || { echo "benchmark command failed: $*" >&2; "$@"; exit 1; }
  local samples=()
  for _ in $(seq "$rounds"); do
    local start end
    start=$(now); "$@" >/dev/null 2>&1; end=$(now)
    samples+=($(( (end - start) / 1000 )))
  done
  printf '%s\n' "${samples[@]}" | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f\n", m/1000}'
}

mkdir -p "$work/one"
printf 'version: 0.2\nphases:\n  build:\n    commands:\n      - "true"\n' > "$work/one/buildspec.yml"

mkdir -p "$work/many/d"
{
  echo 'version: 0.2'
  echo 'phases:'
  for phase in install pre_build build post_build; do
    echo "  $phase:"
    echo '    commands:'
    for i in $(seq 1 25); do
      echo "      - cd d && export V$i=$i"
      echo "      - cd .. && X=\$V$i"
    done
  done
} > "$work/many/buildspec.yml"
lines=$(grep -c '^      - ' "$work/many/buildspec.yml")
script=$(sed -n 's/^      - //p' "$work/many/buildspec.yml" | tr '\n' ';')

build() { "$runner" --data-dir "$data" build --no-ca-bundle --image "$image" --source "$1" --project bench; }

a_base=$(time_ms docker run --rm "$image" true)
a_ours=$(time_ms build "$work/one")
b_base=$(time_ms docker run --rm -w /tmp "$image" sh -c "mkdir -p d; $script")
b_ours=$(time_ms build "$work/many")

awk -v ab="$a_base" -v ao="$a_ours" -v bb="$b_base" -v bo="$b_ours" -v n="$lines" -v r="$rounds" 'BEGIN {
  printf "rounds: %d (median wall time)\n", r
  printf "(a) one command:   docker run --rm true %8.1f ms | runner build %8.1f ms | ratio %.2fx (target <= 1.10x)\n", ab, ao, ao/ab
  printf "(b) %d commands:  docker run sh -c      %8.1f ms | runner build %8.1f ms | ratio %.2fx | %.2f ms/command over baseline (target <= 5 ms)\n", n, bb, bo, bo/bb, (bo-bb)/n
}'
