//! `exp run --local`: the runner that starts N `paddock worker` processes on this machine
//! and follows the experiment until every trial is final.
//!
//! The workers are the runner's children and live only as long as it does: each is
//! started in a process group of its own with a parent-death signal (SIGTERM when the
//! runner dies, even by SIGKILL), and a SIGINT or SIGTERM to the runner (a terminal's
//! Ctrl-C reaches the runner alone) is passed on to every worker once, which stops at its
//! next update with a checkpoint and gives its trial back; the runner waits for them.
//! A worker that ends while trials remain is replaced (up to 4 × N times). The store being
//! away is reported and waited out for as long as the workers themselves wait
//! (`store_lost_after`), never fatal before.

use super::trial::TrialState;
use super::worker;
use crate::format::experiment::Plan;
use crate::store::{Location, Objects};
use anyhow::Context;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How the runner runs.
#[derive(Clone, Debug)]
pub struct LocalOptions {
    /// Worker processes at once.
    pub jobs: usize,
    /// Hand trial ids out over the experiment's SQS queue.
    pub queue: bool,
    /// The `paddock` binary to start workers from.
    pub exe: PathBuf,
    /// How long the store may be away before the runner gives up (the workers' own window).
    pub store_lost_after: Duration,
}

/// What the runner tells its caller as it goes.
#[derive(Debug)]
pub enum LocalEvent<'a> {
    /// The trials' states changed (counted by state).
    States(&'a [(String, TrialState)]),
    /// A worker left because its disk is full (it is not replaced).
    DiskFull,
    /// The store did not answer a look; the runner waits and looks again.
    StoreAway {
        /// Since when, seconds.
        for_s: f64,
        /// Why.
        error: String,
    },
    /// The store answers again.
    StoreBack,
    /// A stop signal was passed on to the workers.
    Stopping(&'static str),
}

/// How the runner ended.
#[derive(Debug)]
pub struct LocalEnd {
    /// The trials' states at the end (as last read).
    pub states: Vec<(String, TrialState)>,
    /// A signal stopped it (the exit status it asks for: 130 or 143).
    pub stopped: Option<u8>,
    /// It gave up on the store: away longer than `store_lost_after`, or it lost the
    /// experiment's state (a worker exited with [`worker::EXIT_STORE_LOST`]) or refuses
    /// the credentials.
    pub store_lost: Option<String>,
    /// Whether that was for good (state lost, credentials refused), not an outage.
    pub fatal: bool,
}

/// Starts the worker processes and follows experiment `plan` at `at` until every trial is
/// final, the runner is stopped, or the store has been away too long (see the module docs).
pub fn run(
    plan: &Plan,
    at: &Location,
    objects: &dyn Objects,
    opts: &LocalOptions,
    on: &mut dyn FnMut(LocalEvent),
) -> anyhow::Result<LocalEnd> {
    let spawn = || -> anyhow::Result<Child> {
        let mut cmd = Command::new(&opts.exe);
        cmd.args(["worker", &at.to_string()])
            .args(if opts.queue { &["--queue"][..] } else { &[] })
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        die_with_parent(&mut cmd);
        cmd.spawn().with_context(|| format!("failed to start a worker ({})", opts.exe.display()))
    };
    let mut workers: Vec<Child> = (0..opts.jobs).map(|_| spawn()).collect::<anyhow::Result<_>>()?;
    let mut restarts = 0;
    let mut last: Vec<(String, TrialState)> = Vec::new();
    let mut last_look = Instant::now() - Duration::from_secs(60);
    let mut away: Option<Instant> = None;
    let mut stopping = false;
    let mut store_lost = None;
    let mut fatal = false;
    // Each look: one listing of the index, and a GET per running or changed trial.
    let mut overview = crate::format::index::Overview::default();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        if !stopping && let Some(why) = crate::run::interrupt::requested() {
            stopping = true;
            on(LocalEvent::Stopping(why));
            for w in &workers {
                signal(w, libc::SIGTERM);
            }
        }
        // Workers are checked often; the trials' states every 2 s, or when a worker ended:
        // one listing of the index and a GET per running trial, at most (1 + jobs) / 2
        // requests a second however many trials there are.
        let ended = workers.iter_mut().any(|w| matches!(w.try_wait(), Ok(Some(_))));
        let mut all_final = false;
        if last_look.elapsed() >= Duration::from_secs(2) || ended {
            last_look = Instant::now();
            match overview.read(objects, plan) {
                Ok(states) => {
                    if away.take().is_some() {
                        on(LocalEvent::StoreBack);
                    }
                    all_final = crate::format::experiment::all_final(&states);
                    if states.iter().map(|(_, s)| s.status).ne(last.iter().map(|(_, s)| s.status)) {
                        on(LocalEvent::States(&states));
                    }
                    last = states;
                }
                Err(e) if worker::fatal(&e).is_some() => {
                    // Waiting does not bring lost state back: stop now (the workers find the
                    // same and keep their working copies).
                    fatal = true;
                    if store_lost.is_none() {
                        store_lost = worker::fatal(&e);
                        stopping = true;
                        for w in &workers {
                            signal(w, libc::SIGTERM);
                        }
                    }
                }
                Err(e) => {
                    let since = away.get_or_insert_with(Instant::now);
                    let for_s = since.elapsed().as_secs_f64();
                    on(LocalEvent::StoreAway { for_s, error: format!("{e:#}") });
                    if since.elapsed() >= opts.store_lost_after && store_lost.is_none() {
                        store_lost = Some(format!("{e:#}"));
                        stopping = true;
                        for w in &workers {
                            signal(w, libc::SIGTERM);
                        }
                    }
                }
            }
        }
        let mut alive = Vec::new();
        for mut w in workers.drain(..) {
            match w.try_wait()? {
                None => alive.push(w),
                // It left because the store lost the experiment or refuses the credentials:
                // another worker would find the same.
                // Its disk is full: a worker in its place would find the same disk.
                Some(st) if st.code() == Some(worker::EXIT_DISK_FULL) => {
                    on(LocalEvent::DiskFull);
                }
                Some(st) if matches!(st.code(), Some(worker::EXIT_STORE_LOST | worker::EXIT_CREDENTIALS)) => {
                    fatal = true;
                    if store_lost.is_none() {
                        store_lost = Some(if st.code() == Some(worker::EXIT_CREDENTIALS) {
                            "a worker's credentials were refused by the store (see its message above)".into()
                        } else {
                            "a worker found that the store lost the experiment's state (see its message above)".into()
                        });
                    }
                    stopping = true;
                }
                // A worker that ended while trials remain is replaced (its trial's lease runs
                // out and another takes it over), unless the runner is stopping.
                Some(_) if !all_final && !stopping && restarts < 4 * opts.jobs => {
                    restarts += 1;
                    alive.push(spawn()?);
                }
                Some(_) => {}
            }
        }
        workers = alive;
        if workers.is_empty() {
            break;
        }
    }
    if let Ok(states) = crate::format::experiment::states(objects, plan) {
        last = states;
    }
    Ok(LocalEnd { states: last, stopped: crate::run::interrupt::exit_status(), store_lost, fatal })
}

/// Sends `sig` to a worker (one that has ended already is fine).
fn signal(w: &Child, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(w.id()) {
        // SAFETY: kill(2) with a pid this process started and has not reaped yet.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// Has the child receive SIGTERM when this process dies, however it dies.
fn die_with_parent(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id();
        // SAFETY: runs in the forked child before exec; prctl and getppid are
        // async-signal-safe and touch no memory of the parent.
        unsafe {
            cmd.pre_exec(move || {
                // A group of its own: a terminal's Ctrl-C reaches the runner alone, which
                // passes one SIGTERM on (a second signal would end a worker at once).
                if libc::setpgid(0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent died before the prctl: end now.
                if libc::getppid() as u32 != parent {
                    libc::_exit(143);
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}
