//! Reading a request: its route, its query and its JSON body, each refused with the
//! reason (and the field at fault) when it is not what the API takes.

use http::{Method, StatusCode, Uri};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::govern::GovernError;
use crate::respond::RespondError;
use crate::service::ServiceError;
use crate::store::StoreError;

/// A request's failure: the status and the reason given to the client.
#[derive(Debug)]
pub(super) struct ApiError {
    pub(super) status: StatusCode,
    pub(super) message: String,
    pub(super) allow: Option<&'static str>,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            allow: None,
        }
    }

    pub(super) fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub(super) fn field(name: &str, message: impl std::fmt::Display) -> Self {
        Self::bad(format!("field `{name}`: {message}"))
    }

    pub(super) fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::internal(e)
    }
}

impl From<RespondError> for ApiError {
    fn from(e: RespondError) -> Self {
        let status = match &e {
            RespondError::UnknownCert(_)
            | RespondError::Removed(_)
            | RespondError::NotActionable { .. } => StatusCode::BAD_REQUEST,
            RespondError::UnknownCase(_) => StatusCode::NOT_FOUND,
            RespondError::Busy { .. } => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, e.to_string())
    }
}

impl From<GovernError> for ApiError {
    fn from(e: GovernError) -> Self {
        match e {
            GovernError::Refused(why) => Self::new(StatusCode::FORBIDDEN, why),
            GovernError::Respond(e) => e.into(),
            other => Self::internal(other),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let status = match &e {
            ServiceError::Input(_) => StatusCode::BAD_REQUEST,
            ServiceError::Refused(_) => StatusCode::FORBIDDEN,
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Busy(_) => StatusCode::CONFLICT,
            ServiceError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, e.to_string())
    }
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    Status,
    Inventory { all: bool },
    Signals { all: bool },
    PostSignal,
    Cases,
    Case(u64),
    Approve(u64),
    Deny(u64),
    Rollback,
    Distrust,
    Distrusts,
    DistrustRun(u64),
    RunJob(&'static str),
}

impl Route {
    pub(super) fn changes(self) -> bool {
        matches!(
            self,
            Self::PostSignal
                | Self::Approve(_)
                | Self::Deny(_)
                | Self::Rollback
                | Self::Distrust
                | Self::RunJob(_)
        )
    }
}

pub(super) fn case_number(s: &str) -> Result<u64, ApiError> {
    s.parse::<u64>()
        .map_err(|_| ApiError::bad(format!("`{s}` is not a case number")))
}

/// The route for a method and URI: 404 for an unknown path, 405 for a known path with the
/// wrong method, 400 for a query it does not take.
pub(super) fn route(method: &Method, uri: &Uri) -> Result<Route, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no such path: {}", uri.path()),
        )
    };
    let segs: Vec<&str> = uri
        .path()
        .strip_prefix("/v1/")
        .ok_or_else(not_found)?
        .split('/')
        .collect();
    if segs.iter().any(|s| s.is_empty()) {
        return Err(not_found());
    }
    let route = match (segs.as_slice(), method) {
        (["status"], &Method::GET) => Route::Status,
        (["inventory"], &Method::GET) => Route::Inventory { all: false },
        (["signals"], &Method::GET) => Route::Signals { all: false },
        (["signals"], &Method::POST) => Route::PostSignal,
        (["cases"], &Method::GET) => Route::Cases,
        (["cases", id], &Method::GET) => Route::Case(case_number(id)?),
        (["cases", id, "approve"], &Method::POST) => Route::Approve(case_number(id)?),
        (["cases", id, "deny"], &Method::POST) => Route::Deny(case_number(id)?),
        (["rollback"], &Method::POST) => Route::Rollback,
        (["distrust"], &Method::POST) => Route::Distrust,
        (["jobs", job, "run"], &Method::POST) => {
            let Some(known) = crate::daemon::schedule::JOBS.iter().find(|j| *j == job) else {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!(
                        "there is no job `{job}` (jobs: {})",
                        crate::daemon::schedule::JOBS.join(", ")
                    ),
                ));
            };
            Route::RunJob(known)
        }
        (["distrust"], &Method::GET) => Route::Distrusts,
        (["distrust", run], &Method::GET) => Route::DistrustRun(
            run.parse::<u64>()
                .map_err(|_| ApiError::bad(format!("`{run}` is not a distrust run number")))?,
        ),
        (path, _) => {
            let allow = match path {
                ["status" | "inventory" | "cases"] | ["cases", _] => "GET",
                ["signals" | "distrust"] => "GET, POST",
                ["distrust", _] => "GET",
                ["jobs", _, "run"] => "POST",
                ["cases", _, "approve" | "deny"] | ["rollback"] => "POST",
                _ => return Err(not_found()),
            };
            return Err(ApiError {
                allow: Some(allow),
                ..ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    format!("{} takes {allow}, not {method}", uri.path()),
                )
            });
        }
    };
    let all = query_all(
        uri.query(),
        matches!(route, Route::Inventory { .. } | Route::Signals { .. }),
    )?;
    Ok(match route {
        Route::Inventory { .. } => Route::Inventory { all },
        Route::Signals { .. } => Route::Signals { all },
        other => other,
    })
}

/// The `all` flag of a listing's query (`all`, `all=1`, `all=true`, `all=0`,
/// `all=false`); any other parameter, or any query where none is taken, is refused.
pub(super) fn query_all(query: Option<&str>, takes_all: bool) -> Result<bool, ApiError> {
    let mut all = false;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, "1"));
        if k != "all" || !takes_all {
            return Err(ApiError::bad(format!("unknown query parameter `{k}`")));
        }
        all = match v {
            "1" | "true" => true,
            "0" | "false" => false,
            _ => {
                return Err(ApiError::bad(format!(
                    "query parameter `all`: `{v}` is not 1, true, 0 or false"
                )));
            }
        };
    }
    Ok(all)
}

/// Reads a JSON object into `T` (which denies unknown fields), naming the field at fault:
/// an unknown or missing one (serde names those), or one of the wrong type (found by
/// leaving each field out in turn). An empty body is `{}` when `empty_ok`.
pub(super) fn parse_body<T: DeserializeOwned>(bytes: &[u8], empty_ok: bool) -> Result<T, ApiError> {
    let value: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        if !empty_ok {
            return Err(ApiError::bad("the request needs a JSON object as its body"));
        }
        json!({})
    } else {
        serde_json::from_slice(bytes).map_err(|e| ApiError::bad(format!("malformed JSON: {e}")))?
    };
    let Value::Object(obj) = &value else {
        return Err(ApiError::bad("the body must be a JSON object"));
    };
    match serde_json::from_value::<T>(value.clone()) {
        Ok(t) => Ok(t),
        Err(e) => {
            let text = e.to_string();
            if text.contains("field `") {
                return Err(ApiError::bad(text));
            }
            let culprit = obj.keys().find(|k| {
                let mut without = obj.clone();
                without.remove(*k);
                match serde_json::from_value::<T>(Value::Object(without)) {
                    Ok(_) => true,
                    Err(e) => e.to_string().contains(&format!("missing field `{k}`")),
                }
            });
            Err(match culprit {
                Some(k) => ApiError::field(k, text),
                None => ApiError::bad(text),
            })
        }
    }
}

/// `POST /v1/cases/{id}/approve`: takes no fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ApproveBody {}

/// `POST /v1/cases/{id}/deny`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DenyBody {
    pub(super) reason: String,
}

/// `POST /v1/rollback`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RollbackBody {
    pub(super) cert: String,
    #[serde(default)]
    pub(super) to: Option<String>,
    #[serde(default)]
    pub(super) force: bool,
}

/// `POST /v1/jobs/{job}/run`: takes no fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RunJobBody {}

/// `POST /v1/distrust`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DistrustBody {
    /// The CA: its name, `spki:HEX` or `sha256:HEX`.
    pub(super) ca: String,
    #[serde(default)]
    pub(super) issued_after: Option<String>,
    #[serde(default)]
    pub(super) deadline: Option<String>,
    #[serde(default)]
    pub(super) issuer: Option<String>,
    #[serde(default)]
    pub(super) reason: Option<String>,
    /// List what it would affect; change nothing.
    #[serde(default)]
    pub(super) dry_run: bool,
    /// Forget a distrust recorded by the command.
    #[serde(default)]
    pub(super) remove: bool,
}

/// `POST /v1/signals`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SignalBody {
    pub(super) cert: String,
    pub(super) check: String,
    #[serde(default)]
    pub(super) confidence: Option<String>,
    pub(super) message: String,
    #[serde(default)]
    pub(super) evidence: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    pub(super) source: Option<String>,
}

/// The longest `message` accepted.
pub(super) const MAX_MESSAGE: usize = 2000;
/// The longest `source` accepted.
pub(super) const MAX_SOURCE: usize = 64;
