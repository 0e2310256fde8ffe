//! Use cases as operations: a name, arguments and a result that cross the control socket
//! as JSON, and the one table of them ([`dispatch`]). Adding a use case to the daemon is
//! one `impl Op` and one line in [`ops!`].

use serde::Serialize;
use serde::de::Deserialize as _;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Ctx, Role, Service, ServiceError};

/// A use case the CLI can run in its own process or have the daemon run.
pub trait Op {
    /// Its name on the socket: `POST /v1/ops/{NAME}`.
    const NAME: &'static str;
    /// Whether it changes anything (refused while the daemon is stopping).
    const CHANGES: bool;
    /// The role a caller of the control socket needs for it.
    const ROLE: Role;
    /// What it is asked.
    type Args: Serialize + DeserializeOwned + Send + 'static;
    /// What it answers.
    type Output: Serialize + DeserializeOwned + Send + 'static;
    /// Runs it.
    fn run(svc: &Service, ctx: &Ctx<'_>, args: Self::Args) -> Result<Self::Output, ServiceError>;

    /// The role these arguments need (some ask more of the caller: a forced rollback).
    fn role(_args: &Self::Args) -> Role {
        Self::ROLE
    }
}

fn role_json<O: Op>(args: &Value) -> Result<Role, ServiceError> {
    let args = O::Args::deserialize(args).map_err(|e| {
        ServiceError::Input(format!(
            "the request for `{}` cannot be read: {e} (is the command the same release as the daemon?)",
            O::NAME
        ))
    })?;
    Ok(O::role(&args))
}

fn run_json<O: Op>(svc: &Service, ctx: &Ctx<'_>, args: Value) -> Result<Value, ServiceError> {
    let args: O::Args = serde_json::from_value(args).map_err(|e| {
        ServiceError::Input(format!(
            "the request for `{}` cannot be read: {e} (is the command the same release as the daemon?)",
            O::NAME
        ))
    })?;
    let out = O::run(svc, ctx, args)?;
    serde_json::to_value(out)
        .map_err(|e| ServiceError::Failed(format!("the answer cannot be written: {e}")))
}

macro_rules! ops {
    ($($op:ty),* $(,)?) => {
        /// Runs the operation `name` with its arguments as JSON and answers its result as
        /// JSON; an unknown name is [`ServiceError::NotFound`].
        pub fn dispatch(
            name: &str,
            svc: &Service,
            ctx: &Ctx<'_>,
            args: Value,
        ) -> Result<Value, ServiceError> {
            $(
                if name == <$op as Op>::NAME {
                    return run_json::<$op>(svc, ctx, args);
                }
            )*
            Err(ServiceError::NotFound(format!(
                "there is no operation `{name}` (known: {})",
                op_names().iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            )))
        }

        /// The role the operation `name` needs with these arguments.
        pub fn required_role(name: &str, args: &Value) -> Result<Role, ServiceError> {
            $(
                if name == <$op as Op>::NAME {
                    return role_json::<$op>(args);
                }
            )*
            Err(ServiceError::NotFound(format!("there is no operation `{name}`")))
        }

        /// Every operation's name, and whether it changes anything.
        pub fn op_names() -> &'static [(&'static str, bool)] {
            &[$((<$op as Op>::NAME, <$op as Op>::CHANGES)),*]
        }
    };
}

ops!(
    super::respond::ReportCompromise,
    super::respond::Reissue,
    super::respond::Respond,
    super::respond::RespondDryRun,
    super::history::History,
    super::cases::List,
    super::cases::Show,
    super::cases::Approve,
    super::cases::Deny,
    super::cases::Rollback,
    super::cases::Retry,
    super::cases::RevokeOld,
    super::inventory::Add,
    super::inventory::Remove,
    super::inventory::Show,
    super::scan::Scan,
    super::exposure::RecordExposure,
    super::policy::PolicySubject,
    super::distrust::BeginDistrust,
    super::distrust::ReportOn,
    super::distrust::ListDistrusts,
    super::distrust::RemoveDistrust,
    super::policy::SharedWithInventory,
    super::ct::Status,
    super::ct::Poll,
    super::ct::WatchAdd,
    super::ct::WatchRemove,
    super::ct::WatchList,
    super::signals::List,
    super::signals::Suppress,
    super::inventory::List,
    super::govern::BreakerStatusOp,
    super::govern::BreakerReset,
    super::audit::Verify,
    super::audit::Export,
    super::blocklist::Import,
    super::blocklist::Remove,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_names_every_operation() {
        let readme = include_str!("../../README.md");
        for (n, _) in op_names() {
            assert!(
                readme.contains(&format!("`{n}`")),
                "README.md does not name `{n}`"
            );
        }
    }

    #[test]
    fn names_are_unique_paths() {
        let names = op_names();
        let mut seen = std::collections::HashSet::new();
        for (n, _) in names {
            assert!(seen.insert(*n), "{n} twice");
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c == '-'),
                "{n}"
            );
        }
    }
}
