//! CartPole-v1 stepping: through the Wasm plugin vs the same SDK and dynamics compiled
//! natively, for 1, 64 and 256 envs per call. Throughput is env steps per second.
//!
//!     cargo bench --bench cartpole
//!
//! Gymnasium's figures for the same machine come from scripts/bench_gymnasium.py.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use paddock::envset::{EnvSet, EnvSetOptions};
use paddock::log::RunLog;
use paddock::runtime::{Runtime, RuntimeOptions, World};
use paddock::seed::Stream;
use paddock_env_cartpole::CartPole;
use paddock_sdk::VecEnv;
use std::path::PathBuf;

/// A fixed pseudo-random action pattern, so action generation costs nothing.
fn actions(n: usize) -> Vec<f32> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x & 1) as f32
        })
        .collect()
}

const PATTERN: usize = 4096;

fn bench(c: &mut Criterion) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let plugin_path = root.join("target/plugins/cartpole.wasm");
    let runtime = Runtime::new(RuntimeOptions { log: RunLog::discard(), ..RuntimeOptions::default() }).expect("runtime");
    let plugin = runtime.load(&plugin_path, World::Environment).expect("build the plugins first: scripts/build-plugins.sh");

    let mut group = c.benchmark_group("cartpole");
    for n in [1usize, 64, 256] {
        let pattern = actions(PATTERN * n);
        group.throughput(Throughput::Elements(n as u64));

        let seeds: Vec<u64> = (0..n as u64).collect();
        let mut native = VecEnv::<CartPole>::new(&[], &seeds).expect("native");
        native.reset_all().expect("reset");
        let mut t = 0;
        group.bench_function(BenchmarkId::new("native", n), |b| {
            b.iter(|| {
                let a = &pattern[(t % PATTERN) * n..(t % PATTERN + 1) * n];
                t += 1;
                native.step_all(a).expect("step")
            })
        });

        let opts = EnvSetOptions { num_envs: n, workers: 1, seed: 0, stream: Stream::Env, params: Vec::new(), robots: Default::default() };
        let mut set = EnvSet::new(&plugin, &opts).expect("env set");
        set.reset().expect("reset");
        let mut t = 0;
        group.bench_function(BenchmarkId::new("plugin", n), |b| {
            b.iter(|| {
                let a = &pattern[(t % PATTERN) * n..(t % PATTERN + 1) * n];
                t += 1;
                set.step(a).expect("step")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
