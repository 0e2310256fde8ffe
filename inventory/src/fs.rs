//! Atomic file writes: a temporary file in the same directory, fsync, rename over the
//! target, fsync the directory. The owner and mode of a replaced file are kept; a new file
//! gets the mode asked for (0600 for private keys).
//!
//! [`StagedFile`] splits the write in two, so that several files can be prepared first and
//! replaced together only once all of them were written: a deployment then either changes
//! every location or none (short of a failed rename, which on one file system means a
//! vanished directory).

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` atomically. `new_mode` applies when `path` does not exist yet.
pub fn write_atomic(path: &Path, bytes: &[u8], new_mode: u32) -> io::Result<()> {
    StagedFile::stage(path, bytes, new_mode)?.commit()
}

/// How [`StagedFile::stage_location`] writes a deployment location.
#[derive(Debug, Clone, Copy)]
pub struct LocationOptions {
    /// The mode of a file that does not exist yet.
    pub new_mode: u32,
    /// Whether the file holds a private key.
    pub secret: bool,
    /// Whether a symbolic link at the location is followed to the file it points to.
    pub follow_symlinks: bool,
}

/// Gives the staged file `f` the owner and group of `old`, as far as this process may: both
/// (root), else the group alone (a member of it), else neither; a group that has access
/// (`mode`'s group bits) and cannot be kept is an error naming `path`, the group and the fix.
fn keep_owner(f: &File, old: &fs::Metadata, mode: u32, path: &Path) -> io::Result<()> {
    let both = std::os::unix::fs::fchown(f, Some(old.uid()), Some(old.gid()));
    match both {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() != io::ErrorKind::PermissionDenied => return Err(e),
        Err(_) => {}
    }
    match std::os::unix::fs::fchown(f, None, Some(old.gid())) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() != io::ErrorKind::PermissionDenied => Err(e),
        Err(_) if mode & 0o070 == 0 => Ok(()),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} belongs to group {gid}, which reads it, and this process is not a member of that group, so the new file could not keep it; add the service account to the group (`usermod -aG {gid} certresponder`, by name or number) or `chgrp` the file to a group it is in",
                path.display(),
                gid = old.gid()
            ),
        )),
    }
}

/// Removes the temporary files another process left beside `target` when it was killed
/// while staging (`.NAME.tmp.PID.N`, PID not this process); returns how many.
pub fn sweep_temp_files(target: &Path) -> io::Result<usize> {
    let Some(name) = target.file_name().and_then(|n| n.to_str()) else {
        return Ok(0);
    };
    let prefix = format!(".{name}.tmp.");
    let ours = format!("{prefix}{}.", std::process::id());
    let dir = parent_dir(target);
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let file = entry.file_name();
        let Some(file) = file.to_str() else {
            continue;
        };
        if file.starts_with(&prefix)
            && !file.starts_with(&ours)
            && entry.file_type().is_ok_and(|t| t.is_file())
        {
            match fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

/// Distinguishes the temporary files of one process: two tasks staging files in the same
/// directory at once must not pick the same name.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// How many names to try when a temporary name is taken (by a leftover of a crashed
/// process that had the same pid, say).
const TEMP_ATTEMPTS: u32 = 16;

/// A file written and fsynced under a temporary name beside its target, not yet renamed
/// over it. [`commit`](Self::commit) puts it in place; dropping it uncommitted removes the
/// temporary file and leaves the target untouched.
#[derive(Debug)]
pub struct StagedFile {
    target: PathBuf,
    temp: PathBuf,
    dir: PathBuf,
    committed: bool,
}

impl StagedFile {
    /// Writes `bytes` to a new temporary file in `path`'s directory and fsyncs it. The file
    /// gets the mode and owner of the `path` it will replace, or `new_mode` when `path`
    /// does not exist yet. On error nothing is left behind.
    pub fn stage(path: &Path, bytes: &[u8], new_mode: u32) -> io::Result<Self> {
        let dir = parent_dir(path).to_path_buf();
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
        let existing = fs::metadata(path).ok();
        let mode = existing
            .as_ref()
            .map_or(new_mode, |m| m.permissions().mode() & 0o7777);
        let (mut f, temp) = create_temp(&dir, name, mode)?;
        // From here the temporary file exists: an error must remove it, which dropping the
        // uncommitted value does.
        let staged = Self {
            target: path.to_path_buf(),
            temp,
            dir,
            committed: false,
        };
        // The umask may have narrowed the mode; set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        if let Some(m) = &existing {
            // Keep the owner of what is replaced; only root may give files away.
            if let Err(e) = std::os::unix::fs::fchown(&f, Some(m.uid()), Some(m.gid()))
                && e.kind() != io::ErrorKind::PermissionDenied
            {
                return Err(e);
            }
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        Ok(staged)
    }

    /// Stages `bytes` for a deployment location `path`, as [`StagedFile::stage`] does, with
    /// the rules for the files services read keys from:
    ///
    /// - A symbolic link at `path` is refused, unless `opts.follow_symlinks`: then the file it
    ///   resolves to is replaced, in its own directory (never written through the link).
    ///   Anything else that is not a regular file is refused.
    /// - A file that holds a private key (`opts.secret`) is never readable by others nor
    ///   writable or executable by its group, whatever the old file's mode (`mode & 0o640`);
    ///   a new one gets `opts.new_mode`.
    /// - The replaced file's owner and group are kept where the process may set them (root
    ///   may; an unprivileged service keeps the group when it is a member, and becomes the
    ///   owner). A group that has access to the file and cannot be kept is an error before
    ///   anything is written, naming the group and the fix.
    pub fn stage_location(path: &Path, bytes: &[u8], opts: &LocationOptions) -> io::Result<Self> {
        let path = match fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => {
                if !opts.follow_symlinks {
                    return Err(io::Error::other(format!(
                        "{} is a symbolic link; certresponder does not write through links (set `follow_symlinks = true` in the entry to replace the file it points to, as in a certbot live/ tree)",
                        path.display()
                    )));
                }
                let target = fs::canonicalize(path).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("{}: the file the link points to: {e}", path.display()),
                    )
                })?;
                if !fs::symlink_metadata(&target)?.file_type().is_file() {
                    return Err(io::Error::other(format!(
                        "{} points to {}, which is not a regular file",
                        path.display(),
                        target.display()
                    )));
                }
                target
            }
            Ok(m) if !m.file_type().is_file() => {
                return Err(io::Error::other(format!(
                    "{} is not a regular file",
                    path.display()
                )));
            }
            Ok(_) => path.to_path_buf(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => path.to_path_buf(),
            Err(e) => return Err(e),
        };
        // What a process killed while staging left beside the file (key material, fsynced)
        // goes before anything new is written.
        sweep_temp_files(&path)?;
        let existing = fs::symlink_metadata(&path).ok();
        let mode = match &existing {
            Some(m) if opts.secret => m.permissions().mode() & 0o640,
            Some(m) => m.permissions().mode() & 0o7777,
            None => opts.new_mode,
        };
        let dir = parent_dir(&path).to_path_buf();
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
        let (mut f, temp) = create_temp(&dir, name, mode)?;
        let staged = Self {
            target: path.clone(),
            temp,
            dir,
            committed: false,
        };
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        if let Some(m) = &existing {
            keep_owner(&f, m, mode, &path)?;
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        Ok(staged)
    }

    /// The file this will replace.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The temporary file holding the new content.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// The directory of the target (and of the temporary file).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Renames the temporary file over the target and fsyncs the directory.
    pub fn commit(self) -> io::Result<()> {
        let dir = self.dir.clone();
        self.rename()?;
        sync_dir(&dir)
    }

    /// Renames the temporary file over the target without syncing the directory; the
    /// caller syncs it (once for several files, see [`commit_all`]). On error the temporary
    /// file is removed.
    pub fn rename(mut self) -> io::Result<()> {
        fs::rename(&self.temp, &self.target)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Why [`commit_all`] stopped.
#[derive(Debug)]
pub struct CommitError {
    /// The position, in the list given, of the file whose rename (or whose directory's
    /// fsync) failed.
    pub index: usize,
    /// The targets already replaced when it failed.
    pub replaced: Vec<PathBuf>,
    /// The operating system's error.
    pub source: io::Error,
}

/// Renames every staged file over its target in order, in quick succession, then fsyncs
/// each directory once. Should a rename fail, the files after it are not renamed (their
/// temporary files are removed), the directories of those already renamed are still
/// synced, and the error says which file failed and what was already replaced.
pub fn commit_all(files: Vec<StagedFile>) -> Result<Vec<PathBuf>, CommitError> {
    commit_all_then(files, |_| {})
}

/// [`commit_all`], calling `after_rename` with the index of each file once it is renamed
/// into place (the crash tests stop the process there, between two renames).
pub fn commit_all_then(
    files: Vec<StagedFile>,
    mut after_rename: impl FnMut(usize),
) -> Result<Vec<PathBuf>, CommitError> {
    let mut replaced = Vec::with_capacity(files.len());
    let mut dirs: Vec<(PathBuf, usize)> = Vec::new();
    let mut failure = None;
    for (index, file) in files.into_iter().enumerate() {
        if failure.is_some() {
            // Dropped uncommitted: its temporary file is removed.
            continue;
        }
        let target = file.target.clone();
        let dir = file.dir.clone();
        match file.rename() {
            Ok(()) => {
                replaced.push(target);
                if !dirs.iter().any(|(d, _)| *d == dir) {
                    dirs.push((dir, index));
                }
                after_rename(index);
            }
            Err(source) => failure = Some((index, source)),
        }
    }
    for (dir, index) in &dirs {
        if let Err(source) = sync_dir(dir)
            && failure.is_none()
        {
            failure = Some((*index, source));
        }
    }
    match failure {
        None => Ok(replaced),
        Some((index, source)) => Err(CommitError {
            index,
            replaced,
            source,
        }),
    }
}

/// Fsyncs a directory, making the renames and creations in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Creates `.<name>.tmp.<pid>.<counter>` in `dir`, exclusively, with `mode`.
fn create_temp(dir: &Path, name: &std::ffi::OsStr, mode: u32) -> io::Result<(File, PathBuf)> {
    let mut attempt = 0;
    loop {
        let mut temp_name = OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(
            ".tmp.{}.{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let temp = dir.join(temp_name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)
        {
            Ok(f) => return Ok((f, temp)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt + 1 < TEMP_ATTEMPTS => {
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Creates a directory (and parents) with the given mode for any directory it creates.
pub fn create_dir_with_mode(path: &Path, mode: u32) -> io::Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_file_gets_mode_and_replacement_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key.pem");
        write_atomic(&p, b"one", 0o600).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o640
        );
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1);
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut n: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    }

    #[test]
    fn uncommitted_stage_leaves_target_untouched_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cert.pem");
        fs::write(&p, b"old").unwrap();
        let staged = StagedFile::stage(&p, b"new", 0o644).unwrap();
        assert!(staged.temp_path().exists());
        assert_eq!(staged.target(), p);
        assert_eq!(fs::read(&p).unwrap(), b"old");
        drop(staged);
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["cert.pem"]);
        // A directory that does not exist: nothing is created.
        let missing = dir.path().join("nope").join("x.pem");
        assert!(StagedFile::stage(&missing, b"x", 0o600).is_err());
        assert_eq!(names(dir.path()), ["cert.pem"]);
    }

    #[test]
    fn commit_all_replaces_every_file() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let targets = [
            a.path().join("one"),
            a.path().join("two"),
            b.path().join("three"),
        ];
        fs::write(&targets[0], b"old").unwrap();
        fs::set_permissions(&targets[0], fs::Permissions::from_mode(0o640)).unwrap();
        let staged: Vec<StagedFile> = targets
            .iter()
            .map(|t| StagedFile::stage(t, t.to_string_lossy().as_bytes(), 0o600).unwrap())
            .collect();
        let replaced = commit_all(staged).unwrap();
        assert_eq!(replaced, targets);
        for t in &targets {
            assert_eq!(fs::read(t).unwrap(), t.to_string_lossy().as_bytes());
        }
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&targets[0]), 0o640);
        assert_eq!(mode(&targets[1]), 0o600);
        assert_eq!(names(a.path()), ["one", "two"]);
        assert_eq!(names(b.path()), ["three"]);
    }

    #[test]
    fn concurrent_stages_in_one_directory_do_not_collide() {
        let dir = tempfile::tempdir().unwrap();
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let p = dir.path().join(format!("f{}", i % 2));
                std::thread::spawn(move || StagedFile::stage(&p, b"x", 0o600).unwrap())
            })
            .collect();
        let staged: Vec<StagedFile> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let mut temps: Vec<&Path> = staged.iter().map(StagedFile::temp_path).collect();
        temps.sort();
        temps.dedup();
        assert_eq!(temps.len(), 8);
        drop(staged);
        assert!(names(dir.path()).is_empty());
    }
}
