//! Where private keys are looked for: the files under directories, and every commit of the
//! git repositories among them.
//!
//! - Directories are walked without following symbolic links (no loops, nothing outside
//!   the tree); FIFOs, sockets and devices are skipped, and so are files over the size cap
//!   (noted). Hidden and git-ignored files are read: a `.env` or a key that is ignored is
//!   still on the disk.
//! - A directory that is a git work tree (it holds `.git`) or a bare repository is a
//!   repository: its working files are read as files (keys not yet committed), and, unless
//!   history is turned off, every blob any commit of any ref ever held is read once, with
//!   the commit that first added it and that commit's time (the `git` CLI, in `git.rs`).
//! - Files and blobs are read and searched on every core; [`super::extract`] does the
//!   searching.

mod git;
mod walk;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use zeroize::Zeroizing;

use super::extract::keys_in;
use super::{FoundKey, Location};

/// The `source` of every location this module reports.
pub const SOURCE: &str = "exposure-scan";
/// Files larger than this are skipped unless told otherwise (50 MiB).
pub const DEFAULT_MAX_FILE_SIZE: u64 = 50 * 1024 * 1024;
/// A binary file is read past its first bytes only when it may be one DER object; no DER
/// key or PKCS#12 keystore is this large.
const MAX_DER_FILE: u64 = 1024 * 1024;
/// How much of a file shows whether it is binary (a NUL byte), as git and ripgrep look.
pub(super) const PROBE: u64 = 8192;
/// How many files or blobs wait for a worker at most.
const QUEUE: usize = 256;

/// How to scan.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Files and blobs larger than this are skipped (and listed).
    pub max_file_size: u64,
    /// Whether the history of git repositories is read (every commit of every ref).
    pub history: bool,
    /// Worker threads; 0 means one per core.
    pub threads: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            history: true,
            threads: 0,
        }
    }
}

/// A path that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file, directory or repository.
    pub path: String,
    /// What went wrong.
    pub reason: String,
}

/// A git repository whose history was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Repository {
    /// The repository as reached from the scanned paths.
    pub path: String,
    /// Commits read (merges count once per parent).
    pub commits: u64,
    /// Distinct blobs read.
    pub blobs: u64,
}

/// What a scan found and read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScanOutcome {
    /// Private keys found, each with where: sorted by repository, path, line and commit.
    pub found: Vec<FoundKey>,
    /// Encrypted private keys seen (not exposures).
    pub encrypted: usize,
    /// Private keys of kinds that cannot be reduced to a public key (DSA, hardware-bound).
    pub unsupported: usize,
    /// Files read.
    pub files: u64,
    /// Git blobs read.
    pub blobs: u64,
    /// Bytes read from files and blobs.
    pub bytes: u64,
    /// Binary files and blobs skipped (not a whole DER key or PKCS#12; whatever their size).
    pub binary: u64,
    /// Text files and blobs over the size cap, not read.
    pub too_large: Vec<String>,
    /// Files and directories that could not be read.
    pub unreadable: Vec<Problem>,
    /// Repositories whose history was read.
    pub repositories: Vec<Repository>,
    /// Repositories whose history could not be read.
    pub failed_repositories: Vec<Problem>,
}

impl ScanOutcome {
    fn merge(&mut self, other: Self) {
        self.found.extend(other.found);
        self.encrypted += other.encrypted;
        self.unsupported += other.unsupported;
        self.files += other.files;
        self.blobs += other.blobs;
        self.bytes += other.bytes;
        self.binary += other.binary;
        self.too_large.extend(other.too_large);
        self.unreadable.extend(other.unreadable);
        self.repositories.extend(other.repositories);
        self.failed_repositories.extend(other.failed_repositories);
    }
}

/// One unit of work for the readers.
enum Job {
    /// A file to read.
    File { path: PathBuf, at: Location },
    /// A blob already read from git.
    Blob {
        data: Zeroizing<Vec<u8>>,
        at: Location,
    },
}

/// A location with only the path (and repository) known yet.
fn location(path: String, repository: Option<String>) -> Location {
    Location {
        path,
        repository,
        commit: None,
        line: None,
        first_seen: None,
        source: SOURCE.to_string(),
    }
}

/// Scans `paths` (files, directories, repositories). Paths that cannot be read are listed
/// in the outcome, not fatal; the caller checks beforehand that the paths exist.
pub fn scan(paths: &[PathBuf], opts: &ScanOptions) -> ScanOutcome {
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(4, usize::from),
        n => n,
    };
    let (tx, rx) = sync_channel::<Job>(QUEUE);
    let rx = Arc::new(Mutex::new(rx));
    // Only the workers hold the receiver: should they all end, sending fails instead of
    // waiting forever.
    let receivers: Vec<_> = (0..threads).map(|_| Arc::clone(&rx)).collect();
    drop(rx);
    let mut outcome = std::thread::scope(|s| {
        let workers: Vec<_> = receivers
            .into_iter()
            .map(|rx| s.spawn(move || work(&rx, opts.max_file_size)))
            .collect();
        let mut outcome = produce(paths, opts, &tx);
        drop(tx);
        for w in workers {
            match w.join() {
                Ok(part) => outcome.merge(part),
                Err(_) => outcome.unreadable.push(Problem {
                    path: "(scan)".into(),
                    reason: "a reader thread failed; some files may not have been searched".into(),
                }),
            }
        }
        outcome
    });
    outcome.found.sort_by(|a, b| {
        let key = |f: &FoundKey| {
            (
                f.location.repository.clone(),
                f.location.path.clone(),
                f.location.line,
                f.location.commit.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    outcome.too_large.sort();
    outcome.unreadable.sort_by(|a, b| a.path.cmp(&b.path));
    outcome
}

/// Walks the paths and reads the repositories' histories, queueing the work.
fn produce(paths: &[PathBuf], opts: &ScanOptions, tx: &SyncSender<Job>) -> ScanOutcome {
    let mut outcome = ScanOutcome::default();
    let mut repos = Vec::new();
    for path in paths {
        walk::walk(path, tx, &mut outcome, &mut repos);
    }
    if opts.history {
        for repo in repos {
            match git::history(&repo.dir, &repo.display, opts, tx, &mut outcome) {
                Ok(r) => outcome.repositories.push(r),
                Err(reason) => outcome.failed_repositories.push(Problem {
                    path: repo.display,
                    reason,
                }),
            }
        }
    }
    outcome
}

/// A reader thread: takes jobs until the queue closes.
fn work(rx: &Mutex<Receiver<Job>>, max: u64) -> ScanOutcome {
    let mut out = ScanOutcome::default();
    let mut buf = Zeroizing::new(Vec::new());
    loop {
        let job = {
            let guard = match rx.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            guard.recv()
        };
        let Ok(job) = job else { break };
        match job {
            Job::File { path, at } => {
                buf.clear();
                match read_file(&path, max, &mut buf) {
                    Ok(Got::Whole) => {
                        out.files += 1;
                        out.bytes += buf.len() as u64;
                        search(&buf, &at, &mut out);
                    }
                    Ok(Got::Binary) => {
                        out.files += 1;
                        out.bytes += buf.len() as u64;
                        out.binary += 1;
                    }
                    Ok(Got::TooLarge) => out.too_large.push(match &at.repository {
                        Some(r) => format!("{r}/{}", at.path),
                        None => at.path,
                    }),
                    Err(e) => out.unreadable.push(Problem {
                        path: at.path,
                        reason: e.to_string(),
                    }),
                }
            }
            Job::Blob { data, at } => {
                out.blobs += 1;
                out.bytes += data.len() as u64;
                search(&data, &at, &mut out);
            }
        }
    }
    out
}

/// Searches one file's or blob's bytes.
fn search(bytes: &[u8], at: &Location, out: &mut ScanOutcome) {
    // Parsers of hostile input must not panic; if one ever does, only this file is lost,
    // and it is named.
    let Ok(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| keys_in(bytes))) else {
        out.unreadable.push(Problem {
            path: match &at.commit {
                Some(c) => format!("{} (commit {c})", at.path),
                None => at.path.clone(),
            },
            reason: "internal error while searching this file; please report it".into(),
        });
        return;
    };
    out.encrypted += e.encrypted;
    out.unsupported += e.unsupported;
    if e.binary && e.keys.is_empty() {
        out.binary += 1;
    }
    out.found.extend(e.found_at(at));
}

/// How much of a file was read.
enum Got {
    /// All of it.
    Whole,
    /// Its first bytes, which show it is binary and not a DER object.
    Binary,
    /// None: it is over the cap.
    TooLarge,
}

/// Whether the first bytes of a file or blob show binary data that cannot be one DER
/// object of `size` bytes (which is read whole).
pub(super) fn skip_binary(first: &[u8], size: u64) -> bool {
    memchr::memchr(0, first).is_some() && (first.first() != Some(&0x30) || size > MAX_DER_FILE)
}

/// Reads a file into `buf`: whole when it is text or may be one DER object, only its first
/// bytes when they show other binary data, and those only when it is over the cap (binary
/// files over the cap are skipped as binary, not noted as too large).
fn read_file(path: &Path, max: u64, buf: &mut Vec<u8>) -> std::io::Result<Got> {
    let mut file = File::open(path)?;
    let size = file.metadata()?.len();
    if size <= max {
        // usize holds any size under the cap on the platforms certresponder runs on.
        buf.reserve(usize::try_from(size).unwrap_or(0).saturating_add(1));
    }
    (&mut file).take(PROBE).read_to_end(buf)?;
    if skip_binary(buf, size) {
        return Ok(Got::Binary);
    }
    if size > max {
        return Ok(Got::TooLarge);
    }
    // The file may have grown since it was measured: the cap still holds.
    file.take((max + 1).saturating_sub(buf.len() as u64))
        .read_to_end(buf)?;
    if buf.len() as u64 > max {
        return Ok(Got::TooLarge);
    }
    Ok(Got::Whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_found_with_their_lines_and_caps_hold() {
        let dir = tempfile::tempdir().unwrap();
        let k = rcgen::KeyPair::generate().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(
            dir.path().join("a/b/notes.md"),
            format!("x\n\n{}", k.serialize_pem()),
        )
        .unwrap();
        std::fs::write(dir.path().join("big.txt"), vec![b'x'; 5000]).unwrap();
        std::fs::write(dir.path().join("bin"), [0u8, 1, 2, 3]).unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("a/loop")).unwrap();
        let opts = ScanOptions {
            max_file_size: 4096,
            ..ScanOptions::default()
        };
        let out = scan(&[dir.path().to_path_buf()], &opts);
        assert_eq!(out.found.len(), 1, "{out:?}");
        assert_eq!(out.found[0].location.line, Some(3));
        assert!(out.found[0].location.path.ends_with("a/b/notes.md"));
        assert_eq!(out.too_large.len(), 1);
        assert_eq!(out.binary, 1);
        assert_eq!(out.files, 2);
    }
}
