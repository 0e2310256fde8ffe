//! Blocklist throughput on a badkeys-sized list: import time, load time and lookups per second
//! on one thread.
//!
//! The harness writes a badkeys `blocklist.dat` of N seeded random records (default
//! 3,900,000: about 60 MB, the size of badkeys' published list), then
//! 1. imports it into a temporary state directory (`blocklist::import`: read, detect, SHA-256,
//!    check the order, store a copy with fsync), once;
//! 2. loads every imported list (`blocklist::load_all`: read, check the order, index), best
//!    of 3;
//! 3. looks up M keys (half of them in the list, half not) in the loaded table, best of 3;
//! 4. checks the same keys through `Blocklists::hits`, as `scan` does with a key's
//!    identities computed (best of 3);
//! 5. checks K RSA-2048 keys end to end (`Blocklists::check`: the identities are computed
//!    from the key, then looked up), best of 3.
//!
//! Generating the list and the queries is not timed. Every hit and miss is verified.
//!
//! ```text
//! cargo bench --bench blocklist -- [--records N] [--lookups M] [--dir DIR] [--queries FILE]
//! ```
//!
//! * `--records N` (or env `BLOCKLIST_BENCH_RECORDS`): records in the list.
//! * `--lookups M`: keys looked up, default 2,000,000.
//! * `--dir DIR`: where `blocklist.dat` and the state directory go (default: a temporary
//!   directory, removed at exit).
//! * `--queries FILE`: also write the M looked-up keys there (15 bytes each), for a peer tool
//!   to search the same list for the same keys (scripts/bench-blocklist).
//!
//! The last line is machine-readable:
//! `RESULT records=.. import_ms=.. load_ms=.. lookups_per_sec=.. hits_per_sec=.. keys_per_sec=..`.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use certresponder::config::Config;
use certresponder::signals::exposure::blocklist::{self, Blocklists};
use certresponder::signals::exposure::identity::KeyIds;
use certresponder_inventory::inspect::KeyInfo;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

const DEFAULT_RECORDS: usize = 3_900_000;
const DEFAULT_LOOKUPS: usize = 2_000_000;
/// RSA keys checked end to end (identities computed each time).
const RSA_KEYS: usize = 20_000;
const RUNS: usize = 3;
const RECORDS_ENV: &str = "BLOCKLIST_BENCH_RECORDS";

struct Options {
    records: usize,
    lookups: usize,
    dir: Option<PathBuf>,
    queries: Option<PathBuf>,
}

fn parse_args() -> Result<Options> {
    let mut opts = Options {
        records: match std::env::var(RECORDS_ENV) {
            Ok(v) => v.parse().with_context(|| format!("{RECORDS_ENV}={v}"))?,
            Err(_) => DEFAULT_RECORDS,
        },
        lookups: DEFAULT_LOOKUPS,
        dir: None,
        queries: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--records" => {
                let v = args.next().context("--records needs a value")?;
                opts.records = v.parse().with_context(|| format!("--records {v}"))?;
            }
            "--lookups" => {
                let v = args.next().context("--lookups needs a value")?;
                opts.lookups = v.parse().with_context(|| format!("--lookups {v}"))?;
            }
            "--dir" => opts.dir = Some(args.next().context("--dir needs a value")?.into()),
            "--queries" => {
                opts.queries = Some(args.next().context("--queries needs a value")?.into());
            }
            // `cargo bench` passes `--bench`.
            "--bench" => {}
            other => bail!("unknown argument `{other}`"),
        }
    }
    ensure!(opts.records >= 1, "--records must be at least 1");
    ensure!(opts.lookups >= 2, "--lookups must be at least 2");
    Ok(opts)
}

fn main() -> Result<()> {
    let opts = parse_args()?;
    let temp;
    let dir = match &opts.dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::Builder::new()
                .prefix("blocklist-bench-")
                .tempdir()?;
            temp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut rng = ChaCha8Rng::seed_from_u64(2008_0513);

    // The list: N random records, sorted (untimed).
    let started = Instant::now();
    let mut records: Vec<[u8; 16]> = (0..opts.records)
        .map(|_| {
            let mut r = [0u8; 16];
            rng.fill_bytes(&mut r);
            // Source ids as in badkeys' list: mostly `debianssl` (1), some others.
            r[15] = if r[15] < 140 { 1 } else { r[15] % 16 + 1 };
            r
        })
        .collect();
    records.sort_unstable();
    let list = dir.join("blocklist.dat");
    std::fs::write(&list, records.concat())?;
    let size = std::fs::metadata(&list)?.len();

    // The queries: half of them records' keys, half random keys not in the list.
    let mut queries: Vec<[u8; 15]> = Vec::with_capacity(opts.lookups);
    let mut expected_hits = 0usize;
    while queries.len() < opts.lookups {
        let mut q = [0u8; 15];
        if queries.len().is_multiple_of(2) {
            let i = (rng.next_u64() % records.len() as u64) as usize;
            q.copy_from_slice(&records[i][..15]);
            expected_hits += 1;
        } else {
            rng.fill_bytes(&mut q);
            if records.binary_search_by(|r| r[..15].cmp(&q[..])).is_ok() {
                continue;
            }
        }
        queries.push(q);
    }
    if let Some(path) = &opts.queries {
        std::fs::write(path, queries.concat())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    drop(records);
    println!(
        "list: {} records, {:.1} MB, generated in {:.1} s (untimed); {} queries, {} in the list",
        opts.records,
        size as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        queries.len(),
        expected_hits
    );

    // 1. Import.
    let cfg = Config {
        state_dir: dir.join("state"),
        ..Config::default()
    };
    let t = Instant::now();
    let imported = blocklist::import(
        &cfg.blocklist_dir(),
        &list,
        None,
        Some("badkeys"),
        chrono::Utc::now(),
    )?;
    let import_time = t.elapsed();
    ensure!(
        imported.list.records == opts.records as u64,
        "imported {} records, expected {}",
        imported.list.records,
        opts.records
    );
    println!(
        "import (read, detect, SHA-256, check order, store with fsync): {:.0} ms",
        ms(import_time)
    );

    // 2. Load.
    let mut lists = None;
    let load_time = best_of(|| {
        let t = Instant::now();
        let loaded = blocklist::load_all(&cfg.blocklist_dir())?;
        let d = t.elapsed();
        ensure!(loaded.problems().is_empty(), "{:?}", loaded.problems());
        lists = Some(loaded);
        Ok(d)
    })?;
    let lists: Blocklists = lists.context("no list loaded")?;
    println!(
        "load (read, check order, index): {:.0} ms, best of {RUNS} ({:.0} MB/s)",
        ms(load_time),
        size as f64 / 1e6 / load_time.as_secs_f64()
    );

    // 3. Lookups in the table.
    let table = blocklist::load(&cfg.blocklist_dir(), &imported.list)?;
    let lookup_time = best_of(|| {
        let t = Instant::now();
        let mut hits = 0usize;
        for q in &queries {
            hits += usize::from(table.find(black_box(q)).is_some());
        }
        let d = t.elapsed();
        ensure!(
            hits == expected_hits,
            "{hits} hits, expected {expected_hits}"
        );
        Ok(d)
    })?;
    let lookups_per_sec = queries.len() as f64 / lookup_time.as_secs_f64();
    println!(
        "lookups (Table::find): {:.0}/s, {:.0} ns each, best of {RUNS}",
        lookups_per_sec,
        lookup_time.as_nanos() as f64 / queries.len() as f64
    );

    // 4. The same keys through `Blocklists::hits`, identities given.
    let ids: Vec<KeyIds> = queries
        .iter()
        .map(|q| KeyIds {
            bkhash: Some(*q),
            ..KeyIds::default()
        })
        .collect();
    let hits_time = best_of(|| {
        let t = Instant::now();
        let mut hits = 0usize;
        for i in &ids {
            hits += black_box(lists.hits(black_box(i))).len();
        }
        let d = t.elapsed();
        ensure!(
            hits == expected_hits,
            "{hits} hits, expected {expected_hits}"
        );
        Ok(d)
    })?;
    let hits_per_sec = ids.len() as f64 / hits_time.as_secs_f64();
    println!("Blocklists::hits (identities given): {hits_per_sec:.0}/s, best of {RUNS}");

    // 5. RSA-2048 keys end to end: identities computed, then looked up.
    let keys: Vec<KeyInfo> = (0..RSA_KEYS)
        .map(|_| {
            let mut modulus = vec![0u8; 256];
            rng.fill_bytes(&mut modulus);
            modulus[0] |= 0x80;
            modulus[255] |= 1;
            KeyInfo::Rsa {
                bits: 2048,
                exponent: "65537".into(),
                modulus,
                exponent_bytes: vec![1, 0, 1],
            }
        })
        .collect();
    let keys_time = best_of(|| {
        let t = Instant::now();
        let mut found = 0usize;
        for k in &keys {
            found += black_box(lists.check(black_box(k))).len();
        }
        let d = t.elapsed();
        ensure!(found == 0, "{found} random keys found in the list");
        Ok(d)
    })?;
    let keys_per_sec = keys.len() as f64 / keys_time.as_secs_f64();
    println!(
        "Blocklists::check, RSA-2048 keys (SPKI, BKHASH, Debian SHA-1 computed): {keys_per_sec:.0}/s, best of {RUNS}"
    );

    println!(
        "RESULT records={} import_ms={:.0} load_ms={:.0} lookups_per_sec={:.0} hits_per_sec={:.0} keys_per_sec={:.0}",
        opts.records,
        ms(import_time),
        ms(load_time),
        lookups_per_sec,
        hits_per_sec,
        keys_per_sec
    );
    cleanup(&dir, opts.dir.is_some())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn best_of(mut run: impl FnMut() -> Result<Duration>) -> Result<Duration> {
    let mut best = Duration::MAX;
    for _ in 0..RUNS {
        best = best.min(run()?);
    }
    Ok(best)
}

/// A directory given with `--dir` keeps the list (for a peer tool) but not the state copy.
fn cleanup(dir: &Path, kept: bool) -> Result<()> {
    if kept {
        std::fs::remove_dir_all(dir.join("state"))?;
    }
    Ok(())
}
