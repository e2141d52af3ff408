//! The terminal monitor (`paddock watch`, `paddock train --tui`), on ratatui + crossterm.
//! It only reads run directories (see [`data`]) and files requests in their `control/`
//! folder (see [`crate::format::status`]), so it watches runs started anywhere, survives runs
//! that end, restart or vanish, and steers any live run. At rest it wakes four times a
//! second, looks at file sizes and times, and draws only when something changed.

pub mod data;
pub mod follow;
mod scene;
pub mod ui;

use crate::format::status::{self, Request, State};
use data::RunView;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What the monitor shows and where the user is in it.
pub struct App {
    /// The runs, in list order.
    pub runs: Vec<RunView>,
    /// Paths given on the command line (runs or stores), scanned again for new runs.
    pub sources: Vec<PathBuf>,
    /// The selected run.
    pub selected: usize,
    /// Which `train/…` metric the third chart shows (index into the selected run's list).
    pub metric: usize,
    /// Zoom: only the last this many env steps (`None`: everything).
    pub window: Option<f64>,
    /// Draw every run's smoothed return in the return chart.
    pub overlay: bool,
    /// The help overlay is open.
    pub help: bool,
    /// The log pane fills the chart area.
    pub big_log: bool,
    /// The last thing a key did, shown in the footer.
    pub message: Option<String>,
    /// `train --tui`: the monitor belongs to one run; `q` stops it.
    pub owns_run: bool,
    /// Wall clock (Unix seconds) used for elapsed times; fixed in tests.
    pub now: f64,
    /// Runs followed from an S3 store: they are steered on their own machine, not from here.
    pub read_only: Option<String>,
    /// `s` was pressed once on this run (its name): the next `s` stops it.
    pub confirm_stop: Option<String>,
    last_scan: Option<Instant>,
}

impl App {
    /// A monitor over `sources` (run dirs or stores).
    pub fn new(sources: Vec<PathBuf>) -> Self {
        let mut app = App {
            runs: Vec::new(),
            sources,
            selected: 0,
            metric: 0,
            window: None,
            overlay: false,
            help: false,
            big_log: false,
            message: None,
            owns_run: false,
            now: status::unix_now(),
            read_only: None,
            confirm_stop: None,
            last_scan: None,
        };
        app.scan();
        app.order();
        app.selected = 0;
        app
    }

    /// Live runs first, then the others; the newest first within each (the run a user is
    /// most likely watching opens selected). The selected run stays selected.
    fn order(&mut self) {
        let keep = self.runs.get(self.selected).map(|r| r.dir.clone());
        let now = self.now;
        let started = |r: &RunView| match &r.status {
            Some(Ok(s)) => s.started_unix,
            _ => 0.0,
        };
        let idle = |r: &RunView| !r.shown(now).is_live();
        self.runs.sort_by(|a, b| idle(a).cmp(&idle(b)).then_with(|| started(b).total_cmp(&started(a))).then_with(|| a.name.cmp(&b.name)));
        if let Some(dir) = keep {
            self.selected = self.runs.iter().position(|r| r.dir == dir).unwrap_or(0);
        }
    }

    /// Adds runs that appeared under the sources.
    fn scan(&mut self) -> bool {
        self.last_scan = Some(Instant::now());
        let mut changed = false;
        for dir in data::discover(&self.sources) {
            if !self.runs.iter().any(|r| r.dir == dir) {
                self.runs.push(RunView::open(&dir));
                changed = true;
            }
        }
        changed
    }

    /// Reads what changed on disk; returns whether the screen should be drawn again.
    pub fn refresh(&mut self) -> bool {
        let mut changed = false;
        if self.last_scan.is_none_or(|t| t.elapsed() >= Duration::from_secs(2)) {
            changed |= self.scan();
        }
        for r in &mut self.runs {
            changed |= r.refresh();
        }
        if changed {
            self.order();
        }
        let now = status::unix_now();
        // Elapsed times tick once a second on live runs.
        if self.runs.iter().any(|r| r.elapsed(now).is_some() && r.shown(now).is(State::Running)) && now.floor() != self.now.floor() {
            changed = true;
        }
        self.now = now;
        changed
    }

    /// The selected run, if any.
    pub fn current(&self) -> Option<&RunView> {
        self.runs.get(self.selected)
    }

    fn ask(&mut self, r: Request) {
        let Some(run) = self.current() else { return };
        let (dir, name, live) = (run.dir.clone(), run.name.clone(), run.shown(self.now).is_live());
        if !live {
            self.message = Some(format!("{name} is not running"));
            return;
        }
        if let Some(from) = &self.read_only {
            self.message = Some(format!("{name} is followed from {from}: steer it on its own machine"));
            return;
        }
        self.message = Some(match status::request(&dir, r) {
            Ok(()) => match r {
                Request::Pause => format!("asked {name} to pause"),
                Request::Resume => format!("asked {name} to resume"),
                Request::Checkpoint => format!("asked {name} for a checkpoint at its next update"),
                Request::Stop => format!("asked {name} to stop (it writes a final checkpoint)"),
            },
            Err(e) => format!("could not write to {}: {e}", dir.join("control").display()),
        });
    }

    /// Handles a key; returns false to quit.
    pub fn key(&mut self, k: KeyEvent) -> bool {
        if k.kind != KeyEventKind::Press {
            return true;
        }
        if self.help {
            self.help = false;
            return !matches!(k.code, KeyCode::Char('q'));
        }
        if action_of(&k) != Some(Action::Stop) && self.confirm_stop.take().is_some() {
            self.message = Some("stop cancelled".into());
        }
        let Some(action) = action_of(&k) else { return true };
        match action {
            Action::Quit => return self.quit(),
            Action::Help => self.help = true,
            Action::Down if self.selected + 1 < self.runs.len() => {
                self.selected += 1;
                self.metric = 0;
            }
            Action::Down => {}
            Action::Up => {
                self.selected = self.selected.saturating_sub(1);
                self.metric = 0;
            }
            Action::NextMetric => self.metric += 1,
            Action::PreviousMetric => self.metric = self.metric.saturating_sub(1),
            Action::ZoomIn => {
                let span = self.window.unwrap_or_else(|| self.current().and_then(RunView::step).unwrap_or(0) as f64);
                self.window = Some((span / 2.0).max(1000.0));
            }
            Action::ZoomOut => self.window = self.window.map(|w| w * 2.0),
            Action::ZoomAll => self.window = None,
            Action::Overlay => self.overlay = !self.overlay,
            Action::BigLog => self.big_log = !self.big_log,
            Action::Pause => {
                let paused = self.current().is_some_and(|r| r.shown(self.now).is(State::Paused) || status::pause_requested(&r.dir));
                self.ask(if paused { Request::Resume } else { Request::Pause });
            }
            Action::Checkpoint => self.ask(Request::Checkpoint),
            Action::Stop => {
                // A stop ends the run's session: ask once more, for this run.
                let live = self.current().is_some_and(|r| r.shown(self.now).is_live());
                let name = self.current().map(|r| r.name.clone());
                if !live || self.read_only.is_some() {
                    self.ask(Request::Stop);
                } else if name.is_some() && self.confirm_stop == name {
                    self.confirm_stop = None;
                    self.ask(Request::Stop);
                } else if let Some(n) = name {
                    self.message = Some(format!("press s again to stop {n} (it writes a final checkpoint); any other key cancels"));
                    self.confirm_stop = Some(n);
                }
                return true;
            }
        }
        true
    }

    fn quit(&mut self) -> bool {
        if self.owns_run && self.current().is_some_and(|r| r.shown(self.now).is_live()) {
            // `train --tui`: stop the run cleanly (final checkpoint), then leave.
            self.ask(Request::Stop);
            if let Some(r) = self.current() {
                let _ = status::request(&r.dir, Request::Resume);
            }
            self.message = Some("stopping the run: it writes a final checkpoint, then the monitor closes".into());
            return true;
        }
        false
    }
}

/// What a key does in the monitor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Quit (`train --tui`: stop the run first).
    Quit,
    /// Show the key bindings.
    Help,
    /// Select the next run.
    Down,
    /// Select the previous run.
    Up,
    /// The next algorithm metric in the third chart.
    NextMetric,
    /// The previous one.
    PreviousMetric,
    /// Zoom into the last half of the steps shown.
    ZoomIn,
    /// Zoom out.
    ZoomOut,
    /// Show every step.
    ZoomAll,
    /// Overlay every run's return.
    Overlay,
    /// The big log pane.
    BigLog,
    /// Pause or resume the selected run.
    Pause,
    /// Ask for a checkpoint.
    Checkpoint,
    /// Stop the selected run (asked twice).
    Stop,
}

/// A key as the bindings name it.
#[derive(Clone, Copy, Debug)]
pub enum Key {
    /// A key without Ctrl.
    Plain(KeyCode),
    /// Ctrl and a letter.
    Ctrl(char),
}

impl Key {
    fn matches(self, k: &KeyEvent) -> bool {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        match self {
            Key::Plain(code) => !ctrl && k.code == code,
            Key::Ctrl(c) => ctrl && k.code == KeyCode::Char(c),
        }
    }

    /// How the help names it.
    pub fn label(self) -> String {
        match self {
            Key::Ctrl(c) => format!("Ctrl-{}", c.to_ascii_uppercase()),
            Key::Plain(KeyCode::Up) => "↑".into(),
            Key::Plain(KeyCode::Down) => "↓".into(),
            Key::Plain(KeyCode::Tab) => "Tab".into(),
            Key::Plain(KeyCode::BackTab) => "Shift-Tab".into(),
            Key::Plain(KeyCode::Esc) => "Esc".into(),
            Key::Plain(KeyCode::Char(c)) => c.to_string(),
            Key::Plain(other) => format!("{other:?}"),
        }
    }
}

/// The monitor's key bindings: what [`App::key`] does and what the help shows, from this one
/// table.
pub const BINDINGS: &[(&[Key], Action, &str)] = &[
    (&[Key::Plain(KeyCode::Up), Key::Plain(KeyCode::Char('k'))], Action::Up, "select the previous run"),
    (&[Key::Plain(KeyCode::Down), Key::Plain(KeyCode::Char('j'))], Action::Down, "select the next run"),
    (&[Key::Plain(KeyCode::Tab), Key::Plain(KeyCode::Char('m'))], Action::NextMetric, "next algorithm metric"),
    (&[Key::Plain(KeyCode::BackTab), Key::Plain(KeyCode::Char('M'))], Action::PreviousMetric, "previous algorithm metric"),
    (&[Key::Plain(KeyCode::Char('+')), Key::Plain(KeyCode::Char('='))], Action::ZoomIn, "zoom into the last half of the steps"),
    (&[Key::Plain(KeyCode::Char('-'))], Action::ZoomOut, "zoom out"),
    (&[Key::Plain(KeyCode::Char('0'))], Action::ZoomAll, "every step"),
    (&[Key::Plain(KeyCode::Char('o'))], Action::Overlay, "overlay every run's return"),
    (&[Key::Plain(KeyCode::Char('l'))], Action::BigLog, "big log pane"),
    (&[Key::Plain(KeyCode::Char('p'))], Action::Pause, "pause / resume the selected run"),
    (&[Key::Plain(KeyCode::Char('c'))], Action::Checkpoint, "checkpoint at its next update"),
    (&[Key::Plain(KeyCode::Char('s'))], Action::Stop, "stop it, twice (a final checkpoint; --resume goes on)"),
    (&[Key::Plain(KeyCode::Char('?')), Key::Plain(KeyCode::Char('h'))], Action::Help, "this help (any key closes)"),
    (&[Key::Plain(KeyCode::Char('q')), Key::Plain(KeyCode::Esc), Key::Ctrl('c')], Action::Quit, "quit (train --tui: stop the run first)"),
];

/// The action bound to `k`, if any.
pub fn action_of(k: &KeyEvent) -> Option<Action> {
    BINDINGS.iter().find(|(keys, _, _)| keys.iter().any(|key| key.matches(k))).map(|(_, a, _)| *a)
}

/// Runs the monitor in the terminal until the user quits, or, with `until`, until it says
/// the work is over and the user has seen the last state (then any key leaves).
pub fn run(mut app: App, until: Option<&dyn Fn() -> bool>) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        anyhow::bail!("the monitor needs a terminal (stdout is not one); run it in a terminal, or leave out --tui");
    }
    let mut terminal = ratatui::try_init()?;
    let result = (|| -> anyhow::Result<()> {
        let mut dirty = true;
        let mut stopping = false;
        loop {
            if dirty {
                terminal.draw(|f| ui::draw(f, &app))?;
                dirty = false;
            }
            if let Some(done) = until
                && done()
            {
                app.refresh();
                if stopping {
                    return Ok(());
                }
                app.owns_run = false;
                if app.message.is_none() {
                    app.message = Some("the run has ended; press any key to leave".into());
                }
                terminal.draw(|f| ui::draw(f, &app))?;
                loop {
                    if let Event::Key(k) = event::read()?
                        && k.kind == KeyEventKind::Press
                    {
                        return Ok(());
                    }
                }
            }
            if event::poll(Duration::from_millis(250))? {
                match event::read()? {
                    Event::Key(k) => {
                        let stop_asked = app.owns_run && matches!(k.code, KeyCode::Char('q') | KeyCode::Esc);
                        if !app.key(k) {
                            return Ok(());
                        }
                        stopping |= stop_asked && !app.help;
                        dirty = true;
                    }
                    Event::Resize(..) => dirty = true,
                    _ => {}
                }
            } else {
                dirty |= app.refresh();
            }
        }
    })();
    ratatui::try_restore()?;
    result
}
