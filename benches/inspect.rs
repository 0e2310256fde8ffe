//! Single-core throughput of certificate inspection (PEM decode, X.509 parse and the three
//! fingerprints: certificate SHA-256, SPKI SHA-256, RFC 6962 TBS hash).
//!
//! The harness generates N leaf certificates of mixed key types, signed by a small CA, as one
//! PEM file each, reads them all into memory, then times `inspect_certificates` over every file
//! on the current thread, best of 3 runs. Fixture generation and file reading are not timed.
//! `scripts/bench-inspect` runs it pinned to one core and next to `openssl x509`.
//!
//! ```text
//! cargo bench --bench inspect -- [--count N] [--dir DIR] [--generate-only | --measure-only]
//!                                [--fingerprints FILE]
//! ```
//!
//! * `--count N` (or env `INSPECT_BENCH_N`): certificates to generate, default 10,000.
//! * `--dir DIR`: where the PEM files go (created if missing). Default: a temporary directory,
//!   removed at exit.
//! * `--generate-only`: write the fixtures and exit.
//! * `--measure-only`: measure every `*.pem` already in `--dir` (any certificates will do).
//! * `--fingerprints FILE`: after timing, write `<file name> <SHA-256 as AA:BB:..>` per
//!   certificate, for comparison with `openssl x509 -fingerprint -sha256`.
//!
//! The last line is machine-readable: `RESULT certs_per_sec=.. der_certs_per_sec=.. certs=..`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use certresponder_inventory::inspect::{
    CertInfo, inspect_certificate_der, inspect_certificates, read_certificates,
};
use rcgen::{
    BasicConstraints, CertificateParams, CrlDistributionPoint, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, RsaKeySize, SanType,
    SerialNumber,
};
use sha2::{Digest, Sha256};
use time::{Duration as TimeDuration, OffsetDateTime};

const DEFAULT_COUNT: usize = 10_000;
const RUNS: usize = 3;
/// RSA keys are slow to generate; this many per RSA size are made and reused.
const RSA_POOL_PER_SIZE: usize = 8;
const COUNT_ENV: &str = "INSPECT_BENCH_N";

/// Key types of the leaves, in a fixed repeating pattern of 10 (roughly what a mixed estate
/// holds: mostly P-256 and RSA-2048).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    P256,
    P384,
    Ed25519,
    Rsa2048,
    Rsa3072,
}

const PATTERN: [Kind; 10] = [
    Kind::P256,
    Kind::Rsa2048,
    Kind::P256,
    Kind::P384,
    Kind::Rsa2048,
    Kind::P256,
    Kind::Ed25519,
    Kind::Rsa3072,
    Kind::P256,
    Kind::Rsa2048,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::P256 => "P-256",
            Kind::P384 => "P-384",
            Kind::Ed25519 => "Ed25519",
            Kind::Rsa2048 => "RSA-2048",
            Kind::Rsa3072 => "RSA-3072",
        }
    }

    fn share(self) -> usize {
        PATTERN.iter().filter(|k| **k == self).count() * 100 / PATTERN.len()
    }
}

struct Options {
    count: usize,
    dir: Option<PathBuf>,
    generate: bool,
    measure: bool,
    fingerprints: Option<PathBuf>,
}

fn parse_args() -> Result<Options> {
    let mut count = match std::env::var(COUNT_ENV) {
        Ok(v) => Some(parse_count(&v).with_context(|| format!("{COUNT_ENV}={v}"))?),
        Err(_) => None,
    };
    let mut opts = Options {
        count: 0,
        dir: None,
        generate: true,
        measure: true,
        fingerprints: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            // `cargo bench` passes `--bench` to every bench binary.
            "--bench" => {}
            "--count" | "-n" => {
                let v = args.next().context("--count needs a value")?;
                count = Some(parse_count(&v)?);
            }
            "--dir" => opts.dir = Some(args.next().context("--dir needs a value")?.into()),
            "--fingerprints" => {
                opts.fingerprints =
                    Some(args.next().context("--fingerprints needs a value")?.into());
            }
            "--generate-only" => opts.measure = false,
            "--measure-only" => opts.generate = false,
            "-h" | "--help" => {
                println!(
                    "usage: inspect [--count N] [--dir DIR] [--generate-only | --measure-only] \
                     [--fingerprints FILE]   (N also from ${COUNT_ENV}; default {DEFAULT_COUNT})"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}` (try --help)"),
        }
    }
    ensure!(
        opts.generate || opts.measure,
        "--generate-only and --measure-only exclude each other"
    );
    ensure!(
        opts.generate || opts.dir.is_some(),
        "--measure-only needs --dir"
    );
    opts.count = count.unwrap_or(DEFAULT_COUNT);
    Ok(opts)
}

fn parse_count(v: &str) -> Result<usize> {
    let n: usize = v.replace(['_', ','], "").parse().context("not a number")?;
    ensure!(n > 0, "the certificate count must be at least 1");
    Ok(n)
}

fn main() -> Result<()> {
    let opts = parse_args()?;
    let temp;
    let dir = match &opts.dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::Builder::new()
                .prefix("inspect-bench-")
                .tempdir()?;
            temp.path().to_path_buf()
        }
    };
    if opts.generate {
        generate(opts.count, &dir)?;
    }
    if opts.measure {
        measure(&dir, opts.fingerprints.as_deref())?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Fixtures

fn generate(count: usize, dir: &Path) -> Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let existing = pem_files(dir)?;
    ensure!(
        existing.is_empty(),
        "{} already holds {} .pem files; use an empty directory or --measure-only",
        dir.display(),
        existing.len()
    );

    // RSA pools, generated in parallel: this is setup, not measurement.
    let (rsa2048, rsa3072) = std::thread::scope(|s| {
        let spawn = |size| {
            s.spawn(move || -> Result<Vec<KeyPair>> {
                (0..RSA_POOL_PER_SIZE)
                    .map(|_| Ok(KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, size)?))
                    .collect()
            })
        };
        let a = spawn(RsaKeySize::_2048);
        let b = spawn(RsaKeySize::_3072);
        let join = |h: std::thread::ScopedJoinHandle<'_, Result<Vec<KeyPair>>>| {
            h.join()
                .map_err(|_| anyhow::anyhow!("RSA key generation thread panicked"))?
        };
        Ok::<_, anyhow::Error>((join(a)?, join(b)?))
    })?;

    // A small two-issuer CA: ECDSA for EC/EdDSA leaves, RSA for RSA leaves (as public CAs do).
    let ec_ca = make_ca(
        "Bench ECDSA Issuing CA",
        KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)?,
    );
    let rsa_ca = make_ca(
        "Bench RSA Issuing CA",
        KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048)?,
    );

    let width = count.to_string().len().max(5);
    let base = OffsetDateTime::from_unix_timestamp(1_735_689_600)?; // 2025-01-01T00:00:00Z
    for i in 0..count {
        let kind = PATTERN[i % PATTERN.len()];
        let fresh;
        let (key, issuer): (&KeyPair, _) = match kind {
            Kind::P256 => {
                fresh = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
                (&fresh, &ec_ca)
            }
            Kind::P384 => {
                fresh = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)?;
                (&fresh, &ec_ca)
            }
            Kind::Ed25519 => {
                fresh = KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
                (&fresh, &ec_ca)
            }
            Kind::Rsa2048 => (&rsa2048[i % rsa2048.len()], &rsa_ca),
            Kind::Rsa3072 => (&rsa3072[i % rsa3072.len()], &rsa_ca),
        };
        let params = leaf_params(i, kind, base)?;
        let cert = params.signed_by(key, issuer)?;
        let path = dir.join(format!("cert-{i:0width$}.pem"));
        std::fs::write(&path, cert.pem()).with_context(|| format!("writing {}", path.display()))?;
    }

    let mix: Vec<String> = [
        Kind::P256,
        Kind::Rsa2048,
        Kind::P384,
        Kind::Ed25519,
        Kind::Rsa3072,
    ]
    .iter()
    .map(|k| format!("{} {}%", k.name(), k.share()))
    .collect();
    println!(
        "fixtures: {count} leaf certs [{}; {} RSA keys reused], 2 issuing CAs, SAN/AKI/SKI/KU/EKU/CRLDP; \
         generated in {:.1} s (not timed) -> {}",
        mix.join(", "),
        2 * RSA_POOL_PER_SIZE,
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(())
}

fn make_ca(name: &str, key: KeyPair) -> Issuer<'static, KeyPair> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "US");
    dn.push(DnType::OrganizationName, "Certresponder Bench");
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Issuer::new(params, key)
}

fn leaf_params(i: usize, kind: Kind, base: OffsetDateTime) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    let host = format!("svc{i}");
    let zone = format!("team{}.example.com", i % 97);
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "US");
    dn.push(DnType::OrganizationName, format!("Example Org {}", i % 13));
    dn.push(DnType::CommonName, format!("{host}.{zone}"));
    params.distinguished_name = dn;

    // 3 to 6 DNS names, plus an IP address on every 7th certificate.
    let mut sans = vec![
        SanType::DnsName(format!("{host}.{zone}").try_into()?),
        SanType::DnsName(format!("www.{host}.{zone}").try_into()?),
        SanType::DnsName(format!("api.{host}.{zone}").try_into()?),
    ];
    for extra in 0..(i % 4) {
        sans.push(SanType::DnsName(
            format!("{host}-{extra}.edge.example.net").try_into()?,
        ));
    }
    if i.is_multiple_of(7) {
        let [a, b] = u16::try_from(i % 65_536)?.to_be_bytes();
        sans.push(SanType::IpAddress([10, 20, a, b].into()));
    }
    params.subject_alt_names = sans;

    // A deterministic 16-byte positive serial, distinct per certificate.
    let mut serial = Sha256::digest(format!("inspect-bench-serial-{i}")).to_vec();
    serial.truncate(16);
    serial[0] = (serial[0] & 0x7f) | 0x01;
    params.serial_number = Some(SerialNumber::from_slice(&serial));

    let start = base + TimeDuration::hours(i64::try_from(i % 2_000)?);
    params.not_before = start;
    params.not_after = start + TimeDuration::days(90);
    params.is_ca = IsCa::ExplicitNoCa; // writes basicConstraints CA:FALSE and the SKI
    params.use_authority_key_identifier_extension = true;
    params.key_usages = if matches!(kind, Kind::Rsa2048 | Kind::Rsa3072) {
        vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ]
    } else {
        vec![KeyUsagePurpose::DigitalSignature]
    };
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.crl_distribution_points = vec![CrlDistributionPoint {
        uris: vec![format!("http://crl.example.com/bench-{}.crl", i % 4)],
    }];
    Ok(params)
}

// ---------------------------------------------------------------------------------------------
// Measurement

fn pem_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "pem") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

struct Run {
    best: Duration,
    all: Vec<Duration>,
}

/// Runs `pass` RUNS times and keeps the fastest.
fn best_of(mut pass: impl FnMut() -> Result<()>) -> Result<Run> {
    let mut all = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t = Instant::now();
        pass()?;
        all.push(t.elapsed());
    }
    let best = all.iter().copied().min().unwrap_or_default();
    Ok(Run { best, all })
}

fn rate(certs: usize, d: Duration) -> f64 {
    certs as f64 / d.as_secs_f64().max(1e-9)
}

fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn report(label: &str, certs: usize, run: &Run) {
    let runs: Vec<String> = run
        .all
        .iter()
        .map(|d| format!("{:.3}", d.as_secs_f64()))
        .collect();
    println!(
        "{label}: {} certs/s  (best of {RUNS}: {:.3} s; runs {} s)",
        thousands(rate(certs, run.best)),
        run.best.as_secs_f64(),
        runs.join("/"),
    );
}

fn measure(dir: &Path, fingerprints: Option<&Path>) -> Result<()> {
    let files = pem_files(dir)?;
    ensure!(!files.is_empty(), "no .pem files in {}", dir.display());
    let inputs: Vec<(PathBuf, Vec<u8>)> = files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
            Ok((p, bytes))
        })
        .collect::<Result<_>>()?;
    let total_bytes: usize = inputs.iter().map(|(_, b)| b.len()).sum();

    // Untimed check pass: every file must inspect OK; also count certificates per file.
    let mut failures = Vec::new();
    let mut certs = 0usize;
    let mut infos: Vec<(&Path, Vec<CertInfo>)> = Vec::with_capacity(inputs.len());
    for (path, bytes) in &inputs {
        match inspect_certificates(bytes) {
            Ok(v) => {
                certs += v.len();
                infos.push((path, v));
            }
            Err(e) => failures.push(format!("{}: {e}", path.display())),
        }
    }
    if !failures.is_empty() {
        for f in failures.iter().take(10) {
            eprintln!("FAILED {f}");
        }
        bail!(
            "{} of {} files failed inspection; no throughput reported",
            failures.len(),
            inputs.len()
        );
    }
    // Cross-check the certificate fingerprint with an independent SHA-256 of the DER.
    for ((path, bytes), (_, info)) in inputs.iter().zip(&infos) {
        let ders = read_certificates(bytes)?;
        for (der, ci) in ders.iter().zip(info) {
            ensure!(
                ci.fingerprints.cert_sha256 == hex::encode(Sha256::digest(der)),
                "{}: cert_sha256 differs from SHA-256 of the DER",
                path.display()
            );
        }
    }

    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "measuring: {} files, {certs} certs, {:.1} MB PEM pre-read into memory; 1 thread, \
         process allowed on {cpus} CPU(s)",
        inputs.len(),
        total_bytes as f64 / 1e6
    );

    // Timed: PEM bytes -> CertInfo, exactly what inventory loading does per file.
    let pem_run = best_of(|| {
        let mut ok = 0usize;
        for (path, bytes) in &inputs {
            let v = inspect_certificates(black_box(bytes))
                .with_context(|| format!("{} failed during the timed run", path.display()))?;
            ok += black_box(v).len();
        }
        ensure!(ok == certs, "inspected {ok} certificates, expected {certs}");
        Ok(())
    })?;

    // Timed: DER -> CertInfo (PEM decoded beforehand), to show what the PEM step costs.
    let ders: Vec<Vec<u8>> = inputs
        .iter()
        .map(|(_, b)| read_certificates(b))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    let der_run = best_of(|| {
        for der in &ders {
            black_box(inspect_certificate_der(black_box(der))?);
        }
        Ok(())
    })?;

    report(
        "ours, PEM file bytes -> parse + 3 fingerprints",
        certs,
        &pem_run,
    );
    report(
        "ours, DER (PEM pre-decoded) -> parse + 3 fingerprints",
        certs,
        &der_run,
    );
    println!("all {certs} certificates inspected OK in every run");

    if let Some(out) = fingerprints {
        let mut text = String::new();
        for (path, info) in &infos {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            for ci in info {
                let colon = colon_hex(&ci.fingerprints.cert_sha256);
                writeln!(text, "{name} {colon}")?;
            }
        }
        std::fs::write(out, text).with_context(|| format!("writing {}", out.display()))?;
    }

    println!(
        "RESULT certs_per_sec={:.0} der_certs_per_sec={:.0} certs={certs}",
        rate(certs, pem_run.best),
        rate(certs, der_run.best)
    );
    Ok(())
}

/// `ab12..` -> `AB:12:..`, as `openssl x509 -fingerprint` prints it.
fn colon_hex(hex: &str) -> String {
    let upper = hex.to_ascii_uppercase();
    let pairs: Vec<&str> = upper
        .as_bytes()
        .chunks(2)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    pairs.join(":")
}
