//! The blast-radius breaker: its status, and closing it by hand.

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{Ctx, Op, Role, Service, ServiceError};
use crate::govern::approvals::BreakerStatus;

/// No arguments.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NoArgs {}

/// Whether the breaker is open, the counts in its window and the cases it holds.
pub struct BreakerStatusOp;

impl Op for BreakerStatusOp {
    const NAME: &'static str = "breaker_status";
    const CHANGES: bool = false;
    const ROLE: Role = Role::Read;
    type Args = NoArgs;
    type Output = BreakerStatus;

    fn run(svc: &Service, _ctx: &Ctx<'_>, _: NoArgs) -> Result<BreakerStatus, ServiceError> {
        Ok(svc.governor()?.breaker_status(Utc::now())?)
    }
}

/// What closing the breaker did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reset {
    /// Who closed it.
    pub by: String,
    /// Whether it was open.
    pub was_open: bool,
    /// The breaker afterwards.
    pub status: BreakerStatus,
}

/// Closes the breaker (held cases still wait for approval; the window's revocations still
/// count toward the limit). Audited as the caller.
pub struct BreakerReset;

impl Op for BreakerReset {
    const NAME: &'static str = "breaker_reset";
    const CHANGES: bool = true;
    const ROLE: Role = Role::Admin;
    type Args = NoArgs;
    type Output = Reset;

    fn run(svc: &Service, ctx: &Ctx<'_>, _: NoArgs) -> Result<Reset, ServiceError> {
        let gov = svc.governor()?;
        let was_open = gov.breaker_reset(&ctx.who)?;
        Ok(Reset {
            by: ctx.who.to_string(),
            was_open,
            status: gov.breaker_status(Utc::now())?,
        })
    }
}
