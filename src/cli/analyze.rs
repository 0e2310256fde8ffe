//! `certresponder analyze FILE...`: checks certificates, CSRs and keys in files, as badkeys
//! does, plus the certificate rules and shared primes across everything given.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};

use certresponder_inventory::{Trust, inspect};
use chrono::Utc;
use clap::Args;
use serde_json::json;

use super::CliError;
use crate::signals::analyze::{AnalyzeOptions, Analyzed, analyze_moduli, analyze_object};
use crate::signals::exposure::blocklist::{self, Blocklists, object_key};
use crate::signals::exposure::identity::KeyIds;
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
    /// Certificates, CSRs, public or private keys (PEM or DER), OpenSSH public keys or
    /// authorized_keys files, JWKs or JWK Sets; with --moduli, files of hex RSA moduli
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
    /// Skip the shared-prime check across the files (one batch GCD over every RSA modulus,
    /// whose cost grows faster than the per-key checks: seconds for thousands of keys)
    #[arg(long)]
    no_shared_primes: bool,
    /// Test every RSA modulus for primality (milliseconds per key); the default when at most
    /// 1,000 files are given, else only moduli below the minimum size are tested
    #[arg(long)]
    thorough: bool,
    /// Also check each RSA key against the registered inventory, with one gcd against the
    /// product stored by the last `scan` (names the certificates it shares a factor or key with)
    #[arg(long)]
    against_inventory: bool,
}

struct FileResult {
    path: PathBuf,
    objects: Vec<Analyzed>,
    error: Option<String>,
}

/// Reads and analyses one file.
fn analyze_file(
    path: &Path,
    moduli: bool,
    opts: &AnalyzeOptions,
    lists: &Blocklists,
) -> FileResult {
    let outcome = std::fs::read(path)
        .map_err(|e| format!("cannot read: {e}"))
        .and_then(|bytes| {
            if moduli {
                let text = String::from_utf8(bytes)
                    .map_err(|_| "not a text file of hex moduli".to_string())?;
                let mut objects = analyze_moduli(&text, opts)?;
                // Blocklists: a bare modulus is matched by its number (badkeys, Debian).
                if !lists.is_empty() {
                    for o in &mut objects {
                        if let Some(m) = &o.rsa_modulus {
                            let found = lists.check_ids(&KeyIds::of_modulus(m), &o.key);
                            o.findings.extend(found);
                            let bits = inspect::KeyInfo::rsa_modulus_bits(m);
                            o.findings.extend(lists.known_primes(m, bits));
                        }
                    }
                }
                Ok(objects)
            } else {
                inspect::inspect_any(&bytes)
                    .map(|objs| {
                        objs.iter()
                            .map(|o| {
                                let mut a = analyze_object(o, opts);
                                // Blocklists: the object's key on an imported list.
                                if let Some(key) = object_key(o) {
                                    a.findings.extend(lists.check(key));
                                }
                                a
                            })
                            .collect()
                    })
                    .map_err(|e| e.to_string())
            }
        });
    match outcome {
        Ok(objects) => FileResult {
            path: path.to_path_buf(),
            objects,
            error: None,
        },
        Err(e) => FileResult {
            path: path.to_path_buf(),
            objects: Vec::new(),
            error: Some(e),
        },
    }
}

/// Shared primes across every RSA key analysed in this run (one batch GCD).
fn add_shared_primes(results: &mut [FileResult]) {
    let owners: Vec<(usize, usize)> = results
        .iter()
        .enumerate()
        .flat_map(|(fi, r)| {
            r.objects
                .iter()
                .enumerate()
                .filter(|(_, o)| o.rsa_modulus.is_some())
                .map(move |(oi, _)| (fi, oi))
        })
        .collect();
    let refs: Vec<&[u8]> = owners
        .iter()
        .filter_map(|&(fi, oi)| results[fi].objects[oi].rsa_modulus.as_deref())
        .collect();
    let labels: Vec<String> = owners
        .iter()
        .map(|&(fi, oi)| format!("{}#{}", results[fi].path.display(), oi + 1))
        .collect();
    // The same key seen twice (a certificate and its own key file) is expected here; only a
    // factor shared between different keys is a finding.
    let shared: Vec<(usize, Finding)> = crate::signals::shared::shared_findings(&refs, &labels)
        .into_iter()
        .filter(|(_, f)| f.evidence["kind"] != "identical_modulus")
        .collect();
    for (i, finding) in shared {
        let (fi, oi) = owners[i];
        results[fi].objects[oi].findings.push(finding);
    }
}

/// Items handed to a worker at a time: enough to make the shared counter cheap, few enough
/// that the workers finish together.
const ITEMS_PER_CLAIM: usize = 8;

/// `f` over `items` on all available cores (scoped threads taking a few items at a time);
/// the results are in the order of `items`, whatever order the workers finish in.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(items.len().div_ceil(ITEMS_PER_CLAIM));
    if workers <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let done: Vec<Vec<(usize, R)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let start = next.fetch_add(ITEMS_PER_CLAIM, Ordering::Relaxed);
                        if start >= items.len() {
                            break;
                        }
                        let end = (start + ITEMS_PER_CLAIM).min(items.len());
                        for (i, item) in items[start..end].iter().enumerate() {
                            mine.push((start + i, f(item)));
                        }
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut slots: Vec<Option<R>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    for (i, r) in done.into_iter().flatten() {
        slots[i] = Some(r);
    }
    // Every index below `items.len()` was claimed by exactly one worker, which filled it.
    slots.into_iter().flatten().collect()
}

/// One file's entry in the `--json` output.
fn file_json(r: &FileResult) -> serde_json::Value {
    let objects = match &r.error {
        Some(e) => {
            json!([{"type": "file", "findings": [{"check": "unparseable", "confidence": "high", "message": e}]}])
        }
        None => serde_json::to_value(&r.objects).unwrap_or_default(),
    };
    json!({"path": r.path, "error": r.error, "objects": objects})
}

/// `text` with `prefix` before every line but the first (and before the first too when
/// `first` is set): places a pretty-printed value at a deeper level of an enclosing one.
/// JSON strings escape their newlines, so every line break is the printer's own.
fn indent(text: &str, prefix: &str, first: bool, out: &mut String) {
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if i > 0 || first {
            out.push_str(prefix);
        }
        out.push_str(line);
    }
}

/// The `--json` document, exactly as `serde_json::to_string_pretty` prints
/// `{"files": [...], "summary": {...}}` (plus a newline), with each file's entry printed on
/// all cores. Printing a `Value` cannot fail (its map keys are strings).
fn json_document(results: &[FileResult], summary: &serde_json::Value) -> String {
    let files: Vec<String> = par_map(results, |r| {
        let mut out = String::new();
        indent(
            &serde_json::to_string_pretty(&file_json(r)).unwrap_or_default(),
            "    ",
            true,
            &mut out,
        );
        out
    });
    let mut out = String::from("{\n  \"files\": [");
    if !files.is_empty() {
        out.push('\n');
        out.push_str(&files.join(",\n"));
        out.push_str("\n  ");
    }
    out.push_str("],\n  \"summary\": ");
    indent(
        &serde_json::to_string_pretty(summary).unwrap_or_default(),
        "  ",
        false,
        &mut out,
    );
    out.push_str("\n}\n");
    out
}

/// Checks every RSA key against the inventory's stored product (see `scan`).
fn add_inventory_matches(
    results: &mut [FileResult],
    config: Option<&Path>,
) -> Result<(), CliError> {
    let backend = super::backend::Backend::choose(super::load_config(config)?);
    let mut moduli = Vec::new();
    for r in results.iter() {
        for o in &r.objects {
            if let Some(m) = &o.rsa_modulus {
                moduli.push(hex::encode(m));
            }
        }
    }
    let found = backend.call::<crate::service::policy::SharedWithInventory>(
        crate::service::policy::ModuliArgs { moduli },
    )?;
    let mut found = found.into_iter();
    for r in results.iter_mut() {
        for o in &mut r.objects {
            if o.rsa_modulus.is_some()
                && let Some(Some(f)) = found.next()
            {
                o.findings.push(f);
            }
        }
    }
    Ok(())
}

/// The imported blocklists, for checking the analysed keys. `analyze` needs no
/// configuration otherwise, so a configuration or index that cannot be read is warned about
/// and the lists are skipped.
fn analyze_blocklists(config: Option<&Path>) -> Blocklists {
    let loaded = super::load_config(config)
        .map_err(|e| match e {
            CliError::Input(e) | CliError::Failure(e) => e.to_string(),
        })
        .and_then(|cfg| blocklist::load_all(&cfg.blocklist_dir()).map_err(|e| e.to_string()));
    loaded.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "blocklists not checked");
        Blocklists::default()
    })
}

/// Up to this many files, every RSA modulus is tested for primality.
const THOROUGH_FILES: usize = 1000;

pub(crate) fn run(args: AnalyzeArgs, config: Option<&Path>) -> Result<ExitCode, CliError> {
    let opts = AnalyzeOptions {
        key_policy: KeyPolicy {
            rsa_min_bits: args.rsa_min_bits,
            thorough: args.thorough || args.files.len() <= THOROUGH_FILES,
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
    let lists = analyze_blocklists(config);
    let mut results = par_map(&args.files, |p| analyze_file(p, args.moduli, &opts, &lists));
    if !args.no_shared_primes {
        add_shared_primes(&mut results);
    }
    if args.against_inventory {
        add_inventory_matches(&mut results, config)?;
    }

    let errors = results.iter().filter(|r| r.error.is_some()).count();
    let serious = |f: &Finding| f.confidence >= Confidence::Medium;
    let findings = results
        .iter()
        .flat_map(|r| &r.objects)
        .flat_map(|o| &o.findings)
        .filter(|f| serious(f))
        .count();
    // One buffered writer: a line-buffered stdout would make a system call per line.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        let summary = json!({"files": results.len(), "unreadable": errors, "findings": findings});
        out.write_all(json_document(&results, &summary).as_bytes())?;
    } else {
        for r in &results {
            if let Some(e) = &r.error {
                writeln!(out, "{}: ! unparseable: {e}", r.path.display())?;
                continue;
            }
            for (i, o) in r.objects.iter().enumerate() {
                let label = object_label(&r.path, i, r.objects.len());
                let verdict = if o.findings.is_empty() {
                    "ok".to_string()
                } else {
                    format!(
                        "{} finding{}",
                        o.findings.len(),
                        if o.findings.len() == 1 { "" } else { "s" }
                    )
                };
                writeln!(
                    out,
                    "{label}: {} {} ({}): {verdict}",
                    o.kind, o.description, o.key
                )?;
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
                    writeln!(
                        out,
                        "  ! [{:?}] {}: {}{act}",
                        f.confidence, f.check, f.message
                    )?;
                }
            }
        }
        writeln!(
            out,
            "{} file{}, {findings} finding{} of medium confidence or above{}",
            results.len(),
            if results.len() == 1 { "" } else { "s" },
            if findings == 1 { "" } else { "s" },
            if errors > 0 {
                format!(", {errors} unreadable")
            } else {
                String::new()
            }
        )?;
    }
    out.flush()?;
    Ok(if errors > 0 {
        ExitCode::from(2)
    } else if findings > 0 {
        ExitCode::from(FINDINGS_FOUND)
    } else {
        ExitCode::SUCCESS
    })
}

/// How a listing names the `index`th of `count` objects in a file: the path, with `#N` when
/// the file holds more than one.
pub(crate) fn object_label(path: &Path, index: usize, count: usize) -> String {
    if count > 1 {
        format!("{}#{}", path.display(), index + 1)
    } else {
        path.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::Finding;

    #[test]
    fn par_map_keeps_the_input_order() {
        let items: Vec<u64> = (0..1003).collect();
        // Uneven work, so that the workers interleave their claims.
        let out = par_map(&items, |&x| (0..(x % 7) * 1000).fold(x, |a, b| a ^ b) ^ x);
        let expected: Vec<u64> = items
            .iter()
            .map(|&x| (0..(x % 7) * 1000).fold(x, |a, b| a ^ b) ^ x)
            .collect();
        assert_eq!(out, expected);
        assert!(par_map(&[] as &[u8], |&x| x).is_empty());
    }

    fn object(findings: Vec<Finding>) -> Analyzed {
        Analyzed {
            kind: "public-key",
            description: "public key".into(),
            key: "RSA-2048".into(),
            cert_sha256: None,
            spki_sha256: None,
            findings,
            rsa_modulus: None,
        }
    }

    #[test]
    fn json_document_is_what_serde_json_prints_for_the_whole_value() {
        let finding = Finding::warning(
            "rsa_invalid",
            "a message \"quoted\"\nover two lines",
            json!({"pattern": "low_density", "nested": {"list": [1, 2], "empty": []}}),
        );
        let results = [
            FileResult {
                path: "a.pem".into(),
                objects: vec![object(Vec::new()), object(vec![finding])],
                error: None,
            },
            FileResult {
                path: "dir/b.pem".into(),
                objects: Vec::new(),
                error: Some("cannot read: no such file".into()),
            },
            FileResult {
                path: "c.pem".into(),
                objects: Vec::new(),
                error: None,
            },
        ];
        let summary = json!({"files": 3, "unreadable": 1, "findings": 0});
        for results in [&results[..], &results[..1], &[]] {
            let whole = json!({
                "files": results.iter().map(file_json).collect::<Vec<_>>(),
                "summary": summary,
            });
            assert_eq!(
                json_document(results, &summary),
                format!("{}\n", serde_json::to_string_pretty(&whole).unwrap())
            );
        }
    }
}
