#!/usr/bin/env bash
# Builds every first-party plugin and test fixture for wasm32-wasip2 and copies the
# components to target/plugins/<name>.wasm (name = crate dir, e.g. cartpole.wasm).
# Plugins of one SDK world are built in one cargo call each: the SDK's world features
# must not be unified across worlds (each carries its own component-type section).
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/plugins
mkdir -p "$out"

build_group() { # $1 = group label, rest = crate dirs
    local label=$1; shift
    [ $# -gt 0 ] || return 0
    local pkgs=()
    for dir in "$@"; do
        pkgs+=(-p "$(sed -n 's/^name = "\(.*\)"/\1/p' "$dir/Cargo.toml" | head -1)")
    done
    echo "building $label plugins: $*" >&2
    cargo build --quiet --profile plugin --target wasm32-wasip2 "${pkgs[@]}"
    for dir in "$@"; do
        local pkg crate
        pkg=$(sed -n 's/^name = "\(.*\)"/\1/p' "$dir/Cargo.toml" | head -1)
        crate=${pkg//-/_}
        cp "target/wasm32-wasip2/plugin/$crate.wasm" "$out/$(basename "$dir").wasm"
    done
}

shopt -s nullglob
# Group crates by the SDK world feature they enable (`features = ["env"]`, …); crates
# without the SDK are built one by one.
declare -A groups=()
standalone=()
for dir in plugins/envs/*/ plugins/rewards/*/ plugins/algorithms/*/ plugins/fixtures/*/; do
    dir=${dir%/}
    world=$(sed -n 's/^paddock-sdk = .*features = \["\([a-z]*\)"\].*/\1/p' "$dir/Cargo.toml")
    if [ -n "$world" ]; then groups[$world]+="$dir "; else standalone+=("$dir"); fi
done
for world in "${!groups[@]}"; do
    # shellcheck disable=SC2086 # word splitting of the dir list is intended
    build_group "$world" ${groups[$world]}
done
for dir in "${standalone[@]}"; do build_group standalone "$dir"; done
ls "$out"/*.wasm | sed 's/^/  /' >&2
