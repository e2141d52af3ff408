//! SIGINT and SIGTERM: the first asks every training loop in the process to stop at its
//! next safe point (right after an update) with a final checkpoint, state `stopped`; the
//! second ends the process at once (exit 130 or 143), as a user pressing Ctrl-C twice, or
//! a spot reclaim arriving early, expects. Through `signal-hook`'s flag handlers, which do
//! nothing but set atomics (async-signal-safe).
//!
//! A caller that is not a signal (a fleet worker on a spot interruption notice) asks for the
//! same stop with [`request`].

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

struct Flags {
    asked: Arc<AtomicBool>,
    /// The signal number that asked (0: [`request`]).
    which: Arc<AtomicUsize>,
}

fn flags() -> &'static Flags {
    static FLAGS: OnceLock<Flags> = OnceLock::new();
    FLAGS.get_or_init(|| Flags { asked: Arc::new(AtomicBool::new(false)), which: Arc::new(AtomicUsize::new(0)) })
}

/// Installs the handlers for SIGINT and SIGTERM (once per process).
pub fn install() -> std::io::Result<()> {
    static DONE: OnceLock<()> = OnceLock::new();
    if DONE.get().is_some() {
        return Ok(());
    }
    let f = flags();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Registered first, so it sees the flag as the previous signal left it.
        signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, Arc::clone(&f.asked))?;
        signal_hook::flag::register_usize(sig, Arc::clone(&f.which), sig as usize)?;
        signal_hook::flag::register(sig, Arc::clone(&f.asked))?;
    }
    let _ = DONE.set(());
    Ok(())
}

/// Asks the training loops of this process to stop as a first signal does.
pub fn request() {
    flags().asked.store(true, Ordering::SeqCst);
}

/// What asked for a stop, if anything did: `SIGINT`, `SIGTERM` or `a stop request`.
pub fn requested() -> Option<&'static str> {
    let f = flags();
    if !f.asked.load(Ordering::SeqCst) {
        return None;
    }
    Some(match f.which.load(Ordering::SeqCst) as i32 {
        signal_hook::consts::SIGINT => "SIGINT",
        signal_hook::consts::SIGTERM => "SIGTERM",
        _ => "a stop request",
    })
}

/// The exit status a process stopped by that signal should end with (130 for SIGINT, 143
/// for SIGTERM), once its run has stopped cleanly.
pub fn exit_status() -> Option<u8> {
    requested()?;
    match flags().which.load(Ordering::SeqCst) as i32 {
        0 => None,
        sig => u8::try_from(128 + sig).ok(),
    }
}
