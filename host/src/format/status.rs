//! A run's live state and its remote control, as small files in the run directory, so that
//! anything that can read the directory can watch a run and steer it (the monitor, a
//! script, another machine with the directory mounted):
//!
//! - `status.json`: written by the training loop about four times a second (atomically:
//!   temp + rename): state, step, SPS, evaluation returns, pid, wall-clock times. Unlike
//!   `metrics.jsonl` it holds wall-clock values, so it is not part of a run's deterministic
//!   record.
//! - `control/`: requests to the loop. `control/pause` present = paused (remove it to
//!   resume); `control/checkpoint` asks for a checkpoint at the next update; `control/stop`
//!   asks the run to stop at the next step, writing a final checkpoint (resume with
//!   `paddock train --resume`). The loop removes the last two once served.

use super::run_dir::{CONTROL, STATUS};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Loading plugins, restoring a checkpoint.
    Starting,
    /// Stepping.
    Running,
    /// Paused from `control/pause`.
    Paused,
    /// Reached `total_steps`, `train.stop_at_return` or `train.stop_at_success`.
    Finished,
    /// Stopped on request (`control/stop`); resumable.
    Stopped,
    /// Stopped early by a scheduler's decision (an experiment's early-stop rule): final for
    /// its experiment; resumable like a stopped run.
    Pruned,
    /// Ended with an error (`message` says which).
    Failed,
}

impl State {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Running => "running",
            State::Paused => "paused",
            State::Finished => "finished",
            State::Stopped => "stopped",
            State::Pruned => "pruned",
            State::Failed => "failed",
        }
    }

    /// Whether the process is (supposed to be) still working on the run.
    pub fn is_live(self) -> bool {
        matches!(self, State::Starting | State::Running | State::Paused)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A run's state as a reader sees it: what `status.json` says, or `Lost` when it says live
/// but its process is gone ([`Status::observed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observed {
    /// The state `status.json` holds.
    Is(State),
    /// `status.json` says live, but the process stopped writing it.
    Lost,
}

impl Observed {
    /// The lowercase name (`lost`, or the state's).
    pub fn as_str(self) -> &'static str {
        match self {
            Observed::Is(s) => s.as_str(),
            Observed::Lost => "lost",
        }
    }

    /// Whether a process is working on the run now.
    pub fn is_live(self) -> bool {
        matches!(self, Observed::Is(s) if s.is_live())
    }
}

impl Serialize for Observed {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for Observed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The contents of `status.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Where the run is.
    pub state: State,
    /// The training process.
    pub pid: u32,
    /// Env steps done.
    pub step: u64,
    /// Env steps the run aims for.
    pub total_steps: u64,
    /// Env steps per second over the last second or so.
    pub sps: f64,
    /// Best evaluation mean return so far.
    pub best_eval: Option<f64>,
    /// Last evaluation mean return.
    pub last_eval: Option<f64>,
    /// The learner's device.
    pub device: String,
    /// When this process started the run (or resumed it), Unix seconds.
    pub started_unix: f64,
    /// When this file was written, Unix seconds.
    pub updated_unix: f64,
    /// Why the run failed, or other news (e.g. an env swap under way).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The machine the training process runs on (its host name), so a reader can tell
    /// whether `pid` is its own to check.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
}

/// How long the status of a run on this machine may go unwritten before a dead `pid` makes
/// it `lost` (the loop writes it four times a second; evaluations pause it).
pub const LOST_LOCAL_AFTER_S: f64 = 10.0;
/// How long the status of a run on another machine (or from before `host` was recorded)
/// may go unwritten before it counts as `lost`: no process can be checked there.
pub const LOST_REMOTE_AFTER_S: f64 = 180.0;

/// This machine's host name (empty when unknown).
pub fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("HOSTNAME"))
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

impl Status {
    /// The state a reader should show at Unix time `now`: `lost` when a live state's
    /// process is gone (on this machine: its pid is not alive and it has not written for
    /// [`LOST_LOCAL_AFTER_S`]; elsewhere: no write for [`LOST_REMOTE_AFTER_S`]). The one
    /// notion of a lost run that the monitor, `runs ls` and the fleet share.
    pub fn observed(&self, now: f64) -> Observed {
        if !self.state.is_live() {
            return Observed::Is(self.state);
        }
        let quiet = now - self.updated_unix;
        let here = !self.host.is_empty() && self.host == this_host();
        let lost = if here || self.host.is_empty() && process_alive(self.pid) {
            quiet > LOST_LOCAL_AFTER_S && !process_alive(self.pid)
        } else {
            quiet > LOST_REMOTE_AFTER_S
        };
        if lost { Observed::Lost } else { Observed::Is(self.state) }
    }
}

/// Whether process `pid` is alive on this machine (Linux: `/proc/<pid>`; elsewhere assumed).
pub fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") { Path::new("/proc").join(pid.to_string()).exists() } else { true }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Writes `status.json` atomically.
pub fn write(run_dir: &Path, status: &Status) -> std::io::Result<()> {
    let tmp = run_dir.join(format!(".{STATUS}.tmp"));
    fs_err::write(&tmp, serde_json::to_vec(status)?)?;
    std::fs::rename(&tmp, run_dir.join(STATUS))
}

/// Reads `status.json`: `None` when there is none yet, an error naming the file when it is
/// unreadable.
pub fn read(run_dir: &Path) -> Option<Result<Status, String>> {
    let path = run_dir.join(STATUS);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(Err(format!("{}: {e}", path.display()))),
    };
    Some(serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display())))
}

/// A request to a running loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Pause stepping.
    Pause,
    /// Resume stepping.
    Resume,
    /// Write a checkpoint at the next update.
    Checkpoint,
    /// Stop at the next step with a final checkpoint.
    Stop,
}

fn control_dir(run_dir: &Path) -> PathBuf {
    run_dir.join(CONTROL)
}

/// Files a request in `run_dir/control/`.
pub fn request(run_dir: &Path, r: Request) -> std::io::Result<()> {
    let dir = control_dir(run_dir);
    fs_err::create_dir_all(&dir)?;
    match r {
        Request::Pause => std::fs::write(dir.join("pause"), b""),
        Request::Resume => match std::fs::remove_file(dir.join("pause")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
        Request::Checkpoint => std::fs::write(dir.join("checkpoint"), b""),
        Request::Stop => std::fs::write(dir.join("stop"), b""),
    }
}

/// Whether `control/pause` is present.
pub fn pause_requested(run_dir: &Path) -> bool {
    control_dir(run_dir).join("pause").exists()
}

/// Takes a one-shot request (`checkpoint` or `stop`): true if it was filed, and it is
/// removed.
pub fn take(run_dir: &Path, r: Request) -> bool {
    let name = match r {
        Request::Checkpoint => "checkpoint",
        Request::Stop => "stop",
        Request::Pause | Request::Resume => return false,
    };
    std::fs::remove_file(control_dir(run_dir).join(name)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_and_requests_are_served_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(read(dir.path()).is_none());
        let s = Status {
            state: State::Running,
            pid: 7,
            step: 10,
            total_steps: 100,
            sps: 5.0,
            best_eval: Some(1.0),
            last_eval: None,
            device: "cpu".into(),
            started_unix: 1.0,
            updated_unix: 2.0,
            message: None,
            host: this_host(),
        };
        write(dir.path(), &s).expect("write");
        assert_eq!(read(dir.path()).expect("some").expect("ok"), s);
        std::fs::write(dir.path().join("status.json"), b"{\"state\": \"runn").expect("write");
        assert!(read(dir.path()).expect("some").expect_err("garbage").contains("status.json"));

        assert!(!pause_requested(dir.path()));
        request(dir.path(), Request::Pause).expect("pause");
        assert!(pause_requested(dir.path()));
        request(dir.path(), Request::Resume).expect("resume");
        request(dir.path(), Request::Resume).expect("resume twice is fine");
        assert!(!pause_requested(dir.path()));
        request(dir.path(), Request::Checkpoint).expect("checkpoint");
        assert!(take(dir.path(), Request::Checkpoint));
        assert!(!take(dir.path(), Request::Checkpoint), "served once");
    }

    #[test]
    fn a_live_run_whose_process_is_gone_is_lost_here_and_a_silent_one_elsewhere() {
        let now = unix_now();
        let mine = Status {
            state: State::Running,
            pid: std::process::id(),
            step: 1,
            total_steps: 2,
            sps: 0.0,
            best_eval: None,
            last_eval: None,
            device: "cpu".into(),
            started_unix: now - 100.0,
            updated_unix: now - 50.0,
            message: None,
            host: this_host(),
        };
        assert_eq!(mine.observed(now), Observed::Is(State::Running), "its process is alive");
        let dead = Status { pid: u32::MAX - 1, ..mine.clone() };
        assert_eq!(dead.observed(now), Observed::Lost);
        assert_eq!(Status { updated_unix: now - 1.0, ..dead.clone() }.observed(now), Observed::Is(State::Running), "it wrote a moment ago");
        let elsewhere = Status { host: "another-machine".into(), ..dead.clone() };
        assert_eq!(
            elsewhere.observed(now),
            Observed::Is(State::Running),
            "another machine's pid cannot be checked; 50 s of quiet is not lost yet"
        );
        assert_eq!(Status { updated_unix: now - 600.0, ..elsewhere.clone() }.observed(now), Observed::Lost);
        assert_eq!(Status { state: State::Stopped, ..dead }.observed(now), Observed::Is(State::Stopped));
    }
}
