//! Fault injection for the crash tests: `CERTRESPONDER_FAULT=before:issue` kills the process
//! with SIGKILL right after the journal records that `issue` started; `after:issue` kills it
//! after the step has done its work but before the journal records that it finished (the
//! worst moment to crash); two points are inside steps: `during:issue` kills it when the
//! issuer has answered and nothing of the answer is journaled, and `during:deploy` after the
//! first location has been renamed into place and before the others. Several points may be
//! given, separated by commas.
//!
//! This exists so that tests can prove invariant 3 (a crash at any step boundary resumes,
//! issues at most one extra certificate and leaves every location complete). With the
//! variable unset it does nothing.

use crate::records::case::Step;

/// The environment variable that selects fault points.
pub const ENV: &str = "CERTRESPONDER_FAULT";

/// Kills this process with SIGKILL if `phase:step` is a selected fault point.
pub fn point(phase: &str, step: Step) {
    let Ok(points) = std::env::var(ENV) else {
        return;
    };
    let wanted = format!("{phase}:{}", step.as_str());
    if points.split(',').any(|p| p.trim() == wanted) {
        kill_self(&wanted);
    }
}

fn kill_self(at: &str) -> ! {
    tracing::warn!(
        fault = at,
        "fault injection: killing this process with SIGKILL"
    );
    // `kill(1)` sends the real SIGKILL without unsafe code; should it be missing, abort
    // still ends the process without running destructors or flushing anything.
    let _ = std::process::Command::new("kill")
        .args(["-s", "KILL", &std::process::id().to_string()])
        .status();
    std::process::abort()
}
