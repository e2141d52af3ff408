#!/usr/bin/env bash
# Builds every first-party plugin and test fixture for wasm32-wasip2 and copies the
# components to target/plugins/<name>.wasm (name = crate dir, e.g. cartpole.wasm).
# Plugins of one SDK world are built in one cargo call each: the SDK's world features
# must not be unified across worlds (each carries its own component-type section).
# `--rust-only`: the Rust plugins and fixtures only (scripts/setup.sh --main, the quick start).
set -euo pipefail
cd "$(dirname "$0")/.."
rust_only=0
[ "${1:-}" = --rust-only ] && rust_only=1
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
[ "$rust_only" = 1 ] && exit 0

# Python plugins (plugins/python/<name>/app.py, world named in its `# world:` line) via
# componentize-py from .venv (scripts/setup.sh installs it) → target/plugins/<name>-py.wasm.
# A build takes ~10–25 s, so it is skipped when the inputs (the app's files, wit/ and the
# componentize-py version) hash the same as last time.
componentize_py=.venv/bin/componentize-py
# up_to_date NAME INPUTS_HASH: target/plugins/NAME.wasm exists and was built from these inputs.
up_to_date() { [ -f "$out/$1.wasm" ] && [ "$(cat "$out/.$1.inputs" 2>/dev/null)" = "$2" ]; }
# plugins/python/sdk is the guest SDK (paddock_sdk.py), on every Python plugin's path.
for dir in plugins/python/*/; do
    dir=${dir%/}
    name=$(basename "$dir")
    [ "$name" = sdk ] && continue
    world=$(sed -n 's/^# world: *\([a-z-]*\).*/\1/p' "$dir/app.py" | head -1)
    [ -n "$world" ] || { echo "error: $dir/app.py has no '# world: NAME' line" >&2; exit 1; }
    [ -x "$componentize_py" ] || { echo "error: $componentize_py is missing; run scripts/setup.sh" >&2; exit 1; }
    inputs=$( { "$componentize_py" --version; cat wit/*.wit; find "$dir" plugins/python/sdk -type f -name '*.py' | sort | xargs cat; } | sha256sum | cut -d' ' -f1)
    up_to_date "$name-py" "$inputs" && continue
    echo "building Python plugin $dir (world $world; componentize-py)" >&2
    # The algorithm world uses the unstable `tensor` feature of the contract.
    features=(); [ "$world" = algorithm ] && features=(--features tensor)
    "$componentize_py" -d wit -w "$world" "${features[@]}" componentize app -p "$dir" -p plugins/python/sdk -o "$out/$name-py.wasm" >/dev/null
    echo "$inputs" > "$out/.$name-py.inputs"
done

# JavaScript plugins (plugins/js/<name>/app.js, world named in its `// world:` line) via
# componentize-js (scripts/js, installed by scripts/setup.sh) → target/plugins/<name>-js.wasm,
# skipped when the inputs hash the same as last time (a build takes ~20 s).
# plugins/js/sdk is the guest SDK (paddock_sdk.js), inlined where a plugin imports it.
for dir in plugins/js/*/; do
    dir=${dir%/}
    name=$(basename "$dir")
    [ "$name" = sdk ] && continue
    world=$(sed -n 's|^// world: *\([a-z-]*\).*|\1|p' "$dir/app.js" | head -1)
    [ -n "$world" ] || { echo "error: $dir/app.js has no '// world: NAME' line" >&2; exit 1; }
    [ -d scripts/js/node_modules/@bytecodealliance/componentize-js ] || { echo "error: componentize-js is missing; run scripts/setup.sh" >&2; exit 1; }
    inputs=$( { cat scripts/js/package.json scripts/js/componentize.mjs wit/*.wit; find "$dir" plugins/js/sdk -type f -name '*.js' | sort | xargs cat; } | sha256sum | cut -d' ' -f1)
    up_to_date "$name-js" "$inputs" && continue
    echo "building JavaScript plugin $dir (world $world; componentize-js)" >&2
    node scripts/js/componentize.mjs wit "$world" "$dir/app.js" "$out/$name-js.wasm"
    echo "$inputs" > "$out/.$name-js.inputs"
done

# C plugins (plugins/c/<name>/*.c, world named in a `// world:` line): bindings from
# `wit-bindgen c`, compiled by clang for wasm32-wasi (preview1) with wasi-libc, made a
# component by `wasm-tools component new` with wasmtime's preview1 adapter →
# target/plugins/<name>-c.wasm. Tools: scripts/setup.sh.
# plugins/c/sdk holds the guest SDK header (paddock.h), on every C plugin's include path.
for dir in plugins/c/*/; do
    dir=${dir%/}
    name=$(basename "$dir")
    [ "$name" = sdk ] && continue
    world=$(sed -n 's|^// world: *\([a-z-]*\).*|\1|p' "$dir"/*.c | head -1)
    [ -n "$world" ] || { echo "error: no '// world: NAME' line in $dir/*.c" >&2; exit 1; }
    [ -x target/tools/bin/wit-bindgen ] && [ -x .venv/bin/wasm-tools ] || { echo "error: wit-bindgen or wasm-tools is missing; run scripts/setup.sh" >&2; exit 1; }
    gen=target/c-plugins/$name
    rm -rf "$gen" && mkdir -p "$gen"
    [ -f target/tools/wasi_snapshot_preview1.reactor.wasm ] || cargo run --quiet --release -p paddock-wasi-adapter -- target/tools/wasi_snapshot_preview1.reactor.wasm
    echo "building C plugin $dir (world $world; clang + wasi-libc)" >&2
    target/tools/bin/wit-bindgen c wit --world "$world" --out-dir "$gen" >"$gen/wit-bindgen.log" 2>&1 || { cat "$gen/wit-bindgen.log" >&2; exit 1; }
    c_world=${world//-/_}
    clang --target=wasm32-wasi -O2 -mexec-model=reactor -Wall -Werror -Wno-unused-parameter -I "$gen" -I plugins/c/sdk \
        -o "$gen/core.wasm" "$dir"/*.c "$gen/$c_world.c" "$gen/${c_world}_component_type.o"
    .venv/bin/wasm-tools component new "$gen/core.wasm" \
        --adapt wasi_snapshot_preview1=target/tools/wasi_snapshot_preview1.reactor.wasm -o "$out/$name-c.wasm"
done
ls "$out"/*.wasm | sed 's/^/  /' >&2
