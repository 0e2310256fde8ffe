//! What the policy needs from the store to explain itself about one certificate: its entry
//! and the open signal of a check. The explanation is made by whoever holds the policy file.

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{Ctx, Op, Role, Service, ServiceError};
use crate::signals::{Finding, Signal};
use crate::store::{CertRecord, CertStatus};

/// `policy explain NAME CHECK`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubjectArgs {
    /// The certificate.
    pub name: String,
    /// The check.
    pub check: String,
}

/// The certificate's record and its newest open signal of the check.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Subject {
    /// The record.
    pub record: CertRecord,
    /// The open signal, if any.
    pub signal: Option<Signal>,
}

/// Finds the certificate (the inventory brought into the store first) and its open signal.
pub struct PolicySubject;

impl Op for PolicySubject {
    const NAME: &'static str = "policy_subject";
    const CHANGES: bool = true;
    const ROLE: Role = Role::Read;
    type Args = SubjectArgs;
    type Output = Subject;

    fn run(svc: &Service, _ctx: &Ctx<'_>, args: SubjectArgs) -> Result<Subject, ServiceError> {
        let (store, name) = (svc.store(), args.name.as_str());
        let now = Utc::now();
        svc.config().sync_inventory(store, now)?;
        let Some(record) = store.get_cert(name)? else {
            let known: Vec<String> = store
                .list_certs()?
                .into_iter()
                .filter(|r| r.status == CertStatus::Active)
                .map(|r| r.entry.name.to_string())
                .collect();
            let known: Vec<&str> = known.iter().map(String::as_str).collect();
            let hint = certresponder_inventory::did_you_mean(name, &known)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            return Err(ServiceError::Input(format!(
                "no registered certificate named `{name}`{hint}"
            )));
        };
        if record.status == CertStatus::Removed {
            return Err(ServiceError::Input(format!(
                "`{name}` was removed from the inventory; the policy no longer applies to it"
            )));
        }
        let signal = store
            .list_signals()?
            .into_iter()
            .filter(|s| s.subject == name && s.check == args.check && s.is_open(now))
            .max_by_key(|s| s.last_seen);
        Ok(Subject { record, signal })
    }
}

/// RSA moduli to check against the inventory's (`analyze --against-inventory`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModuliArgs {
    /// Each modulus, big-endian hex.
    pub moduli: Vec<String>,
}

/// For each modulus, the finding when it shares a prime with an inventory key (by the
/// product `scan` stores).
pub struct SharedWithInventory;

impl Op for SharedWithInventory {
    const NAME: &'static str = "shared_with_inventory";
    const CHANGES: bool = false;
    const ROLE: Role = Role::Read;
    type Args = ModuliArgs;
    type Output = Vec<Option<Finding>>;

    fn run(
        svc: &Service,
        _ctx: &Ctx<'_>,
        args: ModuliArgs,
    ) -> Result<Vec<Option<Finding>>, ServiceError> {
        let store = svc.store();
        let Some(product) = crate::signals::shared::InventoryProduct::load(store)? else {
            return Ok(vec![None; args.moduli.len()]);
        };
        args.moduli
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let m =
                    hex::decode(m).map_err(|e| ServiceError::field(&format!("moduli[{i}]"), e))?;
                Ok(product.check(store, &m)?)
            })
            .collect()
    }
}
