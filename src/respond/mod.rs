//! Response: turning a decision into a durable sequence (snapshot, new key, issue, check,
//! record, deploy, reload, verify, revoke, confirm, close) that survives crashes, never
//! leaves a service without a valid bundle, and rolls back to the previous bundle kept in
//! the store.

pub mod deploy;
pub mod engine;
pub mod fault;
pub mod reload;
pub mod rollback;
pub mod settings;
mod steps;
pub mod verify;

pub use crate::records::case::{Case, CaseState, SequenceKind, Step};
pub use engine::{Engine, RespondError};
