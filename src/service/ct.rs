//! Certificate Transparency: the logs' state, one polling pass, the watch list.

use std::collections::BTreeMap;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{Ctx, Op, Role, Service, ServiceError};
use crate::ct::poll::{self, LogState, PollReport};
use crate::signals::SignalState;

/// No arguments.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NoArgs {}

/// Each configured log's state, by name.
pub struct Status;

impl Op for Status {
    const NAME: &'static str = "ct_status";
    const CHANGES: bool = false;
    const ROLE: Role = Role::Read;
    type Args = NoArgs;
    type Output = BTreeMap<String, LogState>;

    fn run(
        svc: &Service,
        _ctx: &Ctx<'_>,
        _: NoArgs,
    ) -> Result<BTreeMap<String, LogState>, ServiceError> {
        Ok(poll::status(svc.store(), &svc.config().ct)?)
    }
}

/// What a polling pass did, and how many unauthorized-issuance signals are open after it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Polled {
    /// The pass.
    pub report: PollReport,
    /// `ct_unauthorized_issuance` signals open now.
    pub open: usize,
}

/// Reads what the configured logs added since the last pass and raises a signal for each
/// certificate for a watched name that is not in the authorization ledger. In the daemon it
/// waits for the job running, if any.
pub struct Poll;

impl Op for Poll {
    const NAME: &'static str = "ct_poll";
    const CHANGES: bool = true;
    const ROLE: Role = Role::Operate;
    type Args = NoArgs;
    type Output = Polled;

    fn run(svc: &Service, ctx: &Ctx<'_>, _: NoArgs) -> Result<Polled, ServiceError> {
        let cfg = svc.config();
        if cfg.ct.logs.is_empty() {
            return Err(ServiceError::Input(
                "no CT log is configured: add [[ct_log]] tables (name, url, key) to the configuration".into(),
            ));
        }
        let _turn = ctx.host.exclusive();
        let store = svc.store();
        cfg.sync_inventory(store, Utc::now())?;
        let report = super::block_on(poll::poll(store, &cfg.ct, &cfg.notify, Utc::now()))?
            .map_err(|e| ServiceError::Failed(e.to_string()))?;
        let open = store
            .list_signals()?
            .into_iter()
            .filter(|s| s.check == poll::CHECK && matches!(s.state, SignalState::Open))
            .count();
        Ok(Polled { report, open })
    }
}

/// A watch-list pattern.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PatternArgs {
    /// The pattern (`example.com`, `*.example.com`).
    pub pattern: String,
}

/// Adds a pattern to the recorded watch list; answers whether it was there already.
pub struct WatchAdd;

impl Op for WatchAdd {
    const NAME: &'static str = "ct_watch_add";
    const CHANGES: bool = true;
    const ROLE: Role = Role::Operate;
    type Args = PatternArgs;
    type Output = bool;

    fn run(svc: &Service, _ctx: &Ctx<'_>, args: PatternArgs) -> Result<bool, ServiceError> {
        let pattern = args.pattern;
        let mut probe = crate::signals::ct::WatchList::new();
        probe
            .add(&pattern)
            .map_err(|e| ServiceError::Input(format!("`{pattern}`: {e}")))?;
        let mut list = poll::recorded_watch(svc.store())?;
        if list.contains(&pattern) {
            return Ok(true);
        }
        list.push(pattern);
        poll::save_watch(svc.store(), &list)?;
        Ok(false)
    }
}

/// Removes a pattern added with [`WatchAdd`].
pub struct WatchRemove;

impl Op for WatchRemove {
    const NAME: &'static str = "ct_watch_remove";
    const CHANGES: bool = true;
    const ROLE: Role = Role::Operate;
    type Args = PatternArgs;
    type Output = ();

    fn run(svc: &Service, _ctx: &Ctx<'_>, args: PatternArgs) -> Result<(), ServiceError> {
        let pattern = args.pattern;
        let mut list = poll::recorded_watch(svc.store())?;
        let before = list.len();
        list.retain(|p| p != &pattern);
        if list.len() == before {
            return Err(ServiceError::Input(format!(
                "`{pattern}` was not added with `ct watch add`{}",
                if svc.config().ct.domains.contains(&pattern) {
                    "; it is in the configuration's [ct] domains"
                } else {
                    ""
                }
            )));
        }
        poll::save_watch(svc.store(), &list)?;
        Ok(())
    }
}

/// The watch list: each pattern with where it comes from, and what cannot be watched.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Watched {
    /// (pattern, from).
    pub rows: Vec<(String, String)>,
    /// Entries that could not be used, with why.
    pub rejected: Vec<String>,
}

/// Lists the watch list: the inventory's names, the configured domains, the recorded
/// patterns.
pub struct WatchList;

impl Op for WatchList {
    const NAME: &'static str = "ct_watch_list";
    const CHANGES: bool = true;
    const ROLE: Role = Role::Read;
    type Args = NoArgs;
    type Output = Watched;

    fn run(svc: &Service, _ctx: &Ctx<'_>, _: NoArgs) -> Result<Watched, ServiceError> {
        let (store, cfg) = (svc.store(), svc.config());
        cfg.sync_inventory(store, Utc::now())?;
        let recorded = poll::recorded_watch(store)?;
        let poll::Watch {
            owner_of, rejected, ..
        } = poll::watch_list(store, &cfg.ct)?;
        let mut rows: Vec<(String, String)> = Vec::new();
        let mut names: Vec<(&String, &String)> = owner_of.iter().collect();
        names.sort();
        for (n, c) in names {
            rows.push((n.clone(), format!("inventory ({c})")));
        }
        for d in &cfg.ct.domains {
            rows.push((d.clone(), "configuration".into()));
        }
        for r in &recorded {
            rows.push((r.clone(), "ct watch add".into()));
        }
        Ok(Watched { rows, rejected })
    }
}
