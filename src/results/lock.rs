//! One process per run folder: `<out>/<name>/.<run-id>.lock`, held with an OS file lock
//! (flock) for as long as a process works on that run id, holding the holder's pid.
use anyhow::{bail, Context, Result};
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The lock on one run id; released (and its file removed) when dropped.
pub struct RunLock {
    file: File,
    path: PathBuf,
}

impl RunLock {
    /// Takes the lock of the run that will live at `final_path`, or fails at once naming
    /// the folder and the pid of the process that holds it.
    pub fn take(final_path: &Path) -> Result<Self> {
        let path = lock_path(final_path);
        loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .with_context(|| format!("cannot create the lock file {}", path.display()))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    let holder = fs::read_to_string(&path).unwrap_or_default();
                    bail!(
                        "{} is being written by another pisa process (pid {}); wait for it or \
                         stop it first",
                        final_path.display(),
                        holder.trim()
                    );
                }
                Err(TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("cannot lock {}", path.display()))
                }
            }
            // The holder we raced with may have removed the file before we locked it:
            // then our lock is on a file nobody else sees, so lock the new one instead.
            let same = fs::metadata(&path)
                .is_ok_and(|m| m.ino() == file.metadata().map_or(0, |f| f.ino()));
            if !same {
                continue;
            }
            file.set_len(0)?;
            write!(file, "{}", std::process::id())
                .with_context(|| format!("cannot write {}", path.display()))?;
            return Ok(Self { file, path });
        }
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Removed while still locked, so no other process can lock this file meanwhile.
        let _ = fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// `<parent>/.<leaf>.lock`.
fn lock_path(final_path: &Path) -> PathBuf {
    let leaf = final_path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    final_path.with_file_name(format!(".{leaf}.lock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_run_fails_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("default");
        let first = RunLock::take(&run).unwrap();
        let err = RunLock::take(&run).err().expect("locked").to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains(&run.display().to_string()), "{err}");
        drop(first);
        assert!(
            !lock_path(&run).exists(),
            "the lock file is removed with the lock"
        );
        let _again = RunLock::take(&run).expect("free again");
    }
}
