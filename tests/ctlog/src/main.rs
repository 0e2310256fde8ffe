//! `certresponder-test-ctlog`: a small but real Certificate Transparency log for tests and
//! benchmarks. It serves RFC 6962 (`/ct/v1/`) and static-ct-api (`/static/`), signs with an
//! ECDSA P-256 key kept in its directory, persists its entries there, and can misbehave on
//! request (`--fault`) so clients' verification paths can be tested.
#![forbid(unsafe_code)]

mod der;
mod fill;
mod log;
mod merkle;
mod server;
mod signer;
mod statics;
mod store;
mod tls;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::{Parser, Subcommand};
use serde_json::json;

use crate::log::{Fault, Log};
use crate::server::Mode;
use crate::signer::{Signer, pem_blocks};
use crate::store::Store;

#[derive(Parser)]
#[command(
    name = "certresponder-test-ctlog",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Directory holding the key and the entries.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Accepted roots (PEM); without it any chain is accepted.
    #[arg(long)]
    roots: Option<PathBuf>,
    /// Signing key (PKCS#8 PEM, ECDSA P-256); default DIR/log-key.pem, generated if missing.
    #[arg(long)]
    key: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "both")]
    mode: Mode,
    /// static-ct-api origin; default is the listen address.
    #[arg(long)]
    origin: Option<String>,
    #[arg(long, value_enum)]
    fault: Option<Fault>,
}

#[derive(Subcommand)]
enum Command {
    /// Append COUNT generated certificate entries to the log in DIR.
    Fill {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        count: u64,
        /// One DNS name per line; names are used in turn.
        #[arg(long, conflicts_with = "domain")]
        names_from: Option<PathBuf>,
        /// Generate names under this domain.
        #[arg(long, default_value = "example.test")]
        domain: String,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Fill {
        dir,
        count,
        names_from,
        domain,
    }) = cli.command
    {
        std::fs::create_dir_all(&dir)?;
        let names = names_from.map_or(fill::Names::Domain(domain), fill::Names::File);
        let start = std::time::Instant::now();
        let size = fill::fill(&dir, count, names)?;
        println!(
            "{}",
            json!({"tree_size": size, "added": count, "seconds": start.elapsed().as_secs_f64()})
        );
        return Ok(());
    }
    let Some(dir) = cli.dir.clone() else {
        bail!("--dir is required");
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(cli, dir))
}

async fn run(cli: Cli, dir: PathBuf) -> Result<()> {
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let signer = Signer::load_or_create(&dir, cli.key.as_deref())?;
    let roots = match &cli.roots {
        Some(p) => pem_blocks(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )?,
        None => Vec::new(),
    };
    let store = Store::open(&dir)?;
    let listener = tokio::net::TcpListener::bind(cli.listen).await?;
    let addr = listener.local_addr()?;
    let origin = cli.origin.clone().unwrap_or_else(|| addr.to_string());
    let url = format!("http://{addr}/");
    let static_url = format!("{url}static/");
    let log_list = dir.join("log-list.json");
    write_log_list(&log_list, &signer, &url, &static_url, cli.mode)?;
    let line = json!({
        "url": url,
        "static_url": static_url,
        "origin": origin,
        "log_id": STANDARD.encode(signer.log_id),
        "public_key_der": STANDARD.encode(&signer.spki),
        "key_pem_path": signer.key_path,
        "log_list_path": log_list,
        "tree_size": store.size(),
    });
    let log = Log {
        store,
        signer,
        roots,
        fault: cli.fault,
        origin,
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    drop(out);
    server::serve(listener, Arc::new(Mutex::new(log)), cli.mode).await
}

/// A certspotter-style log list (Chrome v3 schema) naming this log, so monitors can be pointed at it.
fn write_log_list(
    path: &std::path::Path,
    signer: &Signer,
    url: &str,
    static_url: &str,
    mode: Mode,
) -> Result<()> {
    let key = STANDARD.encode(&signer.spki);
    let log_id = STANDARD.encode(signer.log_id);
    let state = json!({"usable": {"timestamp": "2026-01-01T00:00:00Z"}});
    let (logs, tiled) = if mode == Mode::Static {
        (
            json!([]),
            json!([{"description": "certresponder test log", "log_id": log_id, "key": key,
                "submission_url": url, "monitoring_url": static_url, "mmd": 60, "state": state}]),
        )
    } else {
        (
            json!([{"description": "certresponder test log", "log_id": log_id, "key": key,
                "url": url, "mmd": 60, "state": state}]),
            json!([]),
        )
    };
    let list = json!({
        "version": "3.0",
        "log_list_timestamp": "2026-01-01T00:00:00Z",
        "operators": [{"name": "certresponder tests", "email": ["tests@example.invalid"],
            "logs": logs, "tiled_logs": tiled}],
    });
    std::fs::write(path, serde_json::to_vec_pretty(&list)?)
        .with_context(|| format!("writing {}", path.display()))
}
