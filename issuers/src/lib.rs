//! certresponder's issuers: key generation by profile and the internal certificate
//! authority. The `Issuer` trait, the ACME and external-command adapters and their
//! conformance suite build on these.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod internal_ca;
pub mod keygen;

pub use error::IssuerError;
pub use internal_ca::{InternalCa, IssuedCert};
pub use keygen::generate_key;
