//! certresponder: a certificate lifecycle responder. It keeps an inventory of the
//! certificates an organisation runs, watches them for compromise signals and answers each
//! signal with a governed revoke-and-reissue, keeping every earlier bundle for rollback.
#![forbid(unsafe_code)]

pub mod audit;
pub mod cli;
pub mod config;
pub mod ct;
pub mod daemon;
pub mod govern;
pub mod http_client;
pub mod issuers;
pub mod notify;
pub mod policy;
pub mod records;
pub mod registry;
pub mod respond;
pub mod service;
pub mod signals;
pub mod store;
