#!/usr/bin/env bash
# The learner's GPU checks, for a machine that has a GPU and libtorch but no Rust toolchain
# (a lent device machine): the ignored CUDA tests, the PPO update benchmark on CPU and GPU
# beside SB3's, and the CartPole PPO / Pendulum SAC training figures beside SB3's.
#
# Build here, on the machine with the toolchain:
#     scripts/gpu-checks.sh bundle        # writes .gpu/ (binaries, plugins, SB3 wheels)
# then, on the GPU machine, from a copy of the repository holding .gpu/:
#     scripts/gpu-checks.sh tests bench   # and/or: train
# Logs go to $OUT (or ./gpu-out). LIBTORCH_LIB names the GPU machine's libtorch directory
# (default: the torch of /opt/torch/.venv).
set -euo pipefail
cd "$(dirname "$0")/.."

bundle() {
    local deps=target/release/deps
    cargo build --release --locked -p paddock --bin paddock
    cargo test --release --locked -p paddock --test cuda --no-run
    cargo bench --locked -p paddock --bench ppo_update --no-run
    scripts/build-plugins.sh
    rm -rf .gpu && mkdir -p .gpu/plugins .gpu/whl
    pack() { strip -o ".gpu/$2" "$1" && xz -T0 -6 ".gpu/$2"; }
    pack target/release/paddock paddock
    pack "$(ls -t $deps/cuda-* | grep -v '\.d$' | head -1)" cuda-tests
    pack "$(ls -t $deps/ppo_update-* | grep -v '\.d$' | head -1)" ppo-update-bench
    for p in cartpole pendulum ppo a2c sac td3 dqn; do cp "target/plugins/$p.wasm" .gpu/plugins/; done
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux2014_x86_64 -d .gpu/whl stable-baselines3==2.7.0 gymnasium==1.2.2 farama-notifications==0.0.4
    du -sh .gpu
}

# The test and bench binaries name this checkout's absolute path (CARGO_MANIFEST_DIR):
# on the GPU machine that path is made to point here.
unpack() {
    local built_root
    mkdir -p target/release target/plugins
    for b in paddock cuda-tests ppo-update-bench; do
        xz -dc ".gpu/$b.xz" > "target/release/$b" # always: a warm machine may hold an older bundle's
        chmod +x "target/release/$b"
    done
    cp .gpu/plugins/*.wasm target/plugins/
    built_root=$(cat .gpu/root)
    if [ "$(realpath "$built_root" 2>/dev/null)" != "$(realpath .)" ]; then
        mkdir -p "$(dirname "$built_root")"
        ln -sfn "$(realpath .)" "$built_root"
    fi
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl
    export PYTHONPATH=/tmp/site
}

phase_tests() {
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    target/release/cuda-tests --ignored --test-threads 1 2>&1 | tee "$out/cuda-tests.log"
}

# PPO update at batch 4096: Paddock's (criterion) and SB3's, on the CPU (THREADS libtorch
# threads, default 4: a 16-core VM oversubscribes at its default of 16) and on the GPU.
phase_bench() {
    local threads=${THREADS:-4}
    PADDOCK_BENCH_THREADS=$threads target/release/ppo-update-bench --bench 2>&1 | grep -E "^ppo-update|time:|thrpt:" | tee "$out/ppo-update.log"
    python3 scripts/bench_sb3_update.py --devices cpu cuda --threads "$threads" --repeats 10 2>&1 | grep -v -i warn | tee "$out/sb3-update.jsonl"
}

phase_train() {
    local paddock="timeout 300 target/release/paddock train"
    {
        echo "== CartPole PPO to 475, 1 libtorch thread each, CPU (configs/cartpole-ppo.toml; SB3 with the zoo's settings)"
        for s in 1 2 3; do
            $paddock configs/cartpole-ppo.toml --set seed=$s --set algorithm.device=cpu --set store=/tmp/runs --json | tail -1
        done
        timeout 300 python3 scripts/bench_sb3.py --seeds 1 2 3
        echo "== Pendulum SAC, seed 1, on the GPU: Paddock 20k steps, SB3 5k steps (steps/s)"
        $paddock configs/pendulum-sac.toml --set seed=1 --set algorithm.device=cuda --set store=/tmp/runs --json | tail -1
        timeout 300 python3 scripts/bench_sb3_offpolicy.py --algo sac --device cuda --steps 5000
        echo "== Pendulum SAC, seed 1, 5k steps on the CPU, 4 threads each"
        $paddock configs/pendulum-sac.toml --set seed=1 --set algorithm.device=cpu --set train.threads=4 \
            --set total_steps=5000 --set train.eval_every=5000 --set store=/tmp/runs --json | tail -1
        timeout 300 python3 scripts/bench_sb3_offpolicy.py --algo sac --device cpu --threads 4 --steps 5000
    } 2>&1 | grep -v -i warn | tee "$out/train.log"
}

out=${OUT:-gpu-out}
mkdir -p "$out"
[ $# -gt 0 ] || set -- tests bench train
if [ "$1" = bundle ]; then
    bundle
    realpath . > .gpu/root
    exit 0
fi
export LD_LIBRARY_PATH=${LIBTORCH_LIB:-$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__) + "/lib")')}:${LD_LIBRARY_PATH:-}
unpack
for phase in "$@"; do
    echo "### $phase" >&2
    "phase_$phase"
done
