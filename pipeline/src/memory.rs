//! Telling the process's allocator that a phase's memory is free. The binary keeps freed
//! memory a while before it goes back to the OS (reused, it costs no page faults), so a
//! run's read pass would still hold its freed buffers when the snapshot's encoding starts
//! allocating its own; between the two, the binary is asked to return them at once.
//! The library only calls the hook; the binary, which picks the allocator, sets it.

use std::sync::OnceLock;

static RETURN_FREED: OnceLock<fn()> = OnceLock::new();

/// Sets the hook that returns freed memory to the OS (the first call wins).
pub fn set_return_freed(hook: fn()) {
    let _ = RETURN_FREED.set(hook);
}

/// Returns freed memory to the OS now, where the binary said how (else nothing).
pub fn return_freed() {
    if let Some(hook) = RETURN_FREED.get() {
        hook();
    }
}
