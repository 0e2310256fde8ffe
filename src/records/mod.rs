//! The records certresponder keeps: cases with their step journal and the CT authorization
//! ledger (`case`), signals (`signal`) and the policy decisions cases carry (`decision`).
//! The store persists them and every other module works on them; this module depends on
//! nothing of the responder above it, so the data flows one way: detectors and the engine
//! write records, the store keeps them.

pub mod case;
pub mod decision;
pub mod signal;
