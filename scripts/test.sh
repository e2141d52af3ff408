#!/usr/bin/env bash
# The whole test suite from a fresh clone: set-up, formatting, lints (clippy; warnings
# are errors), then every test (unit, Gymnasium replay, hostile plugins, env set, CLI end
# to end) against the real plugins and the real binary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --all --check
# Clippy (warnings are errors) lints the workspace's crates while they build for the tests:
# clippy-driver as the workspace's rustc wrapper with CLIPPY_ARGS, cargo-clippy's own
# mechanism. The dependencies are then compiled once, not once more in check mode for a
# separate `cargo clippy` (8 minutes on 2 cores).
RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver)"
export RUSTC_WORKSPACE_WRAPPER
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
# The fleet (EC2 and SQS clients, feature `fleet`) is built and tested here; the quick
# start (scripts/run.sh) builds without it.
cargo test --locked -p paddock -p paddock-sdk --features paddock/fleet --all-targets --no-run
cargo test --locked -p paddock -p paddock-sdk --features paddock/fleet
# The SDK's parameter, env and kinematics helpers exist only with a world's feature
# (`physics` includes `env`).
cargo test --locked -p paddock-sdk --features physics --lib
