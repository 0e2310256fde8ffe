//! Batch GCD over N RSA-2048-sized moduli: wall time and peak memory of
//! `certresponder::signals::weak::batch_gcd`, with whichever backend this build has (dashu by
//! default, malachite with `--features malachite`). `scripts/bench-batch-gcd` runs it on both
//! backends and next to a Python gmpy2 product/remainder tree over the same file.
//!
//! ```text
//! cargo bench --bench batch_gcd -- [--count N] --generate FILE   # write the moduli, exit
//! cargo bench --bench batch_gcd -- --input FILE [--threads T]    # measure on FILE
//! cargo bench --bench batch_gcd -- [--count N] [--threads T]     # both, in a temporary file
//! ```
//!
//! * `--count N` (or env `BATCH_GCD_BENCH_N`): moduli to generate, default 100,000.
//! * `--generate FILE`: write the moduli as hex, one per line, and the planted groups to
//!   `FILE.expected`; generation is not timed.
//! * `--input FILE`: read moduli from FILE; if `FILE.expected` exists, the groups found must
//!   equal it exactly or the run fails.
//! * `--threads T`: threads for the batch GCD (default: all cores).
//!
//! **The moduli.** A real RSA-2048 key costs two 1024-bit prime searches, far too slow for
//! 100,000 of them, so the filler moduli are products of 64 distinct random primes just below
//! 2^32 (2,045–2,048 bits). No prime is used twice, so the filler shares nothing by
//! construction, and batch GCD's cost depends on the sizes of the numbers, not on how they
//! factor. Into that, real RSA-shaped moduli (products of two 1024-bit primes) are planted at
//! seeded random positions: a pair sharing a prime, a triple sharing another, a modulus whose
//! two primes are each shared with a different modulus (the gcd = n case) and one modulus
//! present twice. Everything comes from a seeded ChaCha8 generator, so a given N always gives
//! the same file.
//!
//! The last line is machine-readable:
//! `RESULT backend=.. threads=.. n=.. seconds=.. peak_rss_kib=.. groups=.. flagged=i,j,..`.

#[allow(dead_code)]
#[path = "../src/signals/weak/batch_gcd/testkit.rs"]
mod testkit;

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use certresponder::signals::weak::batch_gcd::{
    BACKEND, IndexHit, ProductIndex, SharedKind, SharedPrime, batch_gcd_with_threads,
};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::Rng;

const DEFAULT_COUNT: usize = 100_000;
const COUNT_ENV: &str = "BATCH_GCD_BENCH_N";
const SEED: u64 = 0xba7c_46cd;
/// Primes per filler modulus; with primes just below 2^32 that makes 2,045–2,048 bits.
const PRIMES_PER_FILLER: usize = 64;

fn main() -> Result<()> {
    let args = Args::parse()?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));

    if let Some(path) = &args.generate {
        generate(args.count, path)?;
        return Ok(());
    }
    let temp;
    let input = match &args.input {
        Some(path) => path.clone(),
        None => {
            temp = tempfile::tempdir()?;
            let path = temp.path().join("moduli.hex");
            generate(args.count, &path)?;
            path
        }
    };
    measure(&input, threads)
}

struct Args {
    count: usize,
    generate: Option<PathBuf>,
    input: Option<PathBuf>,
    threads: Option<usize>,
}

impl Args {
    fn parse() -> Result<Self> {
        let mut count = match std::env::var(COUNT_ENV) {
            Ok(v) => v.parse().with_context(|| format!("{COUNT_ENV}={v}"))?,
            Err(_) => DEFAULT_COUNT,
        };
        let (mut generate, mut input, mut threads) = (None, None, None);
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--count" => count = value()?.parse().context("--count")?,
                "--generate" => generate = Some(PathBuf::from(value()?)),
                "--input" => input = Some(PathBuf::from(value()?)),
                "--threads" => threads = Some(value()?.parse().context("--threads")?),
                // cargo bench passes --bench to harness = false targets.
                "--bench" => {}
                other => bail!("unknown argument {other}"),
            }
        }
        ensure!(count >= 16, "--count must be at least 16");
        ensure!(threads != Some(0), "--threads must be at least 1");
        Ok(Self {
            count,
            generate,
            input,
            threads,
        })
    }
}

/// Writes `count` moduli to `path` (hex, one per line) and the planted groups to
/// `path.expected` (`identical|factor BITS i,j,..` per line).
fn generate(count: usize, path: &Path) -> Result<()> {
    let started = Instant::now();
    let mut rng = testkit::rng(SEED);
    let mut primes = primes_below_2_32(count * PRIMES_PER_FILLER);
    shuffle(&mut primes, &mut rng);
    let mut moduli: Vec<Vec<u8>> = primes
        .chunks_exact(PRIMES_PER_FILLER)
        .take(count)
        .map(product_be)
        .collect();

    // Planted: 13 random 1024-bit primes.
    let mut prime = || testkit::random_prime(&mut rng, 1024);
    let (p1, p2, p3, p4, p5) = (prime(), prime(), prime(), prime(), prime());
    let q: Vec<_> = (0..8).map(|_| prime()).collect();
    let mut positions = BTreeSet::new();
    let mut rng2 = testkit::rng(SEED ^ 1);
    while positions.len() < 10 {
        positions.insert((rng2.next_u64() % count as u64) as usize);
    }
    let mut pos: Vec<usize> = positions.into_iter().collect();
    shuffle(&mut pos, &mut rng2);
    let [a1, a2, b1, b2, b3, c, d1, d2, e1, e2] = pos[..] else {
        bail!("ten positions");
    };
    let planted = [
        (a1, testkit::modulus(&p1, &q[0])),
        (a2, testkit::modulus(&p1, &q[1])),
        (b1, testkit::modulus(&p2, &q[2])),
        (b2, testkit::modulus(&p2, &q[3])),
        (b3, testkit::modulus(&p2, &q[4])),
        (c, testkit::modulus(&p3, &p4)),
        (d1, testkit::modulus(&p3, &q[5])),
        (d2, testkit::modulus(&p4, &q[6])),
        (e1, testkit::modulus(&p5, &q[7])),
        (e2, testkit::modulus(&p5, &q[7])),
    ];
    for (i, m) in planted {
        moduli[i] = m;
    }
    let sorted = |mut v: Vec<usize>| {
        v.sort_unstable();
        v
    };
    let mut expected = vec![
        SharedPrime {
            indices: sorted(vec![a1, a2]),
            kind: SharedKind::SharedFactor { factor_bits: 1024 },
        },
        SharedPrime {
            indices: sorted(vec![b1, b2, b3]),
            kind: SharedKind::SharedFactor { factor_bits: 1024 },
        },
        SharedPrime {
            indices: sorted(vec![c, d1]),
            kind: SharedKind::SharedFactor { factor_bits: 1024 },
        },
        SharedPrime {
            indices: sorted(vec![c, d2]),
            kind: SharedKind::SharedFactor { factor_bits: 1024 },
        },
        SharedPrime {
            indices: sorted(vec![e1, e2]),
            kind: SharedKind::IdenticalModulus { modulus_bits: 2048 },
        },
    ];
    expected.sort_by(|x, y| x.indices.cmp(&y.indices));

    let mut out = BufWriter::new(File::create(path).with_context(|| path.display().to_string())?);
    for m in &moduli {
        writeln!(out, "{}", hex::encode(m))?;
    }
    out.flush()?;
    let mut exp = String::new();
    for g in &expected {
        exp.push_str(&format_group(g));
        exp.push('\n');
    }
    fs::write(expected_path(path), exp)?;
    let (min_bits, max_bits) = moduli.iter().fold((u64::MAX, 0), |(lo, hi), m| {
        let b = bits(m);
        (lo.min(b), hi.max(b))
    });
    println!(
        "generated {count} moduli of {min_bits}-{max_bits} bits in {:.1} s: filler = products of \
         {PRIMES_PER_FILLER} distinct primes < 2^32 (pairwise coprime by construction); planted = \
         10 RSA-2048 moduli from 1024-bit primes (a pair and a triple sharing a prime, one modulus \
         sharing each of its primes with a different other, one duplicated) at {:?}",
        started.elapsed().as_secs_f64(),
        sorted(pos.clone()),
    );
    Ok(())
}

fn measure(path: &Path, threads: usize) -> Result<()> {
    let file = File::open(path).with_context(|| path.display().to_string())?;
    let mut moduli = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line?;
        let line = line.trim();
        if !line.is_empty() {
            moduli.push(hex::decode(line).with_context(|| format!("line {}", n + 1))?);
        }
    }
    let expected = match fs::read_to_string(expected_path(path)) {
        Ok(text) => Some(text.lines().map(str::to_owned).collect::<Vec<_>>()),
        Err(_) => None,
    };

    let started = Instant::now();
    let groups = batch_gcd_with_threads(&moduli, threads);
    let seconds = started.elapsed().as_secs_f64();
    let peak = peak_rss_kib();

    let found: Vec<String> = groups.iter().map(format_group).collect();
    let flagged: BTreeSet<usize> = groups
        .iter()
        .flat_map(|g| g.indices.iter().copied())
        .collect();
    let flagged: Vec<String> = flagged.iter().map(usize::to_string).collect();
    println!(
        "ours ({BACKEND}, {threads} thread(s)): {} moduli in {seconds:.2} s, peak RSS {:.0} MiB",
        moduli.len(),
        peak as f64 / 1024.0
    );
    for g in &found {
        println!("  found: {g}");
    }
    let verdict = match &expected {
        Some(exp) if *exp == found => "planted groups found exactly",
        Some(_) => "MISMATCH with the planted groups",
        None => "no .expected file, not verified",
    };
    println!("  {verdict}");
    incremental(&moduli, &groups)?;
    println!(
        "RESULT backend={BACKEND} threads={threads} n={} seconds={seconds:.3} peak_rss_kib={peak} \
         groups={} flagged={}",
        moduli.len(),
        groups.len(),
        flagged.join(",")
    );
    if let Some(exp) = expected {
        ensure!(
            exp == found,
            "found groups differ from the planted ones: {exp:?} vs {found:?}"
        );
    }
    Ok(())
}

/// The incremental check: a product index over every modulus but two (one that shares a
/// prime with a remaining one, and one that shares nothing), then one check of each. Run
/// after the peak memory of the batch GCD is read, so it does not count there.
fn incremental(moduli: &[Vec<u8>], groups: &[SharedPrime]) -> Result<()> {
    let Some(weak) = groups
        .iter()
        .find(|g| matches!(g.kind, SharedKind::SharedFactor { .. }))
        .and_then(|g| g.indices.first().copied())
    else {
        println!("  (no shared factor found, incremental check skipped)");
        return Ok(());
    };
    let flagged: BTreeSet<usize> = groups
        .iter()
        .flat_map(|g| g.indices.iter().copied())
        .collect();
    let clean = (0..moduli.len())
        .find(|i| !flagged.contains(i))
        .context("no clean modulus")?;
    let rest: Vec<&[u8]> = moduli
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != weak && i != clean)
        .map(|(_, m)| m.as_slice())
        .collect();
    let started = Instant::now();
    let index = ProductIndex::build(&rest);
    let build_s = started.elapsed().as_secs_f64();
    let stored = index.to_bytes().len();
    let started = Instant::now();
    let weak_hit = index.check(&moduli[weak]);
    let weak_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let clean_hit = index.check(&moduli[clean]);
    let clean_s = started.elapsed().as_secs_f64();
    println!(
        "  incremental: product of {} moduli built in {build_s:.2} s ({:.1} MiB stored); check \
         of a key sharing a prime {:.0} ms -> {weak_hit:?}; of a clean key {:.0} ms -> \
         {clean_hit:?}",
        rest.len(),
        stored as f64 / (1024.0 * 1024.0),
        weak_s * 1000.0,
        clean_s * 1000.0,
    );
    ensure!(
        weak_hit == Some(IndexHit::SharedFactor { factor_bits: 1024 }) && clean_hit.is_none(),
        "incremental check gave {weak_hit:?} and {clean_hit:?}"
    );
    Ok(())
}

fn format_group(g: &SharedPrime) -> String {
    let indices: Vec<String> = g.indices.iter().map(usize::to_string).collect();
    match g.kind {
        SharedKind::IdenticalModulus { modulus_bits } => {
            format!("identical {modulus_bits} {}", indices.join(","))
        }
        SharedKind::SharedFactor { factor_bits } => {
            format!("factor {factor_bits} {}", indices.join(","))
        }
        _ => format!("other {}", indices.join(",")),
    }
}

fn expected_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".expected");
    PathBuf::from(p)
}

/// At least `want` primes, the largest below 2^32, by a segmented sieve of odd numbers.
fn primes_below_2_32(want: usize) -> Vec<u32> {
    let base: Vec<u64> = {
        let limit = 1usize << 16;
        let mut composite = vec![false; limit];
        (3..limit)
            .step_by(2)
            .filter(|&i| {
                if composite[i] {
                    return false;
                }
                for j in (i * i..limit).step_by(2 * i) {
                    composite[j] = true;
                }
                true
            })
            .map(|i| i as u64)
            .collect()
    };
    const SEGMENT: u64 = 1 << 24;
    let mut out = Vec::with_capacity(want);
    let mut hi: u64 = 1 << 32;
    while out.len() < want {
        let lo = hi - SEGMENT;
        // is_odd_composite[k] for the odd number lo + 1 + 2k.
        let mut marked = vec![false; (SEGMENT / 2) as usize];
        for &p in &base {
            // First odd multiple of p at or above lo + 1.
            let mut m = (lo + 1).div_ceil(p) * p;
            if m.is_multiple_of(2) {
                m += p;
            }
            while m < hi {
                marked[((m - lo - 1) / 2) as usize] = true;
                m += 2 * p;
            }
        }
        for (k, &c) in marked.iter().enumerate().rev() {
            if !c {
                out.push((lo + 1 + 2 * k as u64) as u32);
            }
        }
        hi = lo;
    }
    out
}

fn shuffle<T>(v: &mut [T], rng: &mut ChaCha8Rng) {
    for i in (1..v.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

/// The product of `factors` as minimal big-endian bytes.
fn product_be(factors: &[u32]) -> Vec<u8> {
    let mut limbs: Vec<u64> = vec![1];
    for &f in factors {
        let mut carry = 0u128;
        for limb in &mut limbs {
            let t = u128::from(*limb) * u128::from(f) + carry;
            *limb = t as u64;
            carry = t >> 64;
        }
        if carry > 0 {
            limbs.push(carry as u64);
        }
    }
    let bytes: Vec<u8> = limbs.iter().rev().flat_map(|l| l.to_be_bytes()).collect();
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    bytes[zeros..].to_vec()
}

fn bits(be: &[u8]) -> u64 {
    match be.first() {
        None => 0,
        Some(&top) => (be.len() as u64 - 1) * 8 + u64::from(8 - top.leading_zeros()),
    }
}

/// Peak resident set size of this process (VmHWM), in KiB; 0 if unreadable.
fn peak_rss_kib() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
