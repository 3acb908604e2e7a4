//! `doctor`: checks the app against the development-versus-production checklist (see
//! [`crate::doctor`] and `docs/doctor.md`).
//!
//! `--env X` evaluates the app as built for `X`. Only the user's binary knows its routes and its
//! `setup`, and both may branch on the environment, so the app cannot be rebuilt for another
//! environment from inside the process: when `X` differs from the environment the app was
//! built for, `doctor` runs this executable again with `FERRAFKA_ENV=X` (and the same
//! arguments) and passes its exit code on. `doctor --env production` is therefore exactly
//! `FERRAFKA_ENV=production <app> doctor`, with every other variable (`FERRAFKA_KAFKA_*`)
//! unchanged.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::app::App;
use crate::config::{ENV_VAR, Environment};
use crate::declaratives::lock;
use crate::doctor::{self, DoctorOptions};

/// Set on the re-executed child so that an app that ignores `FERRAFKA_ENV` cannot loop.
const REEXEC_MARK: &str = "FERRAFKA_DOCTOR_REEXEC";

const EXIT_CODES: &str = "Exit codes: 0 no errors (with --strict: no errors and no warnings), \
1 errors found (with --strict: or warnings), or doctor could not run. clap exits with 2 on a \
command line it cannot parse.";

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A readable report grouped by severity.
    Text,
    /// JSON for CI tools.
    Json,
}

/// Arguments of `doctor`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub struct DoctorArgs {
    /// Evaluate the app as built for this environment (re-runs the binary with FERRAFKA_ENV
    /// set); default: the current FERRAFKA_ENV.
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,
    /// Also check the cluster the app is configured for.
    #[arg(long)]
    pub live: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Exit non-zero on warnings too.
    #[arg(long)]
    pub strict: bool,
    /// Check as if the server will run with `--reload`.
    #[arg(long)]
    pub reload: bool,
    /// The topics lock file that declarations are compared with.
    #[arg(
        long,
        value_name = "PATH",
        default_value = lock::DEFAULT_PATH,
        env = "FERRAFKA_TOPICS_LOCK"
    )]
    pub lock_file: PathBuf,
}

impl DoctorArgs {
    /// The library options these arguments describe.
    pub fn options(&self) -> DoctorOptions {
        DoctorOptions {
            live: self.live,
            reload: self.reload,
            lock_file: self.lock_file.clone(),
            ..DoctorOptions::default()
        }
    }
}

/// Runs `doctor` from an already parsed command line, printing the report to stdout.
pub(crate) fn main(app: &App, args: &DoctorArgs) -> ExitCode {
    if let Some(name) = &args.env {
        let wanted = Environment::from_name(name);
        if &wanted != app.config().env() {
            return reexec_for(&wanted, app.config().env());
        }
    }
    let report = doctor::run(app, &args.options());
    match args.format {
        Format::Text => print!("{}", report.to_text()),
        Format::Json => println!("{}", report.to_json()),
    }
    ExitCode::from(report.exit_code(args.strict))
}

/// Runs this executable again with `FERRAFKA_ENV` set to `wanted`.
fn reexec_for(wanted: &Environment, built_for: &Environment) -> ExitCode {
    if std::env::var_os(REEXEC_MARK).is_some() {
        eprintln!(
            "ferrafka: doctor --env {wanted}: the app was built for {built_for} although \
             FERRAFKA_ENV={wanted}; build it with `App::builder()` (which reads FERRAFKA_ENV) so \
             doctor can evaluate another environment, or run the binary with \
             FERRAFKA_ENV={wanted} yourself"
        );
        return ExitCode::from(1);
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("ferrafka: doctor --env {wanted}: cannot find this executable: {e}");
            return ExitCode::from(1);
        }
    };
    let status = std::process::Command::new(&exe)
        .args(std::env::args_os().skip(1))
        .env(ENV_VAR, wanted.name())
        .env(REEXEC_MARK, "1")
        .status();
    match status {
        Ok(status) => ExitCode::from(status.code().map_or(1, |c| c.clamp(0, 255) as u8)),
        Err(e) => {
            eprintln!(
                "ferrafka: doctor --env {wanted}: cannot run {} again: {e}",
                exe.display()
            );
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn doctor_arguments_parse() {
        let cli = crate::cli::Cli::parse_from([
            "app",
            "doctor",
            "--env",
            "production",
            "--live",
            "--format",
            "json",
            "--strict",
        ]);
        let crate::cli::Command::Doctor(args) = cli.command else {
            panic!("expected doctor")
        };
        assert_eq!(args.env.as_deref(), Some("production"));
        assert!(args.live && args.strict && !args.reload);
        assert_eq!(args.format, Format::Json);
        let opts = args.options();
        assert!(opts.live);
        assert_eq!(opts.lock_file, PathBuf::from("topics.lock"));
        let cli = crate::cli::Cli::parse_from(["app", "doctor"]);
        let crate::cli::Command::Doctor(args) = cli.command else {
            panic!("expected doctor")
        };
        assert_eq!(args.format, Format::Text);
        assert!(args.env.is_none() && !args.live && !args.strict);
    }
}
