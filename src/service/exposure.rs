//! Private keys found outside their deployment (by `exposure scan` in a command's own
//! process, or in a secret scanner's report the command read), matched to the inventory:
//! a match is a confirmed `key_exposed` signal. The command reads the files with its
//! caller's permissions and sends only the public halves of the keys it found, with where.

use certresponder_inventory::inspect::{KeyInfo, KeyWire};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{Ctx, Op, Role, Service, ServiceError};
use crate::signals::exposure::record::{ExposureReport, record};
use crate::signals::exposure::{FoundKey, Location};

/// A found key as it travels: its public half, how it was encoded, where.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Found {
    /// The public key.
    pub public: KeyWire,
    /// How it was encoded (`pem`, `der`, `pkcs12`, `jwk`, `openssh`, `putty`, `base64`).
    pub format: String,
    /// Where.
    pub location: Location,
}

impl From<&FoundKey> for Found {
    fn from(f: &FoundKey) -> Self {
        Self {
            public: KeyWire::from(&f.public),
            format: f.format.to_string(),
            location: f.location.clone(),
        }
    }
}

/// The encodings a found key can have.
const FORMATS: &[&str] = &["pem", "der", "pkcs12", "jwk", "openssh", "putty", "base64"];

impl TryFrom<Found> for FoundKey {
    type Error = String;

    fn try_from(f: Found) -> Result<Self, String> {
        let format = FORMATS
            .iter()
            .find(|x| **x == f.format)
            .copied()
            .unwrap_or("other");
        Ok(Self {
            public: KeyInfo::try_from(f.public)?,
            format,
            location: f.location,
        })
    }
}

/// Keys found, to match.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordArgs {
    /// The keys.
    pub found: Vec<Found>,
}

/// Matches found keys to the inventory (brought in line with the inventory files first)
/// and stores each match as a `key_exposed` signal.
pub struct RecordExposure;

impl Op for RecordExposure {
    const NAME: &'static str = "exposure_record";
    const CHANGES: bool = true;
    const ROLE: Role = Role::Report;
    type Args = RecordArgs;
    type Output = ExposureReport;

    fn run(svc: &Service, ctx: &Ctx<'_>, args: RecordArgs) -> Result<ExposureReport, ServiceError> {
        let found = args
            .found
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                FoundKey::try_from(f).map_err(|e| ServiceError::field(&format!("found[{i}]"), e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let now = Utc::now();
        let sync = svc.config().sync_inventory(svc.store(), now)?;
        if !sync.errors.is_empty() {
            ctx.warn(format!(
                "{} inventory error(s); the affected certificates are matched by their last registered entry (see `certresponder inventory validate`)",
                sync.errors.len()
            ));
        }
        Ok(record(svc.store(), &found, now)?)
    }
}
