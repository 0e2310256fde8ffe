//! Signal detectors, one module per family.

pub mod analyze;
pub mod ca;
pub mod ct;
pub mod exposure;
pub mod finding;
pub mod permissions;
pub mod scan;
pub mod shared;
pub mod state;
pub mod weak;

pub use crate::records::signal::{Confidence, Handled, Signal, SignalState};
pub use finding::Finding;
