//! Issue-and-revoke round trips through each issuer adapter, beside certbot against the same
//! Pebble in the same run.
//!
//! One round trip is: generate a P-256 key and a CSR for a fresh name, issue, revoke with
//! reason keyCompromise signed by the certificate's own key (RFC 8555 §7.6; what a CA needs to
//! block a compromised key). Each is timed on the wall clock, one after another. Before the
//! timed ones, each adapter does one untimed warm-up round trip (account creation, connection
//! set-up, the HTTP-01 listener, the internal CA's key).
//!
//! * internal CA: in a temporary directory, with `MemoryStorage` (each revocation signs and
//!   writes a CRL, as in production);
//! * command: `config/issuers/openssl-ca-adapter` through `CommandIssuer`, when it and
//!   `config/issuers/openssl-ca-init` exist (otherwise skipped, with a note);
//! * ACME: `AcmeIssuer` against one Pebble (`PEBBLE_VA_ALWAYS_VALID=1`, default 5% nonce
//!   rejection), HTTP-01 through the built-in listener;
//! * certbot: `certbot certonly --standalone` then `certbot revoke --key-path ... --reason
//!   keycompromise`, against the same Pebble, trusting its TLS through `REQUESTS_CA_BUNDLE`;
//!   one config directory for all runs, so the account is registered once (in the warm-up).
//!
//! ```text
//! cargo bench --bench roundtrip -- [--count N] [--certbot-count M] [--no-certbot]
//!                                  [--pebble-log FILE]
//! ```
//!
//! * `--count N` (or env `ISSUER_BENCH_N`): round trips per adapter, default 100.
//! * `--certbot-count M` (or env `ISSUER_BENCH_CERTBOT_N`): certbot round trips, default 20
//!   (each is two Python processes, about 3.3 s together on a 2-core machine). A failed certbot
//!   run is counted, not timed, and does not fail the bench.
//! * `--no-certbot`: skip certbot.
//! * `--pebble-log FILE`: copy Pebble's log there at the end (to see where the time goes).
//!
//! Timing is reported, never asserted. The last lines are machine-readable:
//! `RESULT adapter=internal_ca|command|acme|certbot n=.. failed=.. p50_ms=.. p99_ms=..
//! mean_ms=..` per adapter (`-` where there is no result), then
//! `RATIO certbot_p50_over_acme_p50=.. target=5 met=yes|no`.

// A benchmark harness: a failed set-up step is a failed run, so unwrap/expect only abort it
// with the reason, as in tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use certresponder_inventory::{CertKind, KeyProfile, SecretPem};
use certresponder_issuers::command::CommandIssuer;
use certresponder_issuers::config::{AcmeConfig, Challenge, CommandConfig, InternalCaConfig};
use certresponder_issuers::{
    AcmeIssuer, Identifier, InternalCa, IssueRequest, Issuer, MemoryStorage, RevocationReason,
    RevokeRequest, generate_key,
};
use support::{Pebble, PebbleOptions, free_port};

const DEFAULT_COUNT: usize = 100;
const DEFAULT_CERTBOT_COUNT: usize = 20;
const COUNT_ENV: &str = "ISSUER_BENCH_N";
const CERTBOT_COUNT_ENV: &str = "ISSUER_BENCH_CERTBOT_N";
/// certbot_p50 / our ACME p50 must be at least this.
const TARGET_RATIO: f64 = 5.0;
/// Upper bound for one certbot process; a hung one is killed and counted as a failure.
const CERTBOT_TIMEOUT: Duration = Duration::from_secs(120);
/// Failed round trips tolerated per adapter before it is abandoned.
const MAX_FAILURES: usize = 5;

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Opts {
    count: usize,
    certbot_count: usize,
    certbot: bool,
    pebble_log: Option<PathBuf>,
}

fn parse_count(what: &str, v: &str) -> Result<usize, Error> {
    match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{what} must be a positive integer, got `{v}`").into()),
    }
}

fn parse_args() -> Result<Opts, Error> {
    let mut opts = Opts {
        count: match std::env::var(COUNT_ENV) {
            Ok(v) => parse_count(COUNT_ENV, &v)?,
            Err(_) => DEFAULT_COUNT,
        },
        certbot_count: match std::env::var(CERTBOT_COUNT_ENV) {
            Ok(v) => parse_count(CERTBOT_COUNT_ENV, &v)?,
            Err(_) => DEFAULT_CERTBOT_COUNT,
        },
        certbot: true,
        pebble_log: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            // `cargo bench` passes this to every harness = false target.
            "--bench" => {}
            "--count" | "-n" => {
                opts.count = parse_count("--count", &args.next().ok_or("--count needs a value")?)?
            }
            "--certbot-count" => {
                opts.certbot_count = parse_count(
                    "--certbot-count",
                    &args.next().ok_or("--certbot-count needs a value")?,
                )?
            }
            "--no-certbot" => opts.certbot = false,
            "--pebble-log" => {
                opts.pebble_log = Some(args.next().ok_or("--pebble-log needs a value")?.into())
            }
            "-h" | "--help" => {
                println!(
                    "cargo bench --bench roundtrip -- [--count N] [--certbot-count M] [--no-certbot] [--pebble-log FILE]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}` (see --help)").into()),
        }
    }
    Ok(opts)
}

// ---------------------------------------------------------------------------------------------
// Statistics

/// Wall times of the successful round trips of one adapter.
struct Sample {
    /// Short name for the RESULT line.
    key: &'static str,
    name: String,
    total: Vec<Duration>,
    issue: Vec<Duration>,
    revoke: Vec<Duration>,
    failed: usize,
    note: Option<String>,
}

impl Sample {
    fn new(key: &'static str, name: &str) -> Self {
        Self {
            key,
            name: name.to_string(),
            total: Vec::new(),
            issue: Vec::new(),
            revoke: Vec::new(),
            failed: 0,
            note: None,
        }
    }
}

/// Nearest-rank percentile of unsorted durations (`p` in 0..=100).
fn percentile(values: &[Duration], p: f64) -> Option<Duration> {
    let mut v = values.to_vec();
    v.sort_unstable();
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v.get(rank.clamp(1, v.len().max(1)) - 1).copied()
}

fn mean(values: &[Duration]) -> Option<Duration> {
    (!values.is_empty()).then(|| values.iter().sum::<Duration>() / values.len() as u32)
}

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(
        || "-".to_string(),
        |d| format!("{:.1}", d.as_secs_f64() * 1e3),
    )
}

// ---------------------------------------------------------------------------------------------
// Round trips through the Issuer trait

struct Material {
    csr_der: Vec<u8>,
    key_pem: String,
}

fn material(name: &str) -> Material {
    let key = generate_key(KeyProfile::EcdsaP256).unwrap();
    let csr = rcgen::CertificateParams::new(vec![name.to_string()])
        .unwrap()
        .serialize_request(&key)
        .unwrap();
    Material {
        csr_der: csr.der().to_vec(),
        key_pem: key.serialize_pem(),
    }
}

/// One round trip: returns (issue time incl. key + CSR, revoke time).
async fn round_trip(issuer: &dyn Issuer, name: &str) -> Result<(Duration, Duration), String> {
    let start = Instant::now();
    let m = material(name);
    let chain = issuer
        .issue(&IssueRequest {
            csr_der: m.csr_der,
            identifiers: vec![Identifier::Dns(name.to_string())],
            kind: CertKind::TlsServer,
            profile: None,
            replaces: None,
            request_id: None,
        })
        .await
        .map_err(|e| format!("issue {name}: {e}"))?;
    let der = certresponder_inventory::inspect::read_certificates(chain.leaf_pem.as_bytes())
        .map_err(|e| format!("issue {name}: unreadable leaf: {e}"))?
        .into_iter()
        .next()
        .ok_or_else(|| format!("issue {name}: no certificate returned"))?;
    let issued = Instant::now();
    issuer
        .revoke(&RevokeRequest {
            certificate_der: der,
            reason: RevocationReason::KeyCompromise,
            certificate_key: Some(SecretPem::new(m.key_pem)),
        })
        .await
        .map_err(|e| format!("revoke {name}: {e}"))?;
    Ok((issued - start, issued.elapsed()))
}

async fn run_adapter(key: &'static str, label: &str, issuer: &dyn Issuer, n: usize) -> Sample {
    let mut s = Sample::new(key, label);
    let prefix = key.replace('_', "-");
    if let Err(e) = round_trip(issuer, &format!("{prefix}-warmup.example.test")).await {
        s.note = Some(format!("warm-up failed: {e}"));
        s.failed += 1;
        return s;
    }
    for i in 0..n {
        match round_trip(issuer, &format!("{prefix}-{i}.example.test")).await {
            Ok((issue, revoke)) => {
                s.issue.push(issue);
                s.revoke.push(revoke);
                s.total.push(issue + revoke);
            }
            Err(e) => {
                eprintln!("{label}: round trip {i} failed: {e}");
                s.failed += 1;
                if s.failed > MAX_FAILURES {
                    s.note = Some(format!("abandoned after {} failures", s.failed));
                    break;
                }
            }
        }
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Adapters

fn internal_ca(dir: &Path) -> InternalCa {
    InternalCa::open_or_create(
        "internal",
        InternalCaConfig {
            dir: dir.join("ca"),
            common_name: "certresponder bench CA".into(),
            validity_days: 90,
            profiles: BTreeMap::new(),
            crl_path: dir.join("ca/crl.der"),
            crl_validity: Duration::from_secs(7 * 24 * 3600),
            crl_url: None,
            allowed_names: Vec::new(),
        },
        Arc::new(MemoryStorage::new()),
    )
    .unwrap()
}

fn acme(pebble: &Pebble) -> AcmeIssuer {
    AcmeIssuer::new(
        "pebble",
        AcmeConfig {
            directory: pebble.directory_url.clone(),
            contact: vec!["mailto:pki@example.test".into()],
            account_file: None,
            trust_root: Some(pebble.tls_root.clone()),
            challenge: Challenge::Http01Listen(
                format!("127.0.0.1:{}", free_port()).parse().unwrap(),
            ),
            eab: None,
            profile: None,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
        },
        Arc::new(MemoryStorage::new()),
    )
    .unwrap()
}

const COMMAND_LABEL: &str = "command (openssl ca)";

/// The example command adapter on a fresh `openssl ca` directory, when the example exists.
fn command_issuer(work: &Path) -> Result<CommandIssuer, String> {
    let examples = repo_root().join("config/issuers");
    let (adapter, init) = (
        examples.join("openssl-ca-adapter"),
        examples.join("openssl-ca-init"),
    );
    if !adapter.is_file() || !init.is_file() {
        return Err(format!(
            "{} and {} do not both exist",
            adapter.display(),
            init.display()
        ));
    }
    let ca = work.join("openssl-ca");
    let out = Command::new(&init)
        .arg(&ca)
        .args(["--allow", ".example.test", "--cn", "certresponder bench CA"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", init.display()))?;
    if !out.status.success() {
        return Err(format!(
            "openssl-ca-init failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(CommandIssuer::new(
        "openssl-ca",
        CommandConfig {
            command: vec![
                adapter.to_string_lossy().into_owned(),
                ca.to_string_lossy().into_owned(),
            ],
            timeout: Duration::from_secs(30),
        },
    ))
}

/// The repository root (the bench runs with the package directory as working directory).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

// ---------------------------------------------------------------------------------------------
// certbot

/// Runs a command to completion within `CERTBOT_TIMEOUT`, output to `log`.
fn run_logged(cmd: &mut Command, log: &Path) -> Result<(), String> {
    let out = std::fs::File::create(log).map_err(|e| e.to_string())?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    let deadline = Instant::now() + CERTBOT_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            if status.success() {
                return Ok(());
            }
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(8).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(format!("{status}: {}", tail.join(" | ")));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("killed after {CERTBOT_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

struct Certbot {
    bin: PathBuf,
    server: String,
    ca_bundle: PathBuf,
    dirs: PathBuf,
}

impl Certbot {
    fn command(&self, sub: &str) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg(sub)
            .args(["--non-interactive", "--server", &self.server])
            .arg("--config-dir")
            .arg(self.dirs.join("config"))
            .arg("--work-dir")
            .arg(self.dirs.join("work"))
            .arg("--logs-dir")
            .arg(self.dirs.join("logs"))
            .env("REQUESTS_CA_BUNDLE", &self.ca_bundle);
        c
    }

    /// One round trip: returns (certonly time, revoke time).
    fn round_trip(&self, name: &str) -> Result<(Duration, Duration), String> {
        let start = Instant::now();
        let port = free_port().to_string();
        let log = self.dirs.join("certonly.out");
        run_logged(
            self.command("certonly")
                .args(["--standalone", "--http-01-address", "127.0.0.1"])
                .args(["--http-01-port", &port, "-d", name, "--cert-name", name])
                .args(["--agree-tos", "-m", "x@example.test", "--no-eff-email"]),
            &log,
        )
        .map_err(|e| format!("certbot certonly {name}: {e}"))?;
        let issued = Instant::now();
        let live = self.dirs.join("config/live").join(name);
        let log = self.dirs.join("revoke.out");
        run_logged(
            self.command("revoke")
                .arg("--cert-path")
                .arg(live.join("cert.pem"))
                .arg("--key-path")
                .arg(live.join("privkey.pem"))
                .args(["--reason", "keycompromise", "--delete-after-revoke"]),
            &log,
        )
        .map_err(|e| format!("certbot revoke {name}: {e}"))?;
        Ok((issued - start, issued.elapsed()))
    }
}

fn find_certbot() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("certbot"))
            .find(|p| p.is_file())
    })
}

fn certbot_version(bin: &Path) -> String {
    Command::new(bin)
        .arg("--version")
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text).trim().to_string()
        })
        .unwrap_or_else(|| "certbot".into())
}

fn run_certbot(pebble: &Pebble, work: &Path, n: usize) -> Sample {
    let Some(bin) = find_certbot() else {
        let mut s = Sample::new("certbot", "certbot");
        s.note =
            Some("skipped: `certbot` is not installed (scripts/bench-issuers installs it)".into());
        return s;
    };
    let label = certbot_version(&bin);
    let mut s = Sample::new("certbot", &label);
    let cb = Certbot {
        bin,
        server: pebble.directory_url.clone(),
        ca_bundle: pebble.tls_root.clone(),
        dirs: work.join("certbot"),
    };
    if let Err(e) = std::fs::create_dir_all(&cb.dirs) {
        s.note = Some(format!("cannot create {}: {e}", cb.dirs.display()));
        s.failed += 1;
        return s;
    }
    if let Err(e) = cb.round_trip("certbot-warmup.example.test") {
        s.note = Some(format!("warm-up failed: {e}"));
        s.failed += 1;
        return s;
    }
    for i in 0..n {
        match cb.round_trip(&format!("certbot-{i}.example.test")) {
            Ok((issue, revoke)) => {
                s.issue.push(issue);
                s.revoke.push(revoke);
                s.total.push(issue + revoke);
            }
            Err(e) => {
                eprintln!("certbot: round trip {i} failed: {e}");
                s.failed += 1;
                if s.failed > MAX_FAILURES {
                    s.note = Some(format!("abandoned after {} failures", s.failed));
                    break;
                }
            }
        }
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Report

fn print_table(samples: &[Sample]) {
    println!(
        "{:<22} {:>5} {:>6} {:>9} {:>9} {:>9} {:>11} {:>12}",
        "adapter", "N", "failed", "p50 ms", "p99 ms", "mean ms", "issue p50", "revoke p50"
    );
    for s in samples {
        println!(
            "{:<22} {:>5} {:>6} {:>9} {:>9} {:>9} {:>11} {:>12}",
            s.name,
            s.total.len(),
            s.failed,
            ms(percentile(&s.total, 50.0)),
            ms(percentile(&s.total, 99.0)),
            ms(mean(&s.total)),
            ms(percentile(&s.issue, 50.0)),
            ms(percentile(&s.revoke, 50.0)),
        );
    }
    for s in samples {
        if let Some(note) = &s.note {
            println!("note: {}: {note}", s.name);
        }
    }
}

fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("roundtrip: {e}");
            std::process::exit(2);
        }
    };
    let work = tempfile::Builder::new()
        .prefix("issuer-bench-")
        .tempdir()
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pebble = Pebble::start(PebbleOptions::default());
    let pebble_version = Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", "pebble"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "?".into(),
            |o| String::from_utf8_lossy(&o.stdout).into_owned(),
        );
    println!(
        "== issue + revoke (keyCompromise, signed by the certificate key) round trips; \
         N={} per adapter, certbot N={}; 1 untimed warm-up each; P-256 keys ==",
        opts.count,
        if opts.certbot {
            opts.certbot_count.to_string()
        } else {
            "skipped".into()
        }
    );
    println!(
        "pebble {pebble_version} at {} (PEBBLE_VA_ALWAYS_VALID=1, default 5% nonce rejection)",
        pebble.directory_url
    );

    let mut samples = Vec::new();
    let ca = internal_ca(work.path());
    samples.push(rt.block_on(run_adapter("internal_ca", "internal CA", &ca, opts.count)));

    samples.push(match command_issuer(work.path()) {
        Ok(cmd) => rt.block_on(run_adapter("command", COMMAND_LABEL, &cmd, opts.count)),
        Err(why) => {
            let mut s = Sample::new("command", COMMAND_LABEL);
            s.note = Some(format!("skipped: {why}"));
            s
        }
    });

    let acme = acme(&pebble);
    samples.push(rt.block_on(run_adapter("acme", "ACME (pebble)", &acme, opts.count)));

    if opts.certbot {
        samples.push(run_certbot(&pebble, work.path(), opts.certbot_count));
    }

    print_table(&samples);
    let p50_of = |key: &str| {
        samples
            .iter()
            .find(|s| s.key == key)
            .and_then(|s| percentile(&s.total, 50.0))
    };
    let ratio = match (p50_of("certbot"), p50_of("acme")) {
        (Some(c), Some(a)) => {
            let ratio = c.as_secs_f64() / a.as_secs_f64();
            println!(
                "certbot p50 / our ACME p50 = {} ms / {} ms = {ratio:.1}x; target >= {TARGET_RATIO}x: {}",
                ms(Some(c)),
                ms(Some(a)),
                if ratio >= TARGET_RATIO {
                    "MET"
                } else {
                    "NOT MET"
                }
            );
            Some(ratio)
        }
        _ => {
            println!("certbot p50 / our ACME p50: not available (one side has no result)");
            None
        }
    };
    for s in &samples {
        println!(
            "RESULT adapter={} n={} failed={} p50_ms={} p99_ms={} mean_ms={}",
            s.key,
            s.total.len(),
            s.failed,
            ms(percentile(&s.total, 50.0)),
            ms(percentile(&s.total, 99.0)),
            ms(mean(&s.total)),
        );
    }
    match ratio {
        Some(r) => println!(
            "RATIO certbot_p50_over_acme_p50={r:.2} target={TARGET_RATIO} met={}",
            if r >= TARGET_RATIO { "yes" } else { "no" }
        ),
        None => println!("RATIO certbot_p50_over_acme_p50=- target={TARGET_RATIO} met=unknown"),
    }
    // Ours must not fail; certbot's own failures (it crashes on two bad nonces in a row, which
    // Pebble's 5% rejection causes now and then) are counted and reported, not fatal.
    let failed: usize = samples
        .iter()
        .filter(|s| s.key != "certbot")
        .map(|s| s.failed)
        .sum();
    let certbot_missing = opts.certbot && p50_of("certbot").is_none();
    drop(acme);
    if let Some(path) = &opts.pebble_log
        && let Err(e) = std::fs::write(path, pebble.log())
    {
        eprintln!("roundtrip: cannot write {}: {e}", path.display());
    }
    drop(pebble);
    if failed > 0 {
        eprintln!("roundtrip: {failed} round trip(s) through our adapters failed (see above)");
        std::process::exit(1);
    }
    if certbot_missing {
        eprintln!("roundtrip: certbot gave no result, so there is no ratio (see above)");
        std::process::exit(1);
    }
}
