//! A certificate's bundle history.

use certresponder_inventory::Bundle;
use serde::{Deserialize, Serialize};

use super::{Ctx, Op, Role, Service, ServiceError};

/// `history NAME`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryArgs {
    /// The certificate's inventory name.
    pub name: String,
}

/// A bundle as the history shows it: its metadata, never its private key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundleSummary {
    /// The bundle id.
    pub id: String,
    /// current, previous or revoked.
    pub state: certresponder_inventory::BundleState,
    /// When it was revoked, if it was.
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The leaf's serial, hex.
    pub serial: String,
    /// The leaf's issuer.
    pub issuer: String,
    /// The leaf's notAfter.
    pub not_after: chrono::DateTime<chrono::Utc>,
    /// When it was recorded.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Where it came from.
    pub origin: String,
    /// SHA-256 of the leaf, hex.
    pub cert_sha256: String,
    /// SHA-256 of the leaf's SPKI, hex.
    pub spki_sha256: String,
}

impl BundleSummary {
    /// The summary of `b`.
    pub fn of(b: &Bundle) -> Self {
        Self {
            id: b.id.clone(),
            state: b.state,
            revoked_at: b.revoked_at,
            serial: b.serial.clone(),
            issuer: b.issuer.clone(),
            not_after: b.not_after,
            created_at: b.created_at,
            origin: b.origin.clone(),
            cert_sha256: b.fingerprints.cert_sha256.clone(),
            spki_sha256: b.fingerprints.spki_sha256.clone(),
        }
    }

    /// Whether it was revoked, whatever its state says.
    pub fn is_revoked(&self) -> bool {
        self.state == certresponder_inventory::BundleState::Revoked || self.revoked_at.is_some()
    }
}

/// Lists a certificate's bundles, oldest first.
pub struct History;

impl Op for History {
    const NAME: &'static str = "history";
    const CHANGES: bool = false;
    const ROLE: Role = Role::Read;
    type Args = HistoryArgs;
    type Output = Vec<BundleSummary>;

    fn run(
        svc: &Service,
        ctx: &Ctx<'_>,
        args: HistoryArgs,
    ) -> Result<Vec<BundleSummary>, ServiceError> {
        svc.sync_inventory(ctx)?;
        let store = svc.store();
        if store.get_cert(&args.name)?.is_none() {
            return Err(ServiceError::Input(format!(
                "no certificate named `{}` is registered (see `certresponder inventory list`)",
                args.name
            )));
        }
        Ok(store
            .bundles(&args.name)?
            .iter()
            .map(BundleSummary::of)
            .collect())
    }
}
