//! Seeds derived from one run seed, so the same seed gives the same trajectories whatever
//! the number of workers.

/// SplitMix64's finaliser: a bijective mix of 64 bits.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What a derived seed is for; different streams never share seeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Training envs.
    Env = 1,
    /// Evaluation envs.
    EvalEnv = 2,
    /// Random actions of `env run`.
    Actions = 3,
    /// The plugins' WASI random sources.
    PluginRandom = 4,
}

/// The seed of item `index` of `stream` under `run_seed`.
pub fn derive(run_seed: u64, stream: Stream, index: u64) -> u64 {
    mix64(mix64(run_seed ^ mix64(stream as u64)).wrapping_add(index.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_seeds_are_distinct_and_stable() {
        let a: Vec<u64> = (0..1000).map(|i| derive(42, Stream::Env, i)).collect();
        let mut b = a.clone();
        b.sort_unstable();
        b.dedup();
        assert_eq!(b.len(), a.len());
        assert_ne!(derive(42, Stream::Env, 0), derive(42, Stream::EvalEnv, 0));
        assert_ne!(derive(42, Stream::Env, 0), derive(43, Stream::Env, 0));
        assert_eq!(derive(42, Stream::Env, 7), a[7]);
    }
}
