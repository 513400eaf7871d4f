#!/usr/bin/env bash
# GitOps service benchmark: what `runner serve` costs at rest and how fast a push reaches a build.
#
#   (a) idle RSS of `runner serve` with one watched pipeline (polling every 30 s), 5 s after its
#       first build: target < 30 MB
#   (b) push-to-first-action latency for a signed webhook: the time from the POST to the Docker
#       `start` event of the first build container, and to the first build command (it prints
#       `date +%s%N`), without and with a warm pool (`--warm-pool 1`, whose idle container was
#       started before the push, so only the first command can be timed): target < 200 ms
#   (c) the same for polling (interval 1 s here), for comparison: bounded by the interval
#
# The baseline column is what the same wait costs without the runner in the way: a container of
# the same image created and started by hand (`docker create` + `docker start`), to its start
# returning, and to its first command (`date +%s%N`).
#
# Usage: benches/service.sh [ROUNDS]   (needs Docker, git, curl, openssl and the runner/test image)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
image=${RUNNER_BENCH_IMAGE:-runner/test}
cargo build -q --release
runner=$(realpath -m "${CARGO_TARGET_DIR:-target}")/release/runner
work=$(mktemp -d)
serve_pid=""
cleanup() {
  if [ -n "$serve_pid" ]; then kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.0f\n", m}'; }

# Bare repositories "acme/hooked" and "acme/polled", served from the directory RUNNER_GITHUB_BASE
# points at, each with a work clone to push from.
for repo in hooked polled; do
  mkdir -p "$work/github/acme" "$work/clone-$repo"
  git init -q --bare "$work/github/acme/$repo.git"
  git -C "$work/clone-$repo" init -q -b main
  printf 'version: 0.2\nphases:\n  build:\n    commands:\n      - echo "first-command-at $(date +%%s%%N)"\n' > "$work/clone-$repo/buildspec.yml"
  git -C "$work/clone-$repo" add .
  git -C "$work/clone-$repo" -c user.name=b -c user.email=b@b commit -qm one
  git -C "$work/clone-$repo" push -q "$work/github/acme/$repo.git" HEAD:main
done
push_commit() { # $1: repo, $2: message; prints the new head
  echo "$2" > "$work/clone-$1/n.txt"
  git -C "$work/clone-$1" add .
  git -C "$work/clone-$1" -c user.name=b -c user.email=b@b commit -qm "$2"
  git -C "$work/clone-$1" push -q "$work/github/acme/$1.git" HEAD:main
  git -C "$work/clone-$1" rev-parse HEAD
}

pipeline() {
  printf 'name: %s\nsource:\n  repo: acme/%s\n  branch: main\ndefaults:\n  image: %s\nstages:\n' "$1" "$1" "$image"
  printf '  - name: source\n    actions:\n      - name: checkout\n        type: source\n        outputs: [Src]\n'
  printf '  - name: build\n    actions:\n      - name: noop\n        type: build\n        inputs: [Src]\n'
}
pipeline hooked > "$work/hooked.yml"
pipeline polled > "$work/polled.yml"
secret=bench-secret
export RUNNER_GITHUB_BASE="file://$work/github" RUNNER_WEBHOOK_SECRET=$secret

start_serve() { # $1: config file, $2: data dir; sets serve_pid and address
  "$runner" --data-dir "$2" serve --config "$1" > "$work/serve.log" 2>&1 &
  serve_pid=$!
  for _ in $(seq 300); do grep -q 'listening on' "$work/serve.log" && break; sleep 0.1; done
  address=$(sed -n 's/.*listening on http:\/\///p' "$work/serve.log" | head -1)
  [ -n "$address" ] || { cat "$work/serve.log" >&2; exit 1; }
}
stop_serve() { kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true; serve_pid=""; }

# (a) one watched pipeline at the default interval; its first poll builds the existing head.
printf 'listen = "127.0.0.1:0"\n[[pipeline]]\nfile = "polled.yml"\nwatch = true\n' > "$work/idle.toml"
start_serve "$work/idle.toml" "$work/idle-data"
for _ in $(seq 600); do grep -Eq '==> execution [^ ]+ (Succeeded|Failed)' "$work/serve.log" && break; sleep 0.1; done
sleep 5
rss_kb=$(awk '/^VmRSS/ {print $2}' "/proc/$serve_pid/status")
stop_serve

write_config() { # $1: warm pool size
  cat > "$work/runner.toml" <<TOML
listen = "127.0.0.1:0"
shutdown_grace = "5s"
warm_pool = $1
[[pipeline]]
file = "hooked.yml"
[[pipeline]]
file = "polled.yml"
watch = true
interval = "${RUNNER_BENCH_POLL:-1s}"
TOML
}

# (b) webhook: POST a signed push, wait for the first container start after it.
first_start_after() { # $1: ns timestamp; prints ns of the first container start of the runner after it
  local since=$(( $1 / 1000000000 - 1 ))
  timeout 60 docker events --since "$since" --filter event=start --filter label=runner.execution \
    --format '{{.TimeNano}}' | while read -r t; do
      if [ "$t" -ge "$1" ]; then echo "$t"; break; fi
    done || true  # docker events ends on SIGPIPE or the timeout
}
first_command_of() { # $1: execution count before the push; prints the ns the next build's command printed
  for _ in $(seq 600); do
    t=$(grep -o 'first-command-at [0-9][0-9]*' "$work/serve.log" | sed -n "$(( $1 + 1 ))p" | cut -d' ' -f2)
    [ -n "$t" ] && { echo "$t"; return; }
    sleep 0.1
  done
  echo "no build command ran after the webhook" >&2; cat "$work/serve.log" >&2; exit 1
}
hook() { # $1: round label; POSTs a signed push of a new commit to acme/hooked; sets sent
  local sha body signature
  sha=$(push_commit hooked "hook-$1")
  body=$(printf '{"ref":"refs/heads/main","before":"0000000000000000000000000000000000000000","after":"%s","created":false,"deleted":false,"repository":{"full_name":"acme/hooked"},"commits":[{"id":"%s","message":"m","added":["n.txt"],"modified":[],"removed":[]}],"head_commit":{"id":"%s","message":"m"}}' "$sha" "$sha" "$sha")
  signature=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$secret" -hex | sed 's/^.* //')
  sent=$(now)
  curl -s -o /dev/null -X POST "http://$address/hooks/github" -H 'X-GitHub-Event: push' \
    -H "X-GitHub-Delivery: bench-$1-$sent" -H "X-Hub-Signature-256: sha256=$signature" \
    -H 'Content-Type: application/json' --data "$body"
}
commands_so_far() { grep -c 'first-command-at [0-9]' "$work/serve.log" || true; }

hook_runs=(); hook_cmd_runs=(); warm_runs=(); poll_runs=(); base_runs=(); base_cmd_runs=()
write_config 0
start_serve "$work/runner.toml" "$work/data"
for _ in $(seq 600); do grep -Eq '==> execution [^ ]+ (Succeeded|Failed)' "$work/serve.log" && break; sleep 0.1; done
for round in $(seq "$rounds"); do
  before=$(commands_so_far)
  first_start_after "$(now)" > "$work/started" &
  watcher=$!
  sleep 0.2  # docker events is listening
  hook "cold-$round"
  wait "$watcher" || true
  [ -s "$work/started" ] || { echo "no container started after the webhook" >&2; cat "$work/serve.log" >&2; exit 1; }
  hook_runs+=("$(( ($(cat "$work/started") - sent) / 1000000 ))")
  hook_cmd_runs+=("$(( ($(first_command_of "$before") - sent) / 1000000 ))")
  sleep 2

  # Baseline: create and start one container of the same image by hand.
  start=$(now); id=$(docker create --label runner.bench=1 "$image" sh -c 'echo "$(date +%s%N)"'); docker start "$id" >/dev/null; end=$(now)
  docker wait "$id" >/dev/null; first=$(docker logs "$id"); docker rm -f "$id" >/dev/null
  base_runs+=("$(( (end - start) / 1000000 ))")
  base_cmd_runs+=("$(( (first - start) / 1000000 ))")
done

# (c) polling: a push to the polled repository, no webhook.
for round in $(seq "$rounds"); do
  sent=$(now)
  first_start_after "$sent" > "$work/started" &
  watcher=$!
  push_commit polled "poll-$round" > /dev/null
  wait "$watcher" || true
  [ -s "$work/started" ] || { echo "no container started after the push" >&2; exit 1; }
  poll_runs+=("$(( ($(cat "$work/started") - sent) / 1000000 ))")
  sleep 3
done

stop_serve

# (b) again, with a warm pool: the same pushes, each build in a container started before it.
write_config 1
start_serve "$work/runner.toml" "$work/data-warm"  # a fresh data dir: the watched pipeline builds its head
for _ in $(seq 600); do [ "$(commands_so_far)" -ge 1 ] && break; sleep 0.1; done
sleep 3  # the first build taught the pool its shape; its idle container is up
for round in $(seq "$rounds"); do
  before=$(commands_so_far)
  hook "warm-$round"
  warm_runs+=("$(( ($(first_command_of "$before") - sent) / 1000000 ))")
  sleep 3
done

hook=$(printf '%s\n' "${hook_runs[@]}" | median)
poll=$(printf '%s\n' "${poll_runs[@]}" | median)
base=$(printf '%s\n' "${base_runs[@]}" | median)
hook_cmd=$(printf '%s\n' "${hook_cmd_runs[@]}" | median)
warm=$(printf '%s\n' "${warm_runs[@]}" | median)
base_cmd=$(printf '%s\n' "${base_cmd_runs[@]}" | median)
echo "runner serve, ${rounds} rounds (median)"
printf '%-48s %10s %10s %8s %s\n' measure runner baseline ratio target
printf '%-48s %8s ms %8s ms %7.2fx %s\n' "(b) webhook push -> first container start" "$hook" "$base" "$(echo "$hook / $base" | bc -l)" "< 200 ms"
printf '%-48s %8s ms %8s ms %7.2fx %s\n' "(b) webhook push -> first build command" "$hook_cmd" "$base_cmd" "$(echo "$hook_cmd / $base_cmd" | bc -l)" "-"
printf '%-48s %8s ms %8s ms %7.2fx %s\n' "(b) same, warm pool (--warm-pool 1)" "$warm" "$base_cmd" "$(echo "$warm / $base_cmd" | bc -l)" "< 200 ms"
printf '%-48s %8s ms %8s ms %7.2fx %s\n' "(c) poll (${RUNNER_BENCH_POLL:-1s}) push -> first container start" "$poll" "$base" "$(echo "$poll / $base" | bc -l)" "<= interval + (b)"
echo "per round, ms: (b) start ${hook_runs[*]}; first command ${hook_cmd_runs[*]}; warm ${warm_runs[*]}; baseline start ${base_runs[*]}, first command ${base_cmd_runs[*]}"
printf '%-48s %8s MB %10s %8s %s\n' "(a) idle RSS, one watched pipeline" "$(echo "scale=1; $rss_kb / 1024" | bc)" "-" "-" "< 30 MB"
