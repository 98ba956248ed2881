//! Delivering a caught signal to a task: ending the system call it waits in (EINTR, or a
//! restart with SA_RESTART), then running the handler.

use super::kernel::PendingSignal;
use super::signal::*;
use super::Process;

/// `true` when caught signals run their handlers.
pub fn can_run_handlers() -> bool {
    false
}

/// Runs the handler `act` for `s`.
pub fn deliver(p: &mut Process, s: PendingSignal, _act: SigAction) {
    p.log_once(format!(
        "signal {}: handlers are not run yet; ignored",
        signal_name(s.sig)
    ));
}
