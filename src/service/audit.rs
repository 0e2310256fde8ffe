//! The hash-chained audit log: verify it, export it. Both only read.

use serde::{Deserialize, Serialize};

use super::{Ctx, Op, Role, Service, ServiceError};
use crate::audit::{self, AuditRecord, Head, VerifyReport};

/// Refuses to read a database that is not there: nothing was recorded yet, or the
/// configuration names another state directory.
fn existing(svc: &Service) -> Result<(), ServiceError> {
    match svc.missing_database() {
        Some(path) => Err(ServiceError::Input(format!(
            "no database at {}: nothing has been recorded yet, or the configuration names another state_dir",
            path.display()
        ))),
        None => Ok(()),
    }
}

/// `audit verify [--head SEQ:HASH]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VerifyArgs {
    /// A head noted earlier that the chain must still contain.
    pub head: Option<String>,
}

/// Checks that every record is intact, in place and linked to the one before it.
pub struct Verify;

impl Op for Verify {
    const NAME: &'static str = "audit_verify";
    const CHANGES: bool = false;
    const ROLE: Role = Role::Read;
    type Args = VerifyArgs;
    type Output = VerifyReport;

    fn run(svc: &Service, _ctx: &Ctx<'_>, args: VerifyArgs) -> Result<VerifyReport, ServiceError> {
        if let Some(h) = &args.head {
            Head::parse(h).map_err(|e| ServiceError::field("--head", e))?;
        }
        existing(svc)?;
        Ok(audit::verify(svc.store(), args.head.as_deref())?)
    }
}

/// `audit export` filters.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExportArgs {
    /// Only records from this sequence number on.
    pub since: Option<u64>,
    /// Only records about this case.
    pub case: Option<u64>,
    /// Only records about this certificate.
    pub cert: Option<String>,
}

/// The records, filtered.
pub struct Export;

impl Op for Export {
    const NAME: &'static str = "audit_export";
    const CHANGES: bool = false;
    const ROLE: Role = Role::Read;
    type Args = ExportArgs;
    type Output = Vec<AuditRecord>;

    fn run(
        svc: &Service,
        _ctx: &Ctx<'_>,
        args: ExportArgs,
    ) -> Result<Vec<AuditRecord>, ServiceError> {
        existing(svc)?;
        let records = audit::records(svc.store()).map_err(|e| {
            ServiceError::Failed(format!(
                "{e}; `certresponder audit verify` reports every damaged record"
            ))
        })?;
        Ok(records
            .into_iter()
            .filter(|r| args.since.is_none_or(|s| r.seq >= s))
            .filter(|r| args.case.is_none_or(|c| r.case == Some(c)))
            .filter(|r| {
                args.cert
                    .as_deref()
                    .is_none_or(|c| r.cert.as_deref() == Some(c))
            })
            .collect())
    }
}
