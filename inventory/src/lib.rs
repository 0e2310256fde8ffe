//! certresponder's inventory: the model of managed certificates, inventory file loading and
//! validation, bundles, and X.509 inspection (certificates, chains, keys, CSRs, with the
//! SHA-256, SPKI and RFC 6962 TBS fingerprints).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bundle;
mod error;
pub mod fs;
pub mod inspect;
mod load;
mod model;
mod suggest;

pub use bundle::{Bundle, BundleState, SecretPem};
pub use error::{InventoryError, Location};
pub use inspect::Fingerprints;
pub use load::{
    ENTRY_FIELDS, LoadOptions, LoadReport, check_files, inventory_files, load_dir, load_files,
    parse_file,
};
pub use model::{
    CertId, CertKind, ExpiryThreshold, KeyProfile, ManagedCert, Paths, Priority, Trust,
    VerifyEndpoint,
};
pub use suggest::did_you_mean;
