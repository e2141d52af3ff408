//! The host side of `paddock:rl/log`: plugin log lines and metrics into the run.

use super::bindings::environment::paddock::rl::log::{Host, Level as WitLevel};
use super::sandbox::{PluginMetric, PluginState};
use crate::log::Level;

/// Most metrics kept between two drains; a plugin logging in a tight loop cannot exhaust
/// host memory.
const MAX_PENDING_METRICS: usize = 65_536;

impl Host for PluginState {
    fn write(&mut self, level: WitLevel, message: String) {
        let level = match level {
            WitLevel::Trace => Level::Trace,
            WitLevel::Debug => Level::Debug,
            WitLevel::Info => Level::Info,
            WitLevel::Warn => Level::Warn,
            WitLevel::Error => Level::Error,
        };
        self.log.line(level, &format!("plugin {}", self.name), &message);
    }

    fn metric(&mut self, name: String, value: f64) {
        if self.metrics.len() < MAX_PENDING_METRICS {
            self.metrics.push(PluginMetric { name, value });
        }
    }
}
