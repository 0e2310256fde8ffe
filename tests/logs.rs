//! Log lines on stderr are plain text when stderr is a file or a pipe: no colour codes for
//! a log collector or a file to carry.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Home, text};

#[test]
fn logs_to_a_pipe_carry_no_colour_codes() {
    let h = Home::new();
    // `breaker reset` logs a warning (the reset is worth a line in any log).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_certresponder"))
        .arg("--config")
        .arg(h.config())
        .args(["breaker", "reset"])
        .env_remove("NO_COLOR")
        .env_remove("CERTRESPONDER_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("WARN"), "no log line to look at: {err}");
    assert!(!err.contains('\u{1b}'), "colour codes in a pipe: {err:?}");
}
