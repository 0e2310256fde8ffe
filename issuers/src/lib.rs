//! certresponder's issuers: the [`Issuer`] trait through which the responder issues and
//! revokes, its adapters (the internal CA, ACME, an external command), key generation by
//! profile, the storage adapters keep their state in, and the conformance suite every adapter
//! must pass.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod acme;
pub mod command;
pub mod config;
pub mod conformance;
mod error;
pub mod http01;
pub mod internal_ca;
mod issuer;
mod jws;
pub mod keygen;
pub mod process;
pub mod storage;

pub use acme::AcmeIssuer;
pub use error::IssuerError;
pub use internal_ca::InternalCa;
pub use issuer::{
    CertStatus, Identifier, IssueRequest, IssuedChain, Issuer, RenewalWindow, RevocationReason,
    RevokeRequest,
};
pub use keygen::generate_key;
pub use storage::{IssuerStorage, MemoryStorage};
