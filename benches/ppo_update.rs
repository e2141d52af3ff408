//! One PPO update at a rollout batch of 4096 transitions (16 CartPole envs × 256 steps),
//! on the CPU and, when libtorch sees one, on the GPU: the learner issue's CPU-vs-GPU
//! figure. The real PPO plugin (`target/plugins/ppo.wasm`) runs its real `update`: GAE,
//! advantage normalisation and 10 epochs of clipped-objective gradient steps, with one
//! minibatch of 4096 or sixteen of 256, for the zoo's [64, 64] networks and for [256, 256].
//! Only `update` is timed; the rollout is refilled (random observations through the
//! plugin's own `act`) between timed updates, and the GPU is synchronised around each.
//!
//!     cargo bench --bench ppo_update
//!
//! `PADDOCK_BENCH_DEVICES=cpu` (or `cuda`, `cuda:N`, `auto`) measures one device only; `PADDOCK_BENCH_THREADS`
//! sets libtorch's CPU threads (default: all cores).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use paddock::config::to_params;
use paddock::envset::{EnvSet, EnvSetOptions};
use paddock::learner::{DeviceRequest, Learner, resolve_device};
use paddock::log::RunLog;
use paddock::runtime::{AlgorithmInstance, Runtime, RuntimeOptions, World};
use paddock::seed::Stream;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tch::{Device, Kind, Tensor};

const NUM_ENVS: i64 = 16;
const N_STEPS: i64 = 256;

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// The devices `PADDOCK_BENCH_DEVICES` names (as a config's `device` would), those libtorch
/// cannot provide left out with a message.
fn devices() -> Vec<Device> {
    let wanted = std::env::var("PADDOCK_BENCH_DEVICES").unwrap_or_else(|_| "cpu,cuda".into());
    let mut out = Vec::new();
    for name in wanted.split(',') {
        let request: DeviceRequest = name.trim().parse().unwrap_or_else(|e| panic!("PADDOCK_BENCH_DEVICES: {e}"));
        match resolve_device(request) {
            Ok(d) if !out.contains(&d) => out.push(d),
            Ok(_) => {}
            Err(e) => eprintln!("ppo_update: {e}; not measured"),
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    if let Some(n) = std::env::var("PADDOCK_BENCH_THREADS").ok().and_then(|s| s.parse().ok()) {
        tch::set_num_threads(n);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let runtime = Runtime::new(RuntimeOptions { log: RunLog::discard(), ..RuntimeOptions::default() }).expect("runtime");
    let load = |name: &str, world| {
        runtime.load(root.join("target/plugins").join(name), world).expect("build the plugins first: scripts/build-plugins.sh")
    };
    let (env_plugin, ppo) = (load("cartpole.wasm", World::Environment), load("ppo.wasm", World::Algorithm));
    let opts = EnvSetOptions {
        num_envs: NUM_ENVS as usize,
        workers: 1,
        seed: 0,
        stream: Stream::Env,
        params: Vec::new(),
        robots: Default::default(),
    };
    let spec = EnvSet::new(&env_plugin, &opts).expect("env set").spec().clone();

    let mut group = c.benchmark_group("ppo-update-4096");
    group.sample_size(10).measurement_time(Duration::from_secs(8)).throughput(Throughput::Elements((NUM_ENVS * N_STEPS) as u64));
    for device in devices() {
        for (hidden, minibatch) in [(64, 4096), (64, 256), (256, 4096), (256, 256)] {
            let params: toml::Table =
                toml::from_str(&format!("n-steps = {N_STEPS}\nn-epochs = 10\nminibatch-size = {minibatch}\nhidden = [{hidden}, {hidden}]"))
                    .expect("params");
            let params = to_params("algorithm.params", &params).expect("params");
            let mut algo = AlgorithmInstance::new(&ppo, 7, Learner::new(device)).expect("instance");
            algo.init(&spec, NUM_ENVS as u32, &params).expect("init");
            let f = (Kind::Float, device);
            let no = Tensor::zeros([NUM_ENVS], (Kind::Bool, device));
            let fill = |algo: &mut AlgorithmInstance| {
                let mut obs = Tensor::randn([NUM_ENVS, 4], f);
                while !algo.wants_update().expect("wants-update") {
                    let actions = algo.act(&obs, false).expect("act");
                    let next = Tensor::randn([NUM_ENVS, 4], f);
                    algo.observe(&obs, &actions, &Tensor::ones([NUM_ENVS], f), &next, &no, &no).expect("observe");
                    obs = next;
                }
            };
            let device_name = match device {
                Device::Cuda(i) => format!("cuda:{i}"),
                _ => "cpu".into(),
            };
            let id = BenchmarkId::new(device_name, format!("[{hidden},{hidden}]/minibatch-{minibatch}"));
            group.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        fill(&mut algo);
                        sync(device);
                        let t = Instant::now();
                        algo.update().expect("update");
                        sync(device);
                        total += t.elapsed();
                    }
                    total
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
