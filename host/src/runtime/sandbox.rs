//! The one chokepoint for what a plugin may do: every store is built here, from
//! [`Limits`]. Plugins get no filesystem, network, environment variables or arguments;
//! their clocks are frozen (no clock-based nondeterminism); their random sources are
//! seeded; stdout and stderr are captured and forwarded to the run log with the
//! plugin's name; memory is capped and each call has a deadline.

use crate::log::{Level, RunLog};
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

/// Resource limits of one plugin store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory a plugin may grow to, bytes.
    pub memory_bytes: usize,
    /// Longest a single call into a plugin may run.
    pub call_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { memory_bytes: 256 << 20, call_timeout: Duration::from_secs(10) }
    }
}

/// Most bytes of plugin output kept between two drains; more is dropped and counted.
const OUTPUT_CAP: usize = 1 << 20;

#[derive(Default)]
struct OutputBuf {
    bytes: Vec<u8>,
    dropped: usize,
}

/// A plugin's stdout or stderr: bytes are buffered until the host drains them after the
/// call, so a plugin that prints never blocks or traps.
#[derive(Clone, Default)]
pub struct CapturedOutput {
    buf: Arc<Mutex<OutputBuf>>,
    /// Set when bytes arrive, so the host's drain after every call costs one load when
    /// the plugin printed nothing (the common case, on the hot path).
    pending: Arc<AtomicBool>,
}

impl CapturedOutput {
    fn push(&self, data: &[u8]) {
        self.pending.store(true, Ordering::Release);
        let mut b = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        let room = OUTPUT_CAP.saturating_sub(b.bytes.len());
        let take = data.len().min(room);
        b.bytes.extend_from_slice(&data[..take]);
        b.dropped += data.len() - take;
    }

    /// Takes the complete lines written so far (and, with `all`, the unterminated tail).
    pub fn take_lines(&self, all: bool) -> (Vec<String>, usize) {
        if !self.pending.load(Ordering::Acquire) {
            return (Vec::new(), 0);
        }
        let mut b = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        let end = if all { b.bytes.len() } else { b.bytes.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1) };
        let taken: Vec<u8> = b.bytes.drain(..end).collect();
        let dropped = std::mem::take(&mut b.dropped);
        if b.bytes.is_empty() {
            self.pending.store(false, Ordering::Release);
        }
        let lines = String::from_utf8_lossy(&taken).lines().map(str::to_owned).collect();
        (lines, dropped)
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.push(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }
    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for CapturedOutput {
    fn poll_write(self: std::pin::Pin<&mut Self>, _cx: &mut std::task::Context<'_>, buf: &[u8]) -> std::task::Poll<std::io::Result<usize>> {
        self.push(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: std::pin::Pin<&mut Self>, _cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: std::pin::Pin<&mut Self>, _cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// A wall clock stopped at the Unix epoch.
struct FrozenWallClock;
impl HostWallClock for FrozenWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

/// A monotonic clock that never advances.
struct FrozenMonotonicClock;
impl HostMonotonicClock for FrozenMonotonicClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// A sleep that is over at once: a plugin's clock is frozen, so its time never passes, and a
/// sleep that waited on the host's clock would block the host thread where the call
/// deadline (an epoch interrupt, which acts only in wasm code) cannot end it.
struct OverAtOnce;

#[async_trait::async_trait]
impl wasmtime_wasi::p2::Pollable for OverAtOnce {
    async fn ready(&mut self) {}
}

/// Replaces `wasi:clocks/monotonic-clock`'s `subscribe-duration` and `subscribe-instant` in
/// `linker` (after the WASI interfaces are added) with pollables that are ready at once.
pub(crate) fn frozen_sleeps(linker: &mut wasmtime::component::Linker<PluginState>) -> anyhow::Result<()> {
    use wasmtime::component::Resource;
    use wasmtime_wasi::p2::DynPollable;
    fn ready(table: &mut ResourceTable) -> wasmtime::Result<(Resource<DynPollable>,)> {
        let r = table.push(OverAtOnce)?;
        Ok((wasmtime_wasi::p2::subscribe(table, r)?,))
    }
    linker.allow_shadowing(true);
    let mut clock = linker.instance("wasi:clocks/monotonic-clock@0.2.12")?;
    clock.func_wrap("subscribe-duration", |mut cx, (_,): (u64,)| ready(&mut cx.data_mut().table))?;
    clock.func_wrap("subscribe-instant", |mut cx, (_,): (u64,)| ready(&mut cx.data_mut().table))?;
    linker.allow_shadowing(false);
    Ok(())
}

/// A custom metric a plugin reported through `log.metric`.
#[derive(Clone, Debug, PartialEq)]
pub struct PluginMetric {
    /// Metric name as the plugin gave it.
    pub name: String,
    /// Its value.
    pub value: f64,
}

/// Everything a plugin's store holds.
pub struct PluginState {
    wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limits: StoreLimits,
    pub(crate) name: Arc<str>,
    pub(crate) log: RunLog,
    pub(crate) stdout: CapturedOutput,
    pub(crate) stderr: CapturedOutput,
    /// Metrics reported since the host last took them.
    pub(crate) metrics: Vec<PluginMetric>,
    /// Tensors, modules and optimizers (algorithm plugins only).
    pub(crate) learner: Option<crate::learner::Learner>,
    /// The physics simulations this plugin holds (resource reps, oldest first).
    pub(crate) simulations: Vec<u32>,
    /// Robot files this plugin may load by name (granted by the run config).
    pub(crate) robots: super::Robots,
    /// Images of cameras taken before a world that had stepped was teleported or dropped
    /// (the last view of an episode an env resets), by env and camera name.
    pub(crate) captures: std::collections::HashMap<(u32, String), Vec<f32>>,
    /// The plugin's `paddock:app` section (`paddock:runtime/app.source`).
    pub(crate) app: Option<Arc<[u8]>>,
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl PluginState {
    /// A fresh sandbox for plugin `name`, its random sources seeded with `seed`; `app` is
    /// the plugin's own `paddock:app` section, for a plugin on a language runtime (see
    /// [`super::app_section`]).
    pub fn new(name: Arc<str>, limits: &Limits, seed: u64, log: RunLog, app: Option<Arc<[u8]>>) -> Self {
        let stdout = CapturedOutput::default();
        let stderr = CapturedOutput::default();
        let mut b = WasiCtx::builder();
        b.stdout(stdout.clone())
            .stderr(stderr.clone())
            .wall_clock(FrozenWallClock)
            .monotonic_clock(FrozenMonotonicClock)
            .secure_random(<rand_pcg::Pcg64Mcg as rand::SeedableRng>::seed_from_u64(seed))
            .insecure_random(<rand_pcg::Pcg64Mcg as rand::SeedableRng>::seed_from_u64(seed ^ 0x5EED))
            .insecure_random_seed(u128::from(seed))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        let limits = StoreLimitsBuilder::new()
            .memory_size(limits.memory_bytes)
            .trap_on_grow_failure(true)
            .instances(64)
            .tables(64)
            .memories(8)
            .build();
        PluginState {
            wasi: b.build(),
            table: ResourceTable::new(),
            limits,
            name,
            log,
            stdout,
            stderr,
            metrics: Vec::new(),
            learner: None,
            simulations: Vec::new(),
            robots: Default::default(),
            captures: Default::default(),
            app,
        }
    }

    /// Forwards complete lines of captured output to the run log; returns stderr's lines.
    pub(crate) fn forward_output(&mut self, all: bool) -> Vec<String> {
        let (out, out_dropped) = self.stdout.take_lines(all);
        let (err, err_dropped) = self.stderr.take_lines(all);
        if out.is_empty() && err.is_empty() && out_dropped + err_dropped == 0 {
            return err;
        }
        let source = format!("plugin {}", self.name);
        for l in out.iter().filter(|l| !l.trim().is_empty()) {
            self.log.line(Level::Info, &source, l);
        }
        for l in err.iter().filter(|l| !l.trim().is_empty()) {
            self.log.line(Level::Warn, &source, l);
        }
        if out_dropped + err_dropped > 0 {
            self.log.line(Level::Warn, &source, &format!("{} bytes of output dropped (over 1 MiB per call)", out_dropped + err_dropped));
        }
        err
    }
}
