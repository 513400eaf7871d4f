#!/usr/bin/env bash
# Starts a moto server for the `aws-tests` feature and prints the environment that points the AWS
# SDK at it, for `eval "$(bash .ci/moto.sh)"`.
#
# Installs moto[server] and the AWS CLI from PyPI into a venv on first use
# (RUNNER_CI_VENV, default /var/cache/runner-ci/venv), starts `moto_server` on 127.0.0.1:MOTO_PORT
# (default 5055) unless something already answers there, and waits until it does. Progress goes to
# stderr; stdout carries only the `export` line.
set -euo pipefail
say() { printf '==> %s\n' "$*" >&2; }

venv="${RUNNER_CI_VENV:-/var/cache/runner-ci/venv}"
port="${MOTO_PORT:-5055}"
endpoint="http://127.0.0.1:${port}"
log="${MOTO_LOG:-${TMPDIR:-/tmp}/runner-moto-${port}.log}"

# A bare TCP connect (bash /dev/tcp): no curl needed on a fresh machine.
answers() { (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null; }

# Behind a TLS-intercepting proxy pip must trust the host's bundle.
if [ -z "${PIP_CERT:-}" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  export PIP_CERT=/etc/ssl/certs/ca-certificates.crt
fi

if [ ! -x "${venv}/bin/moto_server" ] || [ ! -x "${venv}/bin/aws" ]; then
  say "installing moto[server] and awscli into ${venv}"
  mkdir -p "$(dirname "$venv")"
  [ -x "${venv}/bin/python" ] || python3 -m venv "$venv"
  "${venv}/bin/pip" install --quiet --disable-pip-version-check 'moto[server]' awscli >&2
fi

if ! answers; then
  say "starting moto_server on ${endpoint} (log: ${log})"
  # setsid + nohup: the server outlives this script and the shell that evals its output.
  setsid nohup "${venv}/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 </dev/null &
  for _ in $(seq 1 60); do answers && break; sleep 0.5; done
  answers || { say "moto_server did not answer on ${endpoint}"; tail -30 "$log" >&2; exit 1; }
fi

echo "export AWS_ENDPOINT_URL=${endpoint} AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1"
