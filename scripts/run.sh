#!/usr/bin/env bash
# The main job from a fresh clone: set-up, an optimised build, then a PPO training run on
# CartPole-v1 (configs/cartpole-ppo.toml: local run dir under runs/, CUDA when libtorch
# sees a GPU, else CPU). Extra arguments go to `paddock train`, e.g.
# `./scripts/run.sh --set seed=3 --json`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --main
cargo build --locked --release -p paddock
exec target/release/paddock train configs/cartpole-ppo.toml "$@"
