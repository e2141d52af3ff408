//! The loop's outward signs: `status.json` kept current and `control/` requests served
//! (the [`Ticker`]), and `scene.json` painted about once a second (the [`ScenePainter`]).

use super::checkpoint::LoopState;
use crate::envset::EnvSet;
use crate::format::run_dir;
use crate::format::status::{self, Request, State, Status};
use std::path::Path;
use std::time::Instant;

/// Writes `scene.json` (one env's physics scene, see [`crate::format::scene::SceneFile`])
/// about once a second for the monitor; nothing for envs without physics.
pub(super) struct ScenePainter {
    pub last: Option<Instant>,
    pub view: Option<[f32; 4]>,
    /// False once the env turned out to have no scene.
    pub active: bool,
}

const SCENE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl ScenePainter {
    pub(super) fn paint(&mut self, run_dir: &Path, envs: &EnvSet, obs: &[f32], step: u64) {
        if !self.active || self.last.is_some_and(|t| t.elapsed() < SCENE_EVERY) {
            return;
        }
        self.last = Some(Instant::now());
        let (scene, fixed) = envs.first_scene();
        if scene.is_empty() {
            self.active = false;
            return;
        }
        let mut file = crate::format::scene::SceneFile::new(step, &scene, &fixed, self.view);
        self.view = Some(file.view);
        if let Some(layout) = envs.image_layout() {
            file.camera = crate::runtime::cameras::thumbnail(layout, &obs[..layout.obs_len().min(obs.len())], 32);
        }
        // A picture that cannot be written (full disk) must not stop training.
        if let Ok(text) = serde_json::to_vec(&file) {
            let _ = crate::store::write_atomically(&run_dir.join(run_dir::SCENE), &text);
        }
    }
}

/// Keeps `status.json` current and serves `control/` requests (see [`crate::format::status`]),
/// looking at the clock each step and at the files four times a second.
pub(super) struct Ticker<'a> {
    pub run_dir: &'a Path,
    pub status: Status,
    /// When the status was last written.
    pub last: Instant,
    /// Where the current stretch of stepping began (the start, or the end of a pause), for
    /// the run's real rate: wall clock with updates, evaluations and checkpoints in it.
    pub since: (Instant, u64),
    /// A checkpoint was asked for: written at the next update.
    pub checkpoint_asked: bool,
    pub log: crate::log::RunLog,
}

pub(super) const TICK: std::time::Duration = std::time::Duration::from_millis(250);

impl Ticker<'_> {
    pub(super) fn write(&mut self, state: State, st: &LoopState, message: Option<String>) {
        let s = &mut self.status;
        (s.state, s.step, s.best_eval, s.last_eval, s.message) = (state, st.steps, st.best_eval_return, st.last_eval_return, message);
        s.updated_unix = status::unix_now();
        // A status that cannot be written (full disk) must not stop training.
        let _ = status::write(self.run_dir, s);
    }

    /// Whether [`Ticker::tick`] would look at the files and write the status now.
    pub(super) fn due(&self) -> bool {
        self.last.elapsed() >= TICK
    }

    /// Called before each step: updates the status when due, waits while paused; returns
    /// whether a stop was asked for.
    pub(super) fn tick(&mut self, st: &LoopState, message: Option<String>) -> bool {
        if !self.due() {
            return false;
        }
        self.status.sps = (st.steps - self.since.1) as f64 / self.since.0.elapsed().as_secs_f64().max(1e-9);
        self.last = Instant::now();
        if status::take(self.run_dir, Request::Checkpoint) {
            self.checkpoint_asked = true;
            self.log.line(
                crate::log::Level::Info,
                "host",
                &format!("a checkpoint was asked for at step {}; it is written at the next update", st.steps),
            );
        }
        if status::take(self.run_dir, Request::Stop) {
            self.log.line(crate::log::Level::Info, "host", &format!("stop asked for at step {}", st.steps));
            return true;
        }
        if status::pause_requested(self.run_dir) {
            self.log.line(crate::log::Level::Info, "host", &format!("paused at step {}", st.steps));
            self.status.sps = 0.0;
            while status::pause_requested(self.run_dir) {
                self.write(State::Paused, st, message.clone());
                if status::take(self.run_dir, Request::Stop) {
                    self.log.line(crate::log::Level::Info, "host", &format!("stop asked for while paused at step {}", st.steps));
                    return true;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            self.log.line(crate::log::Level::Info, "host", &format!("resumed at step {}", st.steps));
            (self.last, self.since) = (Instant::now(), (Instant::now(), st.steps));
        }
        self.write(State::Running, st, message);
        false
    }
}
