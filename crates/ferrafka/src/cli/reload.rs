//! Reload mode (`server --reload`), the Rust counterpart of Karafka's code reload: Rust code
//! cannot be swapped inside a running process, so the server watches its own executable and,
//! once it was rebuilt or replaced, stops gracefully (in-flight batches finish, offsets are
//! committed, the groups are left) and re-executes the new binary with the same arguments.
//!
//! For development only: in production a binary swap means a deploy, which belongs to the
//! process manager, not to the process itself.

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often the executable is looked at.
const POLL: Duration = Duration::from_millis(300);

/// What identifies one version of a file: replacing it changes the inode, rewriting it in place
/// changes size or modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    Ok(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime: (m.mtime(), m.mtime_nsec()),
    })
}

/// Watches a file from a background thread until dropped.
#[derive(Debug)]
pub(crate) struct Watcher {
    stop: Arc<AtomicBool>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Calls `changed` once, when `path` differs from how it is now and has looked the same for
/// two polls in a row (so a binary still being written is not executed).
pub(crate) fn watch(
    path: PathBuf,
    changed: impl FnOnce() + Send + 'static,
) -> std::io::Result<Watcher> {
    let original = stamp(&path)?;
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    std::thread::Builder::new()
        .name("ferrafka-reload".into())
        .spawn(move || {
            let mut previous = Some(original);
            while !stopped.load(Ordering::Acquire) {
                std::thread::sleep(POLL);
                let now = stamp(&path).ok();
                if now.is_some() && now != Some(original) && now == previous {
                    tracing::info!(executable = %path.display(), "executable changed: reloading");
                    changed();
                    return;
                }
                previous = now;
            }
        })?;
    Ok(Watcher { stop })
}

/// Replaces the process with `exe`, given the same arguments; returns only on failure.
pub(crate) fn reexec(exe: &Path) -> std::io::Error {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let arg0 = if args.is_empty() {
        exe.as_os_str().to_owned()
    } else {
        args.remove(0)
    };
    tracing::info!(executable = %exe.display(), "re-executing");
    std::process::Command::new(exe).arg0(arg0).args(args).exec()
}

/// Why `--reload` is refused in production, and how to override it.
pub(crate) const REFUSED_IN_PRODUCTION: &str = "`server --reload` is refused in production \
    (FERRAFKA_ENV=production): it restarts the process whenever its binary changes on disk, so \
    a half-finished deploy or a stray copy would restart consumers and rebalance the group \
    behind the back of the process manager. Remove --reload, or add \
    --allow-reload-in-production if you really mean it.";

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_replaced_file_is_noticed_once_it_is_stable() {
        let dir = std::env::temp_dir().join(format!("ferrafka-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("app");
        std::fs::write(&file, b"old").unwrap();
        let (tx, rx) = mpsc::channel();
        let _watcher = watch(file.clone(), move || tx.send(()).unwrap()).unwrap();
        assert!(
            rx.recv_timeout(POLL * 4).is_err(),
            "an unchanged file is not reported"
        );
        let new = dir.join("app.new");
        std::fs::write(&new, b"new binary").unwrap();
        std::fs::rename(&new, &file).unwrap();
        rx.recv_timeout(POLL * 10)
            .expect("the replacement is noticed");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
