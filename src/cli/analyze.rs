//! `certresponder analyze FILE...`: checks certificates, CSRs and keys in files, as badkeys
//! does, plus the certificate rules and shared primes across everything given.

use std::path::PathBuf;
use std::process::ExitCode;

use certresponder_inventory::{Trust, inspect};
use chrono::Utc;
use clap::Args;
use serde_json::json;

use super::CliError;
use crate::signals::analyze::{AnalyzeOptions, Analyzed, analyze_moduli, analyze_object};
use crate::signals::weak::KeyPolicy;
use crate::signals::weak::cert::CertPolicy;
use crate::signals::{Confidence, Finding};

/// Exit status of `analyze` when it found something of medium confidence or above.
pub(crate) const FINDINGS_FOUND: u8 = 3;

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 nothing found (low-confidence warnings may be printed); \
3 findings of medium confidence or above; 2 a file could not be read or parsed (the other files \
are still analysed); 1 another failure."
)]
pub(crate) struct AnalyzeArgs {
    /// Certificates, CSRs, public or private keys (PEM or DER); with --moduli, files of hex RSA moduli
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The files hold hex RSA moduli, one per line
    #[arg(long)]
    moduli: bool,
    /// Hold certificates to the public (Baseline Requirements) rules, or skip them with `private`
    #[arg(long, default_value = "public", value_parser = ["public", "private"])]
    trust: String,
    /// Smallest acceptable RSA modulus, in bits
    #[arg(long, default_value_t = 2048)]
    rsa_min_bits: usize,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

struct FileResult {
    path: PathBuf,
    objects: Vec<Analyzed>,
    error: Option<String>,
}

pub(crate) fn run(args: AnalyzeArgs) -> Result<ExitCode, CliError> {
    let opts = AnalyzeOptions {
        key_policy: KeyPolicy {
            rsa_min_bits: args.rsa_min_bits,
            ..KeyPolicy::default()
        },
        cert_policy: CertPolicy::default(),
        trust: if args.trust == "private" {
            Trust::Private
        } else {
            Trust::Public
        },
        now: Utc::now(),
    };
    let mut results = Vec::new();
    for path in &args.files {
        let outcome = std::fs::read(path)
            .map_err(|e| format!("cannot read: {e}"))
            .and_then(|bytes| {
                if args.moduli {
                    let text = String::from_utf8(bytes)
                        .map_err(|_| "not a text file of hex moduli".to_string())?;
                    analyze_moduli(&text, &opts)
                } else {
                    inspect::inspect_any(&bytes)
                        .map(|objs| objs.iter().map(|o| analyze_object(o, &opts)).collect())
                        .map_err(|e| e.to_string())
                }
            });
        results.push(match outcome {
            Ok(objects) => FileResult {
                path: path.clone(),
                objects,
                error: None,
            },
            Err(e) => FileResult {
                path: path.clone(),
                objects: Vec::new(),
                error: Some(e),
            },
        });
    }
    // Shared primes across every RSA key analysed in this run.
    let moduli: Vec<(usize, usize, Vec<u8>)> = results
        .iter()
        .enumerate()
        .flat_map(|(fi, r)| {
            r.objects
                .iter()
                .enumerate()
                .filter_map(move |(oi, o)| o.rsa_modulus.clone().map(|m| (fi, oi, m)))
        })
        .collect();
    let labels: Vec<String> = moduli
        .iter()
        .map(|(fi, oi, _)| format!("{}#{}", results[*fi].path.display(), oi + 1))
        .collect();
    let refs: Vec<&[u8]> = moduli.iter().map(|(_, _, m)| m.as_slice()).collect();
    // The same key seen twice (a certificate and its own key file) is expected here; only a
    // factor shared between different keys is a finding.
    for (i, finding) in crate::signals::shared::shared_findings(&refs, &labels)
        .into_iter()
        .filter(|(_, f)| f.evidence["kind"] != "identical_modulus")
    {
        let (fi, oi, _) = moduli[i];
        results[fi].objects[oi].findings.push(finding);
    }

    let errors = results.iter().filter(|r| r.error.is_some()).count();
    let serious = |f: &Finding| f.confidence >= Confidence::Medium;
    let findings = results
        .iter()
        .flat_map(|r| &r.objects)
        .flat_map(|o| &o.findings)
        .filter(|f| serious(f))
        .count();
    if args.json {
        let files: Vec<_> = results
            .iter()
            .map(|r| {
                let mut objects = serde_json::to_value(&r.objects).unwrap_or_default();
                if let Some(e) = &r.error {
                    objects = json!([{"type": "file", "findings": [{"check": "unparseable", "confidence": "high", "message": e}]}]);
                }
                json!({"path": r.path, "error": r.error, "objects": objects})
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "files": files,
                "summary": {"files": results.len(), "unreadable": errors, "findings": findings},
            }))?
        );
    } else {
        for r in &results {
            if let Some(e) = &r.error {
                println!("{}: ! unparseable: {e}", r.path.display());
                continue;
            }
            for (i, o) in r.objects.iter().enumerate() {
                let label = if r.objects.len() > 1 {
                    format!("{}#{}", r.path.display(), i + 1)
                } else {
                    r.path.display().to_string()
                };
                let verdict = if o.findings.is_empty() {
                    "ok".to_string()
                } else {
                    format!(
                        "{} finding{}",
                        o.findings.len(),
                        if o.findings.len() == 1 { "" } else { "s" }
                    )
                };
                println!(
                    "{label}: {} {} ({}): {verdict}",
                    o.kind, o.description, o.key
                );
                for f in &o.findings {
                    let act = match (f.revocation_reason, f.deadline_hours) {
                        (Some(r), Some(h)) => format!(
                            " -> revoke ({r}) within {}",
                            if h % 24 == 0 {
                                format!("{} days", h / 24)
                            } else {
                                format!("{h} h")
                            }
                        ),
                        _ => String::new(),
                    };
                    println!("  ! [{:?}] {}: {}{act}", f.confidence, f.check, f.message);
                }
            }
        }
        println!(
            "{} file{}, {findings} finding{} of medium confidence or above{}",
            results.len(),
            if results.len() == 1 { "" } else { "s" },
            if findings == 1 { "" } else { "s" },
            if errors > 0 {
                format!(", {errors} unreadable")
            } else {
                String::new()
            }
        );
    }
    Ok(if errors > 0 {
        ExitCode::from(2)
    } else if findings > 0 {
        ExitCode::from(FINDINGS_FOUND)
    } else {
        ExitCode::SUCCESS
    })
}
