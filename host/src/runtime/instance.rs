//! The call bridge: every call into a plugin goes through [`Bridge::call`], which arms the
//! deadline, forwards the plugin's output to the run log, and turns traps and returned
//! errors into a [`CallError`] naming the plugin and the call. After a trap the instance
//! is marked dead (wasmtime instances cannot continue after a trap).

use super::bindings::types::PluginError as GuestError;
use super::error::{CallError, CallErrorKind};
use super::loader::Plugin;
use super::sandbox::PluginState;
use crate::log::Level;
use wasmtime::{Store, Trap};

/// A store plus the bookkeeping every call needs.
pub(crate) struct Bridge {
    pub(crate) store: Store<PluginState>,
    pub(crate) plugin: Plugin,
    dead: bool,
    deadline_ticks: u64,
}

/// Human text for an error a plugin returned.
pub(crate) fn describe(e: &GuestError) -> String {
    match e {
        GuestError::InvalidParams(m) => format!("invalid parameters: {m}"),
        GuestError::InvalidAction(m) => format!("invalid action: {m}"),
        GuestError::InvalidState(m) => format!("invalid state: {m}"),
        GuestError::Unsupported(m) => format!("unsupported: {m}"),
        GuestError::Failed(m) => m.clone(),
    }
}

impl Bridge {
    /// A fresh store for `plugin`, its random sources seeded with `seed`.
    pub(crate) fn new(plugin: &Plugin, seed: u64) -> Self {
        let rt = &plugin.runtime;
        let state = PluginState::new(
            plugin.info.name.as_str().into(),
            &rt.options().limits,
            seed,
            rt.options().log.clone(),
            plugin.info.app.clone(),
        );
        let mut store = Store::new(rt.engine(), state);
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_trap();
        Bridge { store, plugin: plugin.clone(), dead: false, deadline_ticks: rt.deadline_ticks() }
    }

    /// The pre-instantiated component, if the plugin targets `world` (else an error for
    /// the `instantiate` call).
    pub(crate) fn pre_for(&self, world: super::error::World) -> Result<wasmtime::component::InstancePre<PluginState>, CallError> {
        match &self.plugin.pre {
            Some(pre) if self.plugin.info.world == world => Ok(pre.clone()),
            _ => Err(self.error(
                "instantiate",
                CallErrorKind::Trap(format!("plugin targets world `{}`, not `{}`", self.plugin.info.world, world.name())),
            )),
        }
    }

    /// The plugin's name.
    pub(crate) fn name(&self) -> &str {
        &self.plugin.info.name
    }

    /// An error for `call` of this plugin.
    pub(crate) fn error(&self, call: &'static str, kind: CallErrorKind) -> CallError {
        CallError { plugin: self.name().to_string(), call, kind }
    }

    /// Runs `f` as the plugin call `call`.
    pub(crate) fn call<R>(
        &mut self,
        call: &'static str,
        f: impl FnOnce(&mut Store<PluginState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        if self.dead {
            return Err(self.error(call, CallErrorKind::Dead));
        }
        self.store.set_epoch_deadline(self.deadline_ticks);
        match f(&mut self.store) {
            Ok(r) => {
                self.store.data_mut().forward_output(false);
                Ok(r)
            }
            Err(e) => {
                self.dead = true;
                let kind = self.classify(e);
                let err = self.error(call, kind);
                self.store.data().log.line(Level::Error, &format!("plugin {}", self.name()), &err.to_string());
                Err(err)
            }
        }
    }

    /// Like [`Bridge::call`] for WIT functions that return `result<T, plugin-error>`.
    pub(crate) fn call_result<R>(
        &mut self,
        call: &'static str,
        f: impl FnOnce(&mut Store<PluginState>) -> wasmtime::Result<Result<R, GuestError>>,
    ) -> Result<R, CallError> {
        self.call(call, f)?.map_err(|e| match e {
            GuestError::Unsupported(m) => self.error(call, CallErrorKind::Unsupported(m)),
            e => self.error(call, CallErrorKind::Returned(describe(&e))),
        })
    }

    fn classify(&mut self, err: wasmtime::Error) -> CallErrorKind {
        let stderr = self.store.data_mut().forward_output(true);
        let limits = self.plugin.runtime.options().limits;
        if let Some(Trap::Interrupt) = err.downcast_ref::<Trap>() {
            return CallErrorKind::Timeout(limits.call_timeout);
        }
        let text = format!("{err:#}");
        if text.contains("forcing trap when growing memory") {
            return CallErrorKind::MemoryCap(limits.memory_bytes);
        }
        if let Some(start) = stderr.iter().position(|l| l.contains("panicked at")) {
            let msg: Vec<&str> = stderr[start..].iter().map(|s| s.trim()).filter(|s| !s.is_empty() && !s.starts_with("note:")).collect();
            return CallErrorKind::Panic(msg.join(" "));
        }
        // Rust's allocator aborts with this line when the memory cap refused its request.
        if let Some(line) = stderr.iter().find(|l| l.contains("memory allocation of") && l.contains("failed")) {
            return CallErrorKind::Trap(format!("{} (the plugin's memory cap is {} MiB)", line.trim(), limits.memory_bytes >> 20));
        }
        // A host function's trap (a tensor or physics call refused) is the root cause under
        // the backtrace's context: say it, not the context's first line.
        let first_line = text.lines().next().unwrap_or("unknown trap").to_string();
        let root = err.root_cause().to_string();
        let first_line = if first_line.ends_with("wasm backtrace:") && !root.contains("wasm backtrace") {
            root.lines().next().unwrap_or(&first_line).to_string()
        } else {
            first_line
        };
        let last = stderr.iter().rev().map(|l| l.trim()).find(|l| !l.is_empty());
        let said = last.map_or_else(String::new, |l| format!("; its last stderr line: {l}"));
        match err.downcast_ref::<Trap>() {
            Some(trap) => CallErrorKind::Trap(format!("{trap} ({first_line}){said}")),
            None => CallErrorKind::Trap(format!("{first_line}{said}")),
        }
    }
}
