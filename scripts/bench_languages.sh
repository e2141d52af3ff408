#!/usr/bin/env bash
# Per-language costs of plugins (BENCHMARKS.md, "Plugin languages"): component size, build
# time, and env steps/s of the CartPole env and the shaped CartPole reward in each language,
# with the release binary. Run after scripts/build-plugins.sh; builds to a scratch directory.
#   scripts/bench_languages.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/paddock
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N); printf "%.1f" "$(echo "$t1 - $t0" | bc)"; }
size() { du -k "$1" | cut -f1; }
rate() { "$bin" env run "$@" --steps 50000 --num-envs 8 --seed 3 --json 2>/dev/null | tail -1 | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["env_steps_per_s"]))'; }

echo "| plugin | language | size (KiB) | build (s) | env steps/s (8 envs, 1 instance) |"
echo "|---|---|---:|---:|---:|"
# Rust: the plugin profile (LTO), its dependencies already built.
touch plugins/envs/cartpole/src/lib.rs
t=$(secs cargo build --quiet --profile plugin --target wasm32-wasip2 -p paddock-env-cartpole)
echo "| CartPole env | Rust | $(size target/plugins/cartpole.wasm) | $t | $(rate target/plugins/cartpole.wasm) |"
gen=$scratch/c && mkdir -p "$gen"
t=$(secs bash -c "target/tools/bin/wit-bindgen c wit --world environment --out-dir $gen && clang --target=wasm32-wasi -O2 -mexec-model=reactor -I $gen -I plugins/c/sdk -o $gen/core.wasm plugins/c/cartpole/*.c $gen/environment.c $gen/environment_component_type.o && .venv/bin/wasm-tools component new $gen/core.wasm --adapt wasi_snapshot_preview1=target/tools/wasi_snapshot_preview1.reactor.wasm -o $gen/x.wasm")
echo "| CartPole env | C | $(size target/plugins/cartpole-c.wasm) | $t | $(rate target/plugins/cartpole-c.wasm) |"
t=$(secs .venv/bin/componentize-py -d wit -w environment componentize app -p plugins/python/cartpole -p plugins/python/sdk -o "$scratch/py.wasm")
echo "| CartPole env | Python | $(size target/plugins/cartpole-py.wasm) | $t | $(rate target/plugins/cartpole-py.wasm) |"
t=$(secs node scripts/js/componentize.mjs wit environment plugins/js/cartpole/app.js "$scratch/js.wasm")
echo "| CartPole env | JavaScript | $(size target/plugins/cartpole-js.wasm) | $t | $(rate target/plugins/cartpole-js.wasm) |"
# Rewards: the Rust CartPole env with each language's shaped reward.
for lang in rust:cartpole-shaped c:cartpole-shaped-c python:cartpole-shaped-py javascript:cartpole-shaped-js; do
    name=${lang#*:}
    printf 'seed = 1\n[env]\nplugin = "%s"\nnum_envs = 8\n[reward]\nplugin = "%s"\n' "$PWD/target/plugins/cartpole.wasm" "$PWD/target/plugins/$name.wasm" > "$scratch/r.toml"
    echo "| shaped CartPole reward | ${lang%%:*} | $(size "target/plugins/$name.wasm") | - | $(rate "$scratch/r.toml") |"
done
