//! `scan`: every detector over the registered inventory, and the checks that ask the CAs.

use std::collections::BTreeMap;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{Ctx, Op, Role, Service, ServiceError};
use crate::signals::Signal;
use crate::signals::ca::Scheduled;

/// `scan [--no-ca]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScanArgs {
    /// Skip the checks that ask the CAs.
    pub no_ca: bool,
}

/// A CA-side check that could not be made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaProblem {
    /// The certificate.
    pub cert: String,
    /// The check.
    pub check: String,
    /// What went wrong, naming the source.
    pub message: String,
}

/// What the CA-side checks did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaSummary {
    /// Certificates checked.
    pub checked: usize,
    /// Checks that could not be made.
    pub problems: Vec<CaProblem>,
    /// Renewals planned inside their ARI window.
    pub scheduled: Vec<Scheduled>,
    /// `unconfirmed` cases whose revocation the CA now reports: closed.
    #[serde(default)]
    pub confirmed: Vec<u64>,
}

/// What a scan found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScanOutcome {
    /// Certificates scanned.
    pub scanned: usize,
    /// Signals raised for the first time.
    pub new: Vec<Signal>,
    /// Signals seen again.
    pub seen_again: Vec<Signal>,
    /// Signals whose finding is gone.
    pub resolved: Vec<Signal>,
    /// The CA-side checks, unless skipped.
    pub ca: Option<CaSummary>,
}

impl ScanOutcome {
    /// The signals of this scan that are open now.
    pub fn open(&self) -> Vec<&Signal> {
        let now = Utc::now();
        self.new
            .iter()
            .chain(&self.seen_again)
            .filter(|s| s.is_open(now))
            .collect()
    }
}

/// Runs every detector and stores the signals; decides nothing (`respond`, or the daemon's
/// next job, acts on them). In the daemon it waits for the job running, if any: scans never
/// overlap.
pub struct Scan;

impl Op for Scan {
    const NAME: &'static str = "scan";
    const CHANGES: bool = true;
    const ROLE: Role = Role::Operate;
    type Args = ScanArgs;
    type Output = ScanOutcome;

    fn run(svc: &Service, ctx: &Ctx<'_>, args: ScanArgs) -> Result<ScanOutcome, ServiceError> {
        let _turn = ctx.host.exclusive();
        let cfg = svc.config();
        let store = svc.store();
        let now = Utc::now();
        let mut report = crate::signals::scan::scan(store, &cfg.scan_settings(), now)
            .map_err(|e| ServiceError::Failed(e.to_string()))?;
        let ca = if args.no_ca {
            None
        } else {
            let mut issuers = BTreeMap::new();
            for spec in &cfg.issuers {
                // An internal CA not created yet has signed nothing; asking it would create it.
                if let certresponder_issuers::config::IssuerKind::InternalCa(c) = &spec.kind
                    && !c.dir.join("ca.pem").exists()
                {
                    continue;
                }
                match crate::issuers::build_one(cfg, spec, store) {
                    Ok(i) => {
                        issuers.insert(spec.id.clone(), i);
                    }
                    Err(e) => ctx.note(format!(
                        "issuer `{}` cannot be set up, so its status and renewal information are not asked: {e}",
                        spec.id
                    )),
                }
            }
            let replaced = crate::respond::engine::awaiting_revocation(store)?;
            let ca = super::block_on(crate::signals::ca::run(store, &issuers, &replaced, now))?
                .map_err(|e| ServiceError::Failed(e.to_string()))?;
            let confirmed = reconfirm(svc, ctx)?;
            report.new.extend(ca.signals.new);
            report.seen_again.extend(ca.signals.seen_again);
            report.resolved.extend(ca.signals.resolved);
            Some(CaSummary {
                checked: ca.checked,
                problems: ca
                    .problems
                    .into_iter()
                    .map(|p| CaProblem {
                        cert: p.cert,
                        check: p.check.to_string(),
                        message: p.message,
                    })
                    .collect(),
                scheduled: ca.scheduled,
                confirmed,
            })
        };
        Ok(ScanOutcome {
            scanned: report.scanned,
            new: report.new,
            seen_again: report.seen_again,
            resolved: report.resolved,
            ca,
        })
    }
}

/// Asks again about the revocations of the `unconfirmed` cases, if there are any.
fn reconfirm(svc: &Service, ctx: &Ctx<'_>) -> Result<Vec<u64>, ServiceError> {
    let waiting = svc
        .store()
        .list_cases()?
        .iter()
        .any(|c| c.state == crate::respond::CaseState::Unconfirmed);
    if !waiting {
        return Ok(Vec::new());
    }
    let engine = match svc.governor() {
        Ok(g) => std::sync::Arc::clone(g.engine()),
        Err(e) => {
            ctx.note(format!(
                "unconfirmed revocations are not asked about again: {e}"
            ));
            return Ok(Vec::new());
        }
    };
    super::block_on(engine.reconfirm())?.map_err(|e| ServiceError::Failed(e.to_string()))
}
