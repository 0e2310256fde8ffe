//! Where private keys are looked for: the files under directories, and every commit of the
//! git repositories among them.
//!
//! - Directories are walked without following symbolic links (no loops, nothing outside
//!   the tree); FIFOs, sockets and devices are skipped, and so are files over the size cap
//!   (noted, text or binary: their size is known before they are opened). Hidden and
//!   git-ignored files are read: a `.env` or a key that is ignored is still on the disk.
//!   Binary files are read whole too, for the DER keys, keystores and text inside them.
//! - A directory that is a git work tree (it holds `.git`) or a bare repository is a
//!   repository: its working files are read as files (keys not yet committed), and, unless
//!   history is turned off, every blob in its object database is read once, unreachable
//!   ones included: with the commit that first added it and that commit's time when a
//!   commit holds it (the `git` CLI, in `git.rs`).
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
use super::{EncryptedKey, FoundKey, Location};

/// The `source` of every location this module reports.
pub const SOURCE: &str = "exposure-scan";
/// Files larger than this are skipped unless told otherwise (50 MiB).
pub const DEFAULT_MAX_FILE_SIZE: u64 = 50 * 1024 * 1024;
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
    /// Commits read that a ref or a reflog reaches (merges count once per parent).
    pub commits: u64,
    /// Commits read that nothing reaches any more (merges count once per parent).
    pub unreachable_commits: u64,
    /// Distinct blobs read.
    pub blobs: u64,
    /// Of those, blobs that no commit a ref or a reflog reaches holds.
    pub unreachable_blobs: u64,
}

/// What a scan found and read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScanOutcome {
    /// Private keys found, each with where: sorted by repository, path, line and commit.
    /// Encrypted keys whose public half is stored in clear beside them are here too, their
    /// locations saying how they are encrypted.
    pub found: Vec<FoundKey>,
    /// Encrypted private keys found (each place counts), whether or not their public half
    /// is known.
    pub encrypted: usize,
    /// Encrypted private keys whose public half is not known, each with where: sorted like
    /// `found`.
    pub encrypted_keys: Vec<EncryptedKey>,
    /// Private keys of kinds that cannot be reduced to a public key (DSA, hardware-bound).
    pub unsupported: usize,
    /// Files read.
    pub files: u64,
    /// Git blobs read.
    pub blobs: u64,
    /// Bytes read from files and blobs.
    pub bytes: u64,
    /// Binary files and blobs read (searched for DER keys, keystores and the text inside).
    pub binary: u64,
    /// Files and blobs over the size cap, not read.
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
        self.encrypted_keys.extend(other.encrypted_keys);
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
        blob: None,
        offset: None,
        encryption: None,
        first_seen: None,
        source: SOURCE.to_string(),
    }
}

/// How found keys are ordered: by repository, path, line, offset and commit.
fn place_order(l: &Location) -> impl Ord + '_ {
    (&l.repository, &l.path, l.line, l.offset, &l.commit, &l.blob)
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
    outcome
        .found
        .sort_by(|a, b| place_order(&a.location).cmp(&place_order(&b.location)));
    outcome
        .encrypted_keys
        .sort_by(|a, b| place_order(&a.location).cmp(&place_order(&b.location)));
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
                    Ok(true) => {
                        out.files += 1;
                        out.bytes += buf.len() as u64;
                        search(&buf, &at, &mut out);
                    }
                    Ok(false) => out.too_large.push(match &at.repository {
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
    out.encrypted += e.encrypted.len();
    out.unsupported += e.unsupported;
    if e.binary {
        out.binary += 1;
    }
    let located = e.found_at(at);
    out.found.extend(located.found);
    out.encrypted_keys.extend(located.encrypted);
}

/// Reads a whole file into `buf`, unless it is over the cap (known from its size before
/// anything is read): `false` then.
fn read_file(path: &Path, max: u64, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    if size > max {
        return Ok(false);
    }
    // usize holds any size under the cap on the platforms certresponder runs on.
    buf.reserve(usize::try_from(size).unwrap_or(0).saturating_add(1));
    // The file may have grown since it was measured: the cap still holds.
    file.take(max.saturating_add(1)).read_to_end(buf)?;
    Ok(buf.len() as u64 <= max)
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
        // Binary files over the cap are not read either, and are listed.
        std::fs::write(dir.path().join("big.bin"), vec![0u8; 5000]).unwrap();
        let out = scan(&[dir.path().to_path_buf()], &opts);
        assert_eq!(out.too_large.len(), 2, "{out:?}");
        assert_eq!(out.binary, 1);
    }
}
