//! Walking the scanned paths: regular files are queued, symbolic links are not followed
//! (a path given on the command line is, as a user expects), git repositories are noted for
//! their history.

use std::fs::FileType;
use std::path::{Path, PathBuf};
use std::sync::mpsc::SyncSender;

use super::{Job, Problem, ScanOutcome, location};

/// A repository found while walking.
#[derive(Debug)]
pub(super) struct Repo {
    /// Its directory (the work tree, or the bare repository).
    pub(super) dir: PathBuf,
    /// As shown to the user.
    pub(super) display: String,
}

/// Where a directory sits: inside a repository's work tree (its root and how it is shown)
/// or not.
#[derive(Debug, Clone)]
struct Context {
    repo: Option<(PathBuf, String)>,
}

fn display(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A bare repository: `HEAD`, `objects/` and `refs/` directly inside.
fn is_bare_repo(dir: &Path) -> bool {
    dir.join("HEAD").is_file() && dir.join("objects").is_dir() && dir.join("refs").is_dir()
}

/// A work tree's root: it holds `.git` (a directory, or a file for linked work trees and
/// submodules).
fn is_work_tree(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir.join(".git")).is_ok()
}

/// Walks one scanned path.
pub(super) fn walk(
    root: &Path,
    tx: &SyncSender<Job>,
    outcome: &mut ScanOutcome,
    repos: &mut Vec<Repo>,
) {
    let meta = match std::fs::metadata(root) {
        Ok(m) => m,
        Err(e) => {
            outcome.unreadable.push(Problem {
                path: display(root),
                reason: e.to_string(),
            });
            return;
        }
    };
    if !meta.is_dir() {
        file(root, &meta.file_type(), &Context { repo: None }, tx);
        return;
    }
    let mut stack = vec![(root.to_path_buf(), Context { repo: None })];
    while let Some((dir, ctx)) = stack.pop() {
        let Some(ctx) = enter(&dir, ctx, repos) else {
            continue;
        };
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                outcome.unreadable.push(Problem {
                    path: display(&dir),
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let mut subdirs = Vec::new();
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    outcome.unreadable.push(Problem {
                        path: display(&dir),
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if entry.file_name() != ".git" {
                    subdirs.push(path);
                }
                continue;
            }
            // Symbolic links, FIFOs, sockets and devices are not read.
            file(&path, &kind, &ctx, tx);
        }
        // Sorted and reversed onto the stack: directories are read in name order.
        subdirs.sort();
        stack.extend(subdirs.into_iter().rev().map(|d| (d, ctx.clone())));
    }
}

/// Notes a repository at `dir`; returns the context for its contents, or `None` when its
/// files are not to be walked (a bare repository: history only).
fn enter(dir: &Path, ctx: Context, repos: &mut Vec<Repo>) -> Option<Context> {
    if is_bare_repo(dir) {
        repos.push(Repo {
            dir: dir.to_path_buf(),
            display: display(dir),
        });
        return None;
    }
    if is_work_tree(dir) {
        repos.push(Repo {
            dir: dir.to_path_buf(),
            display: display(dir),
        });
        return Some(Context {
            repo: Some((dir.to_path_buf(), display(dir))),
        });
    }
    Some(ctx)
}

/// Queues a regular file.
fn file(path: &Path, kind: &FileType, ctx: &Context, tx: &SyncSender<Job>) {
    if !kind.is_file() {
        return;
    }
    let at = match &ctx.repo {
        Some((root, shown)) => {
            let rel = path.strip_prefix(root).unwrap_or(path);
            location(display(rel), Some(shown.clone()))
        }
        None => location(display(path), None),
    };
    // The receivers only go away when every worker failed; the outcome says so then.
    let _ = tx.send(Job::File {
        path: path.to_path_buf(),
        at,
    });
}
