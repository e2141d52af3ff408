//! Replay buffer throughput at 1M transitions (the off-policy issue's figure): sampling a
//! batch of 256 uniformly and prioritized (sum-tree, with the importance weights), and the
//! priority update that follows each prioritized sample, on the CPU learner.
//! Observations of 17 floats and actions of 6 (Hopper/HalfCheetah-sized).
//!
//!     cargo bench --bench replay
//!
//! The peer figure (Stable-Baselines3's ReplayBuffer.sample at the same size) comes from
//! scripts/bench_sb3_offpolicy.py --replay.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use paddock::learner::Replay;
use paddock::learner::spec::{Dtype, PrioritizedSpec, ReplaySpec};
use tch::{Device, Kind, Tensor};

const CAPACITY: u32 = 1_000_000;
const BATCH: usize = 256;

fn filled(prioritized: bool) -> Replay {
    let spec = ReplaySpec {
        capacity: CAPACITY,
        num_envs: 1000,
        observation_len: 17,
        action_len: 6,
        action_dtype: Dtype::Float32,
        n_step: 1,
        gamma: 0.99,
        prioritized: prioritized.then_some(PrioritizedSpec {
            alpha: 0.6,
            beta: 0.4,
            beta_final: 1.0,
            beta_samples: 100_000,
            epsilon: 1e-6,
        }),
        hindsight: None,
    };
    let mut r = Replay::new("bench", &spec, Device::Cpu, Ok(())).expect("replay");
    let f = (Kind::Float, Device::Cpu);
    for _ in 0..(CAPACITY / 1000) {
        let obs = Tensor::randn([1000, 17], f);
        let no = Tensor::zeros([1000], (Kind::Bool, Device::Cpu));
        r.add(&obs, &Tensor::randn([1000, 6], f), &Tensor::randn([1000], f), &obs, &no, &no).expect("add");
    }
    r
}

fn bench(c: &mut Criterion) {
    tch::set_num_threads(1);
    let mut group = c.benchmark_group("replay-1M");
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut uniform = filled(false);
    group.bench_function("sample-uniform-256", |b| b.iter(|| uniform.sample(BATCH, None).expect("sample")));
    let mut per = filled(true);
    group.bench_function("sample-prioritized-256", |b| b.iter(|| per.sample(BATCH, None).expect("sample")));
    group.bench_function("sample+update-prioritized-256", |b| {
        b.iter(|| {
            let s = per.sample(BATCH, None).expect("sample");
            per.update_priorities(&s.indices, &Tensor::rand([BATCH as i64], (Kind::Float, Device::Cpu))).expect("update");
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
