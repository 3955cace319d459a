//! Panics inside libtorch calls (tch unwraps the errors of most tensor operations, such as
//! an allocation larger than memory) turned into errors, so a run still ends cleanly.
use anyhow::{anyhow, Result};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// Inside [`caught`]: the panic is reported as its error, not by the panic hook.
    static CATCHING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`; a panic becomes an error naming `what` was being done and the panic's message
/// (its first lines, without libtorch's C++ stack frames).
pub fn caught<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CATCHING.with(Cell::get) {
                default(info);
            }
        }));
    });
    let outer = CATCHING.with(|c| c.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(outer));
    result.unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("no message");
        let message = message.split("\\nframe #").next().unwrap_or(message);
        Err(anyhow!("internal error while {what}: {message}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_with_its_message() {
        let err = caught::<()>("testing", || panic!("boom {}\\nframe #0: c10", 7)).unwrap_err();
        assert_eq!(err.to_string(), "internal error while testing: boom 7");
        assert_eq!(caught("testing", || Ok(3)).unwrap(), 3);
    }
}
