#!/usr/bin/env bash
# S3 artifact store benchmark, side by side in one run; prints ratios against the AWS CLI.
#
#   A random file (256 MiB by default) through the runner's S3 store with SSE-KMS
#   (`examples/s3_store.rs`: `S3ArtifactStore::put` / `get`, the path every pipeline artifact
#   takes) vs `aws s3 cp --sse aws:kms --sse-kms-key-id KEY` against the same moto and key:
#   (a) upload, (b) download. Rounds are interleaved (the order flips every round); medians.
#   target: <= 1.00x on both (not slower than the AWS CLI)
#
# Usage: benches/s3_store.sh [ROUNDS] [MIB]   (starts moto through .ci/moto.sh when needed)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
mib=${2:-256}
eval "$(bash .ci/moto.sh)"
aws=${RUNNER_CI_VENV:-/var/cache/runner-ci/venv}/bin/aws
cargo build -q --release --example s3_store
target_dir=${CARGO_TARGET_DIR:-target}
[[ $target_dir == /* ]] || target_dir=$(pwd)/$target_dir
store=$target_dir/release/examples/s3_store
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

head -c $((mib * 1024 * 1024)) /dev/urandom > "$work/blob"
bucket=runner-bench-$(date +%s%N)
"$aws" s3api create-bucket --bucket "$bucket" >/dev/null
# moto keeps objects in memory: the bucket goes when the bench ends.
trap '"$aws" s3 rb --force "s3://$bucket" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
key=$("$aws" kms create-key --query KeyMetadata.KeyId --output text)

ours_put() { "$store" "$bucket" "$key" put "$work/blob"; }
ours_get() { rm -f "$work/ours.out"; "$store" "$bucket" "$key" get "$digest" "$size" "$work/ours.out"; }
cli_put() { "$aws" s3 cp --quiet --sse aws:kms --sse-kms-key-id "$key" "$work/blob" "s3://$bucket/cli/blob"; }
cli_get() { rm -f "$work/cli.out"; "$aws" s3 cp --quiet "s3://$bucket/cli/blob" "$work/cli.out"; }

# Warm-up, and a check that both round trips give the file back.
read -r digest size < <(ours_put)
ours_get
cli_put
cli_get
cmp -s "$work/blob" "$work/ours.out" || { echo "the runner's store returned other bytes" >&2; exit 1; }
cmp -s "$work/blob" "$work/cli.out" || { echo "the AWS CLI returned other bytes" >&2; exit 1; }

now() { date +%s%N; }
# sample NAME CMD...: appends CMD's wall time in ms to $work/NAME.
sample() {
  local name=$1 start end
  shift
  start=$(now); "$@" >/dev/null; end=$(now)
  echo $(( (end - start) / 1000000 )) >> "$work/$name"
}
for round in $(seq "$rounds"); do
  if (( round % 2 )); then
    sample ours_put ours_put; sample cli_put cli_put; sample ours_get ours_get; sample cli_get cli_get
  else
    sample cli_put cli_put; sample ours_put ours_put; sample cli_get cli_get; sample ours_get ours_get
  fi
done

median() { sort -n "$work/$1" | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.0f\n", m}'; }
awk -v op="$(median ours_put)" -v cp="$(median cli_put)" -v og="$(median ours_get)" -v cg="$(median cli_get)" \
  -v r="$rounds" -v mib="$mib" 'BEGIN {
  printf "rounds: %d (median wall time), %d MiB random, SSE-KMS, moto\n", r, mib
  printf "(a) upload:   aws s3 cp %7.0f ms (%6.1f MiB/s) | runner store %7.0f ms (%6.1f MiB/s) | ratio %.2fx (target <= 1.00x)\n", cp, mib*1000/cp, op, mib*1000/op, op/cp
  printf "(b) download: aws s3 cp %7.0f ms (%6.1f MiB/s) | runner store %7.0f ms (%6.1f MiB/s) | ratio %.2fx (target <= 1.00x)\n", cg, mib*1000/cg, og, mib*1000/og, og/cg
}'
