//! The run log: one sink for host messages and plugin output, each line tagged with its
//! source. For `env run` it goes to stderr; training runs write `log.txt` in the run dir.

use std::io::Write;
use std::sync::{Arc, Mutex};

/// Severity of a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal information.
    Info,
    /// Something looks wrong.
    Warn,
    /// Something failed.
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// A cloneable, thread-safe line sink.
#[derive(Clone)]
pub struct RunLog {
    inner: Arc<Mutex<Box<dyn Write + Send>>>,
    min_level: Level,
}

impl std::fmt::Debug for RunLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunLog").field("min_level", &self.min_level).finish()
    }
}

impl RunLog {
    /// A log writing to `sink`, dropping lines below `min_level`.
    pub fn new(sink: Box<dyn Write + Send>, min_level: Level) -> Self {
        RunLog { inner: Arc::new(Mutex::new(sink)), min_level }
    }

    /// A log on stderr.
    pub fn stderr() -> Self {
        RunLog::new(Box::new(std::io::stderr()), Level::Info)
    }

    /// A log that keeps nothing.
    pub fn discard() -> Self {
        RunLog::new(Box::new(std::io::sink()), Level::Error)
    }

    /// Writes one line: `LEVEL [source] message`.
    pub fn line(&self, level: Level, source: &str, message: &str) {
        if level < self.min_level {
            return;
        }
        let mut w = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        // A failing log sink must not take the run down.
        let _ = writeln!(w, "{} [{source}] {message}", level.as_str());
    }
}
