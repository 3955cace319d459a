//! SIGINT, SIGTERM and SIGHUP: the first asks the runs to stop after their current
//! iteration (a checkpoint, status "interrupted", exit 130); a second exits at once.
use std::sync::atomic::{AtomicUsize, Ordering};

static SIGNALS: AtomicUsize = AtomicUsize::new(0);

/// The exit code of a run stopped by a signal (128 + SIGINT's number, as shells use).
pub const EXIT_CODE: i32 = 130;

/// Installs the handler; a second installation is a no-op.
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        if SIGNALS.fetch_add(1, Ordering::SeqCst) > 0 {
            eprintln!("pisa: second signal, exiting at once");
            // SAFETY: _exit only ends the process; no destructor of the computation runs.
            unsafe { libc::_exit(EXIT_CODE) };
        }
        eprintln!("pisa: stopping after the current iteration (again to exit at once)");
    });
}

/// Whether a signal asked the runs to stop.
pub fn requested() -> bool {
    SIGNALS.load(Ordering::SeqCst) > 0
}
