#!/usr/bin/env bash
# The main job from a fresh clone: set-up, an optimised build, then a vectorized CartPole
# rollout (64 envs, random actions) on the embedded defaults. Extra arguments go to
# `paddock env run`, e.g. `scripts/run.sh --steps 1000000 --json`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --locked --release -p paddock
exec target/release/paddock env run configs/cartpole-rollout.toml --steps 100000 "$@"
