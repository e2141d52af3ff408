#!/usr/bin/env bash
# `exp submit` and `exp status` of a 1,000-trial experiment over S3 (moto on loopback):
# wall time and requests, counted from moto's request log. Usage:
#   scripts/bench_exp_scale.sh [PADDOCK_BINARY]      (default: target/release/paddock)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/target/release/paddock}
tmp=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$root/.venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$tmp/moto.log" 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null; rm -rf "$tmp"' EXIT
until curl -s -o /dev/null "http://127.0.0.1:$port/"; do sleep 0.2; done
curl -s -X PUT "http://127.0.0.1:$port/bkt" >/dev/null
export AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true PADDOCK_WORK_DIR=$tmp/work
cat >"$tmp/x.toml" <<EOT
base = "$root/configs/cartpole-ppo.toml"
seeds = 1000
EOT
count() { grep -c 'HTTP/1.1' "$tmp/moto.log" || true; }
measure() {
    local what=$1; shift
    local before after start end
    before=$(count); start=$(date +%s.%N)
    "$@" >/dev/null
    end=$(date +%s.%N); after=$(count)
    printf "%-40s %6.2f s  %5d requests\n" "$what" "$(awk "BEGIN{print $end - $start}")" "$((after - before))"
}
measure "exp submit (1,000 trials)" "$bin" exp submit "$tmp/x.toml" --store s3://bkt/exps
at=s3://bkt/exps/$("$bin" exp plan "$tmp/x.toml" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
measure "exp status (first look on this machine)" "$bin" exp status "$at"
measure "exp status (again)" "$bin" exp status "$at"
rm -rf "$PADDOCK_WORK_DIR/status"
measure "exp status --json (no cache)" "$bin" exp status "$at" --json
