#!/usr/bin/env bash
# The whole test suite from a fresh clone: set-up, formatting, lints (clippy; warnings
# are errors), then every test (unit, Gymnasium replay, hostile plugins, env set, CLI end
# to end) against the real plugins and the real binary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --all --check
cargo clippy --locked -p paddock -p paddock-sdk --all-targets -- -D warnings
cargo test --locked -p paddock -p paddock-sdk
# The SDK's parameter and env helpers exist only with a world's feature.
cargo test --locked -p paddock-sdk --features env --lib
