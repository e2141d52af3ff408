//! The terminal monitor (`paddock watch`, `paddock train --tui`), on ratatui + crossterm.
//! It only reads run directories (see [`data`]) and files requests in their `control/`
//! folder (see [`crate::format::status`]), so it watches runs started anywhere, survives runs
//! that end, restart or vanish, and steers any live run. At rest it wakes four times a
//! second, looks at file sizes and times, and draws only when something changed.

pub mod data;
pub mod follow;
mod scene;
pub mod ui;

use crate::format::status::{self, Request};
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
        app
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
        let now = status::unix_now();
        // Elapsed times tick once a second on live runs.
        if self.runs.iter().any(|r| r.elapsed(now).is_some() && r.state_label(now) == "running") && now.floor() != self.now.floor() {
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
        let (dir, name, live) =
            (run.dir.clone(), run.name.clone(), matches!(run.state_label(self.now).as_str(), "running" | "paused" | "starting"));
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
        if k.code != KeyCode::Char('s') && self.confirm_stop.take().is_some() {
            self.message = Some("stop cancelled".into());
        }
        match k.code {
            KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => return self.quit(),
            KeyCode::Char('q') | KeyCode::Esc => return self.quit(),
            KeyCode::Char('?') | KeyCode::Char('h') => self.help = true,
            KeyCode::Down | KeyCode::Char('j') if self.selected + 1 < self.runs.len() => {
                self.selected += 1;
                self.metric = 0;
            }
            KeyCode::Up | KeyCode::Char('k') => {
                self.selected = self.selected.saturating_sub(1);
                self.metric = 0;
            }
            KeyCode::Tab | KeyCode::Char('m') => self.metric += 1,
            KeyCode::BackTab | KeyCode::Char('M') => self.metric = self.metric.saturating_sub(1),
            KeyCode::Char('+') | KeyCode::Char('=') => {
                let span = self.window.unwrap_or_else(|| self.current().and_then(RunView::step).unwrap_or(0) as f64);
                self.window = Some((span / 2.0).max(1000.0));
            }
            KeyCode::Char('-') => self.window = self.window.map(|w| w * 2.0),
            KeyCode::Char('0') => self.window = None,
            KeyCode::Char('o') => self.overlay = !self.overlay,
            KeyCode::Char('l') => self.big_log = !self.big_log,
            KeyCode::Char('p') => {
                let paused = self.current().is_some_and(|r| r.state_label(self.now) == "paused" || status::pause_requested(&r.dir));
                self.ask(if paused { Request::Resume } else { Request::Pause });
            }
            KeyCode::Char('c') => self.ask(Request::Checkpoint),
            KeyCode::Char('s') => {
                // A stop ends the run's session: ask once more, for this run.
                let live = self.current().is_some_and(|r| matches!(r.state_label(self.now).as_str(), "running" | "paused" | "starting"));
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
            _ => {}
        }
        true
    }

    fn quit(&mut self) -> bool {
        if self.owns_run && self.current().is_some_and(|r| matches!(r.state_label(self.now).as_str(), "running" | "paused" | "starting")) {
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
