//! Certificate Transparency signals (family `ct`), as libraries: which certificate names
//! are ours ([`names`], [`watch`]) and whether a certificate carries enough valid embedded
//! SCTs ([`sct`], raising `sct_insufficient`).
//!
//! Not here yet: following CT logs, the log-list configuration, the CLI and the stored
//! signals.

pub mod names;
mod punycode;
pub mod sct;
mod tbs;
pub mod watch;

#[cfg(test)]
mod tests;

pub use names::{UNPARSABLE, names_of, normalize_name};
pub use sct::{LogKeys, LogMeta, Sct, SctError, SctReport, SctStatus, SctVerdict, check_scts};
pub use watch::{Pattern, PatternKind, RejectedEntry, WatchList};
