//! The command line's log output: a `tracing` subscriber on stderr, filtered by `RUST_LOG`
//! (default [`DEFAULT_LOG_FILTER`](super::DEFAULT_LOG_FILTER)), in the app's
//! [`LogFormat`]. Text is coloured only when stderr is a terminal and `NO_COLOR` is unset or
//! empty (<https://no-color.org>), so a file, a pipe or a log shipper never gets escape codes;
//! JSON is never coloured.

use std::ffi::OsStr;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Set once a JSON subscriber is installed: the failures the command line reports then go
/// through it, so every line on stderr stays a JSON object.
static JSON: AtomicBool = AtomicBool::new(false);

/// Whether text lines get ANSI colours: only on a terminal, and not when `NO_COLOR` is set to
/// anything but the empty string.
pub(crate) fn colours(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// Installs the subscriber for `format`; does nothing if one is installed already.
pub(crate) fn install(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(super::DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => {
            let no_color = std::env::var_os("NO_COLOR");
            let ansi = colours(std::io::stderr().is_terminal(), no_color.as_deref());
            let _ = builder.with_ansi(ansi).try_init();
        }
        LogFormat::Json => {
            if builder.json().with_ansi(false).try_init().is_ok() {
                JSON.store(true, Ordering::Release);
            }
        }
    }
}

/// Reports a failure that ends the command: `ferrafka: <text>` on stderr, or an error line
/// when the logs are JSON.
pub(crate) fn report_failure(text: &str) {
    if JSON.load(Ordering::Acquire) {
        tracing::error!(target: "ferrafka::cli", "{text}");
    } else {
        eprintln!("ferrafka: {text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        let set = Some(OsStr::new("1"));
        let empty = Some(OsStr::new(""));
        assert!(colours(true, None));
        assert!(
            colours(true, empty),
            "an empty NO_COLOR is unset (no-color.org)"
        );
        assert!(!colours(true, set));
        assert!(!colours(false, None), "a file or a pipe");
        assert!(!colours(false, empty));
    }
}
