//! Every blob in a git repository's object database, read once, with the commit that first
//! added it. Four `git` processes do it:
//!
//! 1. `git cat-file --batch-all-objects --batch-check` lists every object, reachable or
//!    not (loose, packed, in alternates), with its type and size: sizes are checked
//!    against the cap before any blob is read;
//! 2. `git log --all --reflog -m --root --topo-order --raw --no-abbrev --no-renames -z`
//!    lists, for every commit of every ref and reflog (merges against each parent), the
//!    blobs it wrote and their paths; the earliest commit (by commit time; between equal
//!    times, the ancestor) that wrote a blob is where it was first exposed;
//! 3. the same, `--no-walk` over the commits listed in 1 that 2 did not reach (a reset
//!    branch after its reflog expired, a dropped stash): each one's own changes, credited
//!    to it only for blobs no reachable commit wrote;
//! 4. `git cat-file --batch` reads each blob under the cap once; blobs no commit holds (a
//!    file staged and never committed) are read too, named by their id.
//!
//! Symbolic links and submodule entries are not blobs to search. The repository's own
//! configuration is not trusted to run anything: the commands used run no hooks, pagers
//! or filters, and the file system monitor is turned off.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::SyncSender;

use chrono::{DateTime, Utc};
use zeroize::Zeroizing;

use super::{Job, Repository, ScanOptions, ScanOutcome, location};

/// Where a blob was first seen.
#[derive(Debug, Clone)]
struct Origin {
    time: i64,
    commit: Arc<str>,
    path: String,
}

/// Variables that would point git at another repository than the one named.
const GIT_ENV: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_CEILING_DIRECTORIES",
    "GIT_CONFIG",
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_EXTERNAL_DIFF",
    "GIT_PAGER",
    "GIT_REPLACE_REF_BASE",
];

/// Settings that keep a scanned repository's own configuration from running anything: the
/// repository may be hostile (its `.git/config` is the attacker's), and scans often run as
/// root. Signature checks, external diff and text conversion, the file-system monitor,
/// pagers and replace objects are all turned off, whatever the repository says.
const NEUTRAL_CONFIG: &[&str] = &[
    "core.fsmonitor=false",
    "core.quotePath=false",
    "core.pager=cat",
    "log.showSignature=false",
    "gpg.program=false",
    "gpg.ssh.program=false",
    "gpg.x509.program=false",
    "diff.external=",
    "core.hooksPath=/dev/null",
    "log.mailmap=false",
];

fn git(repo: &Path) -> Command {
    let mut c = Command::new("git");
    // A repository owned by another user (a scan run as root) is still read: it is only
    // read, and the settings above keep its configured commands from running.
    let absolute = std::path::absolute(repo).unwrap_or_else(|_| repo.to_path_buf());
    c.arg("--no-pager")
        .arg("--no-replace-objects")
        .arg("-c")
        .arg(format!("safe.directory={}", absolute.display()));
    for setting in NEUTRAL_CONFIG {
        c.args(["-c", setting]);
    }
    c.arg("-C")
        .arg(repo)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for v in GIT_ENV {
        c.env_remove(v);
    }
    c
}

fn spawn(mut cmd: Command, what: &str) -> Result<Child, String> {
    cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            format!("cannot read the history: `git` is not installed ({what})")
        }
        _ => format!("cannot run `git {what}`: {e}"),
    })
}

/// Drains a child's stderr on a thread (so that it never blocks on a full pipe).
fn stderr_of(child: &mut Child) -> std::thread::JoinHandle<String> {
    let err = child.stderr.take();
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut e) = err {
            let _ = e.read_to_string(&mut s);
        }
        s
    })
}

/// Writes object ids to a child's input, one a line, on a thread: git answers while it
/// reads, and both pipes must keep moving. Closing the input (when done) ends git's list.
fn write_lines(mut stdin: ChildStdin, ids: Vec<String>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut w = std::io::BufWriter::new(&mut stdin);
        for id in ids {
            if writeln!(w, "{id}").is_err() {
                break;
            }
        }
        let _ = w.flush();
    })
}

fn finish(
    mut child: Child,
    err: std::thread::JoinHandle<String>,
    what: &str,
) -> Result<(), String> {
    let status = child.wait().map_err(|e| format!("`git {what}`: {e}"))?;
    let stderr = err.join().unwrap_or_default();
    if status.success() {
        Ok(())
    } else {
        let msg = stderr
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        Err(format!("`git {what}` failed ({status}): {msg}"))
    }
}

/// Reads the repository's objects into the queue; blobs over the cap are noted in
/// `outcome` as too large, unread.
pub(super) fn history(
    repo: &Path,
    shown: &str,
    opts: &ScanOptions,
    tx: &SyncSender<Job>,
    outcome: &mut ScanOutcome,
) -> Result<Repository, String> {
    let objects = objects(repo)?;
    let reached = walk(repo, Walk::Refs)?;
    let unreachable: Vec<String> = objects
        .commits
        .iter()
        .filter(|c| !reached.commits.contains(c.as_str()))
        .cloned()
        .collect();
    let dangling = if unreachable.is_empty() {
        Walked::default()
    } else {
        // A damaged unreachable commit must not cost the rest of the history: its blobs are
        // still read below, named by their ids.
        walk(repo, Walk::Commits(unreachable)).unwrap_or_else(|reason| {
            outcome.unreadable.push(super::Problem {
                path: format!("{shown} (unreachable commits)"),
                reason,
            });
            Walked::default()
        })
    };
    let mut summary = Repository {
        path: shown.to_string(),
        commits: reached.read,
        unreachable_commits: dangling.read,
        blobs: 0,
        unreachable_blobs: 0,
    };
    // Reachable blobs keep their first reachable commit; the rest are credited to the
    // first unreachable commit that wrote them, or to none.
    let mut origins = reached.origins;
    let reachable: HashSet<String> = origins.keys().cloned().collect();
    for (id, origin) in dangling.origins {
        origins.entry(id).or_insert(origin);
    }
    // Blobs no commit wrote (symbolic links aside): staged and never committed, or
    // left by a tree no commit holds.
    let mut orphans: Vec<String> = objects
        .blobs
        .keys()
        .filter(|id| {
            !origins.contains_key(*id)
                && !reached.skipped.contains(*id)
                && !dangling.skipped.contains(*id)
        })
        .cloned()
        .collect();
    orphans.sort();
    let mut list: Vec<(String, Option<Origin>)> =
        origins.into_iter().map(|(id, o)| (id, Some(o))).collect();
    // Oldest first: the output then reads like the history.
    list.sort_by(|(a_id, a), (b_id, b)| (when(a), a_id).cmp(&(when(b), b_id)));
    list.extend(orphans.into_iter().map(|id| (id, None)));

    // Sizes are known: only blobs under the cap are asked for.
    let mut wanted = Vec::new();
    for (id, origin) in list {
        // A blob the walk named but the database lacks (a shallow or partial clone).
        let Some(&size) = objects.blobs.get(&id) else {
            continue;
        };
        let at = blob_location(shown, &id, origin.as_ref());
        if size > opts.max_file_size {
            outcome.too_large.push(match (&at.commit, &at.blob) {
                (Some(c), _) => format!("{shown}/{} (commit {})", at.path, short(c)),
                _ => format!("{shown}: blob {id}"),
            });
            continue;
        }
        if !reachable.contains(&id) {
            summary.unreachable_blobs += 1;
        }
        wanted.push((id, size, at));
    }
    summary.blobs = read_blobs(repo, wanted, tx)?;
    Ok(summary)
}

/// How credited blobs are ordered: by time, then path.
fn when(o: &Option<Origin>) -> Option<(i64, &str)> {
    o.as_ref().map(|o| (o.time, o.path.as_str()))
}

/// Where a blob is: its first commit and path, or, for a blob no commit holds, its id.
fn blob_location(shown: &str, id: &str, origin: Option<&Origin>) -> super::Location {
    match origin {
        Some(o) => {
            let mut at = location(o.path.clone(), Some(shown.to_string()));
            at.commit = Some(o.commit.to_string());
            at.first_seen = DateTime::<Utc>::from_timestamp(o.time, 0);
            at
        }
        None => {
            let mut at = location("(in no commit)".to_string(), Some(shown.to_string()));
            at.blob = Some(id.to_string());
            at
        }
    }
}

/// Reads the blobs (id, size from the listing, location) with `git cat-file --batch` into
/// the queue; returns how many were read.
fn read_blobs(
    repo: &Path,
    wanted: Vec<(String, u64, super::Location)>,
    tx: &SyncSender<Job>,
) -> Result<u64, String> {
    if wanted.is_empty() {
        return Ok(0);
    }
    let what = "cat-file --batch";
    let mut cmd = git(repo);
    cmd.args(["cat-file", "--batch"]).stdin(Stdio::piped());
    let mut child = spawn(cmd, what)?;
    let err = stderr_of(&mut child);
    let Some(stdin) = child.stdin.take() else {
        return Err(format!("`git {what}`: no input pipe"));
    };
    let Some(stdout) = child.stdout.take() else {
        return Err(format!("`git {what}`: no output pipe"));
    };
    let writer = write_lines(stdin, wanted.iter().map(|(id, _, _)| id.clone()).collect());
    let mut out = BufReader::with_capacity(1 << 16, stdout);
    let mut header = String::new();
    let mut read = 0u64;
    for (id, listed, at) in wanted {
        header.clear();
        if out
            .read_line(&mut header)
            .map_err(|e| format!("`git {what}`: {e}"))?
            == 0
        {
            return Err(format!("`git {what}` stopped early"));
        }
        let mut fields = header.split_ascii_whitespace();
        let (Some(got), Some(kind)) = (fields.next(), fields.next()) else {
            return Err(format!("`git {what}`: unexpected output"));
        };
        if got != id {
            return Err(format!("`git {what}`: answers out of order"));
        }
        if kind == "missing" {
            continue;
        }
        let size: u64 = fields
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("`git {what}`: unexpected output"))?;
        // The listing gave the size before anything was read; an object's content cannot
        // change under its id, so another size is a broken repository or pipe.
        if kind != "blob" || size != listed {
            return Err(format!(
                "`git {what}`: object {id} is not the {listed}-byte blob the listing named"
            ));
        }
        // usize holds any size under the cap on the platforms certresponder runs on.
        let mut data = Zeroizing::new(Vec::with_capacity(usize::try_from(size).unwrap_or(0)));
        (&mut out)
            .take(size)
            .read_to_end(&mut data)
            .map_err(|e| format!("`git {what}`: {e}"))?;
        let mut newline = [0u8; 1];
        out.read_exact(&mut newline)
            .map_err(|e| format!("`git {what}`: {e}"))?;
        read += 1;
        if tx.send(Job::Blob { data, at }).is_err() {
            break;
        }
    }
    drop(out);
    let _ = writer.join();
    finish(child, err, what)?;
    Ok(read)
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// The object database's blobs (id to size) and commits.
#[derive(Debug, Default)]
struct Objects {
    blobs: HashMap<String, u64>,
    commits: Vec<String>,
}

/// Every object, reachable or not, with its type and size.
fn objects(repo: &Path) -> Result<Objects, String> {
    let what = "cat-file --batch-all-objects --batch-check";
    let mut cmd = git(repo);
    cmd.args([
        "cat-file",
        "--batch-all-objects",
        "--unordered",
        "--batch-check=%(objectname) %(objecttype) %(objectsize)",
    ]);
    let mut child = spawn(cmd, what)?;
    let err = stderr_of(&mut child);
    let Some(stdout) = child.stdout.take() else {
        return Err(format!("`git {what}`: no output pipe"));
    };
    let mut objects = Objects::default();
    for line in BufReader::with_capacity(1 << 16, stdout).lines() {
        let line = line.map_err(|e| format!("`git {what}`: {e}"))?;
        let mut f = line.split(' ');
        let (Some(id), Some(kind), Some(size)) = (f.next(), f.next(), f.next()) else {
            return Err(format!("`git {what}`: unexpected output"));
        };
        match kind {
            "blob" => {
                let size = size
                    .parse()
                    .map_err(|_| format!("`git {what}`: unexpected output"))?;
                objects.blobs.insert(id.to_string(), size);
            }
            "commit" => objects.commits.push(id.to_string()),
            _ => {}
        }
    }
    finish(child, err, what)?;
    Ok(objects)
}

/// Which commits a walk reads.
enum Walk {
    /// Every commit of every ref and reflog, and their ancestors.
    Refs,
    /// These commits alone, each against its parents.
    Commits(Vec<String>),
}

/// What a walk found.
#[derive(Debug, Default)]
struct Walked {
    /// Every blob written, with where it first appeared.
    origins: HashMap<String, Origin>,
    /// The commits read.
    commits: HashSet<String>,
    /// Commits read, merges once per parent.
    read: u64,
    /// Blobs written as symbolic links (not searched).
    skipped: HashSet<String>,
}

/// Every blob the walk's commits wrote, with where it first appeared, and the commits read.
fn walk(repo: &Path, which: Walk) -> Result<Walked, String> {
    let what = "log --raw";
    let mut cmd = git(repo);
    cmd.arg("log");
    match &which {
        Walk::Refs => {
            cmd.args([
                "--all",
                // Commits only the reflog still reaches: how a leaked key is usually
                // "removed" (an amended commit, a reset branch).
                "--reflog",
                "--topo-order",
            ]);
        }
        Walk::Commits(_) => {
            cmd.args(["--no-walk", "--stdin"]).stdin(Stdio::piped());
        }
    }
    cmd.args([
        "--no-show-signature",
        "--no-textconv",
        "--no-ext-diff",
        "-m",
        "--root",
        "--raw",
        "--no-abbrev",
        "--no-renames",
        "--no-color",
        "-z",
        "--format=%x01%H %ct",
    ]);
    let mut child = spawn(cmd, what)?;
    let err = stderr_of(&mut child);
    let writer = match (which, child.stdin.take()) {
        (Walk::Commits(ids), Some(stdin)) => Some(write_lines(stdin, ids)),
        _ => None,
    };
    let Some(stdout) = child.stdout.take() else {
        return Err(format!("`git {what}`: no output pipe"));
    };
    let mut walked = Walked::default();
    let mut commit: Option<(Arc<str>, i64)> = None;
    let mut out = BufReader::with_capacity(1 << 16, stdout);
    let mut token = Vec::new();
    // A raw entry was read and its path comes next: the blob to note, if any.
    let mut pending: Option<Option<String>> = None;
    loop {
        token.clear();
        if out
            .read_until(0, &mut token)
            .map_err(|e| format!("`git {what}`: {e}"))?
            == 0
        {
            break;
        }
        if token.last() == Some(&0) {
            token.pop();
        }
        if let Some(entry) = pending.take() {
            if let (Some(id), Some((c, t))) = (entry, &commit) {
                let path = String::from_utf8_lossy(&token).into_owned();
                let older = walked.origins.get(&id).is_none_or(|o| *t <= o.time);
                if older {
                    walked.origins.insert(
                        id,
                        Origin {
                            time: *t,
                            commit: Arc::clone(c),
                            path,
                        },
                    );
                }
            }
            continue;
        }
        let text = String::from_utf8_lossy(&token);
        let text = text.trim_start_matches('\n');
        if let Some(header) = text.strip_prefix('\u{1}') {
            let mut f = header.split(' ');
            let (Some(hash), Some(time)) = (f.next(), f.next().and_then(|t| t.trim().parse().ok()))
            else {
                return Err(format!("`git {what}`: unexpected output"));
            };
            walked.read += 1;
            walked.commits.insert(hash.to_string());
            commit = Some((Arc::from(hash), time));
        } else if let Some(raw) = text.strip_prefix(':') {
            // `:old_mode new_mode old_id new_id status`, then the path.
            let f: Vec<&str> = raw.split(' ').collect();
            let (Some(mode), Some(id), Some(status)) = (f.get(1), f.get(3), f.get(4)) else {
                return Err(format!("`git {what}`: unexpected output"));
            };
            let written = !status.starts_with('D') && id.bytes().any(|b| b != b'0');
            let link = mode.starts_with("120");
            if written && link {
                walked.skipped.insert((*id).to_string());
            }
            let searchable = !mode.starts_with("160") && !link;
            pending = Some((written && searchable).then(|| (*id).to_string()));
        }
    }
    if let Some(w) = writer {
        let _ = w.join();
    }
    finish(child, err, what)?;
    Ok(walked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git_in(repo: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=Test",
                "-c",
                "user.email=test@example.com",
                "-c",
                "init.defaultBranch=main",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(repo)
            .output()
            .expect("git must be installed (scripts/test installs it)");
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    #[test]
    fn blobs_name_the_first_commit_across_branches_merges_and_odd_paths() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();
        git_in(repo, &["init", "-q"]);
        std::fs::write(repo.join("a b\nc.txt"), "one\n").unwrap();
        std::os::unix::fs::symlink("a b\nc.txt", repo.join("link")).unwrap();
        git_in(repo, &["add", "."]);
        git_in(repo, &["commit", "-q", "-m", "one"]);
        let first = git_in(repo, &["rev-parse", "HEAD"]);
        git_in(repo, &["checkout", "-q", "-b", "side"]);
        std::fs::write(repo.join("side.txt"), "side\n").unwrap();
        git_in(repo, &["add", "."]);
        git_in(repo, &["commit", "-q", "-m", "side"]);
        let side = git_in(repo, &["rev-parse", "HEAD"]);
        git_in(repo, &["checkout", "-q", "main"]);
        std::fs::write(repo.join("a b\nc.txt"), "two\n").unwrap();
        git_in(repo, &["commit", "-q", "-am", "two"]);
        git_in(repo, &["merge", "-q", "--no-edit", "side"]);
        git_in(repo, &["rm", "-q", "side.txt"]);
        git_in(repo, &["commit", "-q", "-m", "drop"]);

        let walked = walk(repo, Walk::Refs).unwrap();
        // one, side, two, the merge (twice: once per parent), drop.
        assert_eq!(walked.read, 6);
        let list: Vec<(String, Origin)> = walked.origins.into_iter().collect();
        let paths: Vec<&str> = list.iter().map(|(_, o)| o.path.as_str()).collect();
        assert_eq!(list.len(), 3, "{paths:?}");
        assert!(paths.contains(&"a b\nc.txt"));
        let side_blob = list.iter().find(|(_, o)| o.path == "side.txt").unwrap();
        assert_eq!(&*side_blob.1.commit, side.as_str());
        let first_blob = list
            .iter()
            .find(|(_, o)| &*o.commit == first.as_str())
            .unwrap();
        assert_eq!(first_blob.1.path, "a b\nc.txt");
    }
}
