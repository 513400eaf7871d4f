#!/usr/bin/env bash
# Pipeline engine benchmark, side by side in one run; prints ratios against a baseline.
#
#   (a) a DAG of no-op actions (4 ∥ → 2 ∥ → 1, after the source stage) through `runner run`
#       vs the same DAG as a Makefile driving plain `docker run --rm` with `make -j4`
#       target: <= 1.10x on wall time
#   (b) `runner retry` of the last stage vs a `runner run` of a pipeline holding only the source
#       and that stage: target: the retry costs no more than the stage alone (nothing upstream
#       is re-run or re-fetched)
#
# Usage: benches/pipeline.sh [ROUNDS]   (needs Docker and the runner/test image)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
image=${RUNNER_BENCH_IMAGE:-runner/test}
cargo build -q --release
runner=$(realpath -m "${CARGO_TARGET_DIR:-target}")/release/runner
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/src"
printf 'version: 0.2\nphases:\n  build:\n    commands:\n      - "true"\n' > "$work/src/noop.yml"
# Fails the first time in a fresh cache, succeeds once the cache holds the marker: a retry fixes it.
cat > "$work/src/flaky.yml" <<'YAML'
version: 0.2
cache:
  paths: ['/root/.flaky/**/*']
phases:
  build:
    commands:
      - '[ -e /root/.flaky/ok ] || { mkdir -p /root/.flaky && touch /root/.flaky/ok && exit 1; }'
YAML

action() { printf '      - name: %s\n        type: build\n        buildspec: %s\n        inputs: [Src]\n' "$1" "$2"; }
pipeline() {
  local last=$1
  printf 'name: bench\nsource:\n  repo: %s\n  branch: main\ndefaults:\n  image: %s\nstages:\n' "$work/src" "$image"
  printf '  - name: source\n    actions:\n      - name: checkout\n        type: source\n        outputs: [Src]\n'
  printf '  - name: wide\n    actions:\n'; for i in 1 2 3 4; do action "w$i" noop.yml; done
  printf '  - name: narrow\n    actions:\n'; for i in 1 2; do action "n$i" noop.yml; done
  printf '  - name: last\n    actions:\n'; action l1 "$last"
}
pipeline noop.yml > "$work/noop-pipeline.yml"
{
  printf 'name: alone\nsource:\n  repo: %s\n  branch: main\ndefaults:\n  image: %s\nstages:\n' "$work/src" "$image"
  printf '  - name: source\n    actions:\n      - name: checkout\n        type: source\n        outputs: [Src]\n'
  printf '  - name: last\n    actions:\n'; action l1 flaky.yml
} > "$work/alone-pipeline.yml"
pipeline flaky.yml > "$work/flaky-pipeline.yml"

cat > "$work/Makefile" <<MAKE
IMAGE := $image
all: l1
w1 w2 w3 w4:
	@docker run --rm \$(IMAGE) true
n1 n2: w1 w2 w3 w4
	@docker run --rm \$(IMAGE) true
l1: n1 n2
	@docker run --rm \$(IMAGE) true
.PHONY: all w1 w2 w3 w4 n1 n2 l1
MAKE

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.0f\n", m}'; }
time_ms() {
  local start end
  start=$(now); "$@" >/dev/null 2>&1 || { echo "benchmark command failed: $*" >&2; exit 1; }; end=$(now)
  echo $(( (end - start) / 1000000 ))
}

make_runs=(); runner_runs=(); retry_runs=(); stage_runs=()
"$runner" --data-dir "$work/warm" run --pipeline "$work/noop-pipeline.yml" >/dev/null 2>&1
for round in $(seq "$rounds"); do
  make_runs+=("$(time_ms make -s -j4 -C "$work")")
  runner_runs+=("$(time_ms "$runner" --data-dir "$work/data-$round" run --pipeline "$work/noop-pipeline.yml" --parallelism 4)")
  # (b): a first run whose last stage fails, then its retry; the baseline is the stage alone.
  data="$work/retry-$round"
  "$runner" --data-dir "$data" run --pipeline "$work/flaky-pipeline.yml" >/dev/null 2>&1 && { echo "flaky stage did not fail" >&2; exit 1; }
  retry_runs+=("$(time_ms "$runner" --data-dir "$data" retry --pipeline "$work/flaky-pipeline.yml" --stage last)")
  # The same flaky stage, once its cache is warm (the first run fails and fills it), as the retry has.
  "$runner" --data-dir "$work/alone-$round" run --pipeline "$work/alone-pipeline.yml" >/dev/null 2>&1 || true
  stage_runs+=("$(time_ms "$runner" --data-dir "$work/alone-$round" run --pipeline "$work/alone-pipeline.yml")")
done
m=$(printf '%s\n' "${make_runs[@]}" | median)
r=$(printf '%s\n' "${runner_runs[@]}" | median)
t=$(printf '%s\n' "${retry_runs[@]}" | median)
s=$(printf '%s\n' "${stage_runs[@]}" | median)
awk -v m="$m" -v r="$r" -v t="$t" -v s="$s" -v n="$rounds" 'BEGIN {
  printf "rounds: %d (median wall time)\n", n
  printf "(a) 7-action DAG: make -j4 + docker run %6d ms | runner run %6d ms | ratio %.2fx (target <= 1.10x)\n", m, r, r/m
  printf "(b) retry of the last stage:  the stage alone %6d ms | runner retry %6d ms | ratio %.2fx (target <= 1.00x)\n", s, t, t/s
}'
