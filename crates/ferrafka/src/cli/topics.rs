//! `topics <action>`: manage the declared topics (see [`crate::declaratives`]).
//!
//! Actions that talk to the cluster read the declared topics' state, plan, print the plan as a
//! table, and (except `plan` and `list`) apply it with a progress bar on a terminal. `lock`
//! and `check` only compare the declarations with the lock file.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use comfy_table::Table;

use crate::admin::{Cluster, TopicSpec};
use crate::app::App;
use crate::config::ConfigError;
use crate::declaratives::lock;
use crate::declaratives::plan::{self, Action, Plan, refuse_active_readers};
use crate::error::Error;

const EXIT_CODES: &str = "Exit codes: 0 success (with --detailed-exitcode: nothing to do), \
1 error or drift, 2 changes planned or applied (only with --detailed-exitcode). Note that clap \
also exits with 2 when it cannot parse the command line.";

/// Arguments of `topics`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub struct TopicsArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: TopicsAction,
    /// Exit 0 when there was nothing to do, 2 when changes were planned or applied, 1 on error.
    ///
    /// clap also exits with 2 on a command line it cannot parse, so check stderr in scripts.
    #[arg(long, global = true)]
    pub detailed_exitcode: bool,
    /// The lock file that `lock` writes and `check` compares with.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        default_value = lock::DEFAULT_PATH,
        env = "FERRAFKA_TOPICS_LOCK"
    )]
    pub lock_file: PathBuf,
}

/// The `topics` actions. None of them changes a topic that is not declared.
#[derive(Debug, Subcommand)]
pub enum TopicsAction {
    /// Show what `migrate` would change (a dry run).
    Plan,
    /// Create missing topics, grow partitions, then align settings.
    Migrate,
    /// Create declared topics that do not exist.
    Create,
    /// Delete declared topics that exist.
    Delete(ForceArgs),
    /// Delete and recreate declared topics (losing their messages); create missing ones.
    Reset(ForceArgs),
    /// Grow partitions up to the declared count (never shrinks).
    Repartition,
    /// Set declared settings whose value differs in the cluster.
    Align,
    /// Show declared topics next to their state in the cluster.
    List,
    /// Write the declared topics to the lock file.
    Lock,
    /// Fail with a diff when the declared topics drift from the lock file.
    Check,
    /// Print a range of any topic's messages without a consumer group: from an offset, a time
    /// or the last N, per partition or merged by timestamp, up to the end or following.
    ///
    /// Without a start option reading starts at each partition's oldest message; without
    /// --follow it stops at the end offsets taken when it starts, so it prints exactly that
    /// range even while producers keep writing. Nothing is committed and no group is joined.
    Read(super::read::ReadArgs),
}

/// Arguments of the actions that remove topics.
#[derive(Debug, Default, clap::Args)]
pub struct ForceArgs {
    /// Go ahead even while consumer groups with active members read the topics.
    #[arg(long)]
    pub force: bool,
}

/// Whether an action changed (or, for `plan`, would change) anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to do.
    Unchanged,
    /// Changes planned or applied.
    Changed,
}

/// Why a `topics` action failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TopicsError {
    /// The app's settings, routes or declarations are invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A cluster operation failed.
    #[error(transparent)]
    Ferrafka(#[from] Error),
    /// The lock file could not be read or written.
    #[error("cannot {action} lock file {path}{hint}")]
    LockIo {
        /// read or write.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
        /// A suggestion, possibly empty.
        hint: &'static str,
    },
    /// The lock file is not a valid lock file.
    #[error("lock file {path} is invalid: {reason}")]
    LockInvalid {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The declarations differ from the lock file.
    #[error(
        "declared topics drifted from {} (- locked only, + declared only, ~ changed):\n{}\n\
         review the change, then run `topics lock` to accept it",
        path.display(),
        lines.join("\n")
    )]
    Drift {
        /// The lock file.
        path: PathBuf,
        /// The diff, one line per difference.
        lines: Vec<String>,
    },
    /// The async runtime could not start.
    #[error("cannot start the runtime")]
    Runtime(#[source] std::io::Error),
    /// Writing the output failed (other than a closed pipe, which ends `read` quietly).
    #[error("cannot write the output")]
    Output(#[source] std::io::Error),
}

/// The process exit code for an outcome: see `EXIT_CODES`.
pub fn exit_code(result: &Result<Outcome, TopicsError>, detailed_exitcode: bool) -> u8 {
    match result {
        Ok(Outcome::Unchanged) => 0,
        Ok(Outcome::Changed) => {
            if detailed_exitcode {
                2
            } else {
                0
            }
        }
        Err(_) => 1,
    }
}

/// Runs a `topics` action against `app`, writing its report to `out`.
pub fn execute(app: &App, args: &TopicsArgs, out: &mut dyn Write) -> Result<Outcome, TopicsError> {
    app.validate()?;
    let declared = app.declared_topics();
    note_patterns(app, out);
    match &args.action {
        TopicsAction::Lock => return write_lock(&args.lock_file, declared, out),
        TopicsAction::Check => return check_lock(&args.lock_file, declared, out),
        TopicsAction::Read(read) => {
            return match super::read::run(app, read, out) {
                Ok(()) => Ok(Outcome::Unchanged),
                Err(super::read::ReadFailure::Read(e)) => Err(TopicsError::Ferrafka(e)),
                Err(super::read::ReadFailure::Output(e)) => Err(TopicsError::Output(e)),
            };
        }
        _ => {}
    }
    if declared.is_empty() {
        let _ = writeln!(out, "no topics are declared; nothing to do");
        return Ok(Outcome::Unchanged);
    }
    let admin = app.admin()?;
    let cluster = &admin;
    let routed = routed_groups(app);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(TopicsError::Runtime)?;
    runtime.block_on(async {
        let (action, force) = match &args.action {
            TopicsAction::List => return list(cluster, declared, out).await,
            TopicsAction::Plan => {
                let plan = plan::plan_against(cluster, Action::Migrate, declared).await?;
                print_plan(out, &plan, "would change");
                return Ok(outcome(&plan));
            }
            TopicsAction::Migrate => (Action::Migrate, false),
            TopicsAction::Create => (Action::Create, false),
            TopicsAction::Delete(f) => (Action::Delete, f.force),
            TopicsAction::Reset(f) => (Action::Reset, f.force),
            TopicsAction::Repartition => (Action::Repartition, false),
            TopicsAction::Align => (Action::Align, false),
            TopicsAction::Lock | TopicsAction::Check | TopicsAction::Read(_) => {
                unreachable!("handled above")
            }
        };
        let plan = plan::plan_against(cluster, action, declared).await?;
        if !force {
            refuse_active_readers(cluster, &routed, &plan).await?;
        }
        print_plan(out, &plan, "changes");
        let bar = indicatif::ProgressBar::new(plan.steps.len() as u64).with_style(
            indicatif::ProgressStyle::with_template("{pos}/{len} {wide_msg}")
                .expect("valid template"),
        );
        let applied = plan::apply(cluster, &plan, |_, step| {
            bar.set_message(format!("{} {}", step.kind(), step.topic()));
            bar.inc(1);
        })
        .await;
        bar.finish_and_clear();
        applied?;
        if !plan.is_empty() {
            let _ = writeln!(out, "applied {} change(s)", plan.steps.len());
        }
        Ok(outcome(&plan))
    })
}

/// Parses nothing, runs `topics` from an already parsed command line and maps the result to
/// an exit code, printing errors to stderr.
pub(crate) fn main(app: &App, args: &TopicsArgs) -> std::process::ExitCode {
    let result = execute(app, args, &mut std::io::stdout().lock());
    if let Err(e) = &result {
        eprintln!("ferrafka: {}", crate::error::error_chain(e));
    }
    std::process::ExitCode::from(exit_code(&result, args.detailed_exitcode))
}

fn outcome(plan: &Plan) -> Outcome {
    if plan.is_empty() {
        Outcome::Unchanged
    } else {
        Outcome::Changed
    }
}

/// Says that pattern routes are left out: a pattern names no single topic to manage.
fn note_patterns(app: &App, out: &mut dyn Write) {
    for sg in app.subscription_groups() {
        for p in sg
            .topics
            .iter()
            .filter_map(|t| t.pattern().filter(|_| t.is_pattern()))
        {
            let _ = writeln!(
                out,
                "note: pattern {} ({}) is skipped: declare the topics it matches one by one",
                p.name(),
                p.regex()
            );
        }
    }
}

/// Topic name → consumer groups the app reads it with; a declared topic a pattern route
/// matches counts as read by the pattern's group.
fn routed_groups(app: &App) -> BTreeMap<String, BTreeSet<String>> {
    let mut routed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for sg in app.subscription_groups() {
        for t in &sg.topics {
            let names: Vec<String> = match t.pattern().filter(|_| t.is_pattern()) {
                Some(p) => app
                    .declared_topics()
                    .iter()
                    .filter(|d| p.matches(&d.name))
                    .map(|d| d.name.clone())
                    .collect(),
                None => vec![t.name.to_string()],
            };
            for name in names {
                routed
                    .entry(name)
                    .or_default()
                    .insert(t.consumer_group.to_string());
            }
        }
    }
    routed
}

fn print_plan(out: &mut dyn Write, plan: &Plan, verb: &str) {
    if plan.is_empty() {
        let _ = writeln!(out, "nothing to do: the cluster matches the declarations");
    } else {
        let mut table = Table::new();
        table.load_style(comfy_table::presets::ASCII_MARKDOWN);
        table.set_header(["topic", "change", "details"]);
        for step in &plan.steps {
            table.add_row([
                step.topic().to_string(),
                step.kind().to_string(),
                step.details(),
            ]);
        }
        let _ = writeln!(out, "{} {verb}:\n{table}", plan.steps.len());
    }
    for notice in &plan.notices {
        let _ = writeln!(out, "note: {notice}");
    }
}

async fn list(
    cluster: &impl Cluster,
    declared: &[TopicSpec],
    out: &mut dyn Write,
) -> Result<Outcome, TopicsError> {
    let names: Vec<String> = declared.iter().map(|t| t.name.clone()).collect();
    let state = plan::topic_states(cluster, &names).await?;
    let migrate = plan::plan(Action::Migrate, declared, &state);
    let mut table = Table::new();
    table.load_style(comfy_table::presets::ASCII_MARKDOWN);
    table.set_header(["topic", "declared", "in cluster", "status"]);
    for spec in declared {
        let declared_text = format!("{} x rf {}", spec.partitions, spec.replication_factor);
        let (cluster_text, status) = match state.get(&spec.name) {
            None => ("-".to_string(), "missing".to_string()),
            Some(s) => {
                let pending: Vec<&str> = migrate
                    .steps
                    .iter()
                    .filter(|st| st.topic() == spec.name)
                    .map(|st| st.kind())
                    .collect();
                let notes = migrate
                    .notices
                    .iter()
                    .filter(|n| n.topic() == spec.name)
                    .count();
                let status = match (pending.is_empty(), notes) {
                    (true, 0) => "ok".to_string(),
                    (true, _) => "ok, see notes".to_string(),
                    (false, _) => format!("needs {}", pending.join(", ")),
                };
                (
                    format!("{} x rf {}", s.partitions, s.replication_factor),
                    status,
                )
            }
        };
        table.add_row([spec.name.clone(), declared_text, cluster_text, status]);
    }
    let _ = writeln!(out, "{table}");
    for notice in &migrate.notices {
        let _ = writeln!(out, "note: {notice}");
    }
    Ok(Outcome::Unchanged)
}

fn write_lock(
    path: &Path,
    declared: &[TopicSpec],
    out: &mut dyn Write,
) -> Result<Outcome, TopicsError> {
    let text = lock::render(declared);
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        let _ = writeln!(out, "{} is up to date", path.display());
        return Ok(Outcome::Unchanged);
    }
    std::fs::write(path, &text).map_err(|source| TopicsError::LockIo {
        action: "write",
        path: path.to_path_buf(),
        source,
        hint: "",
    })?;
    let _ = writeln!(
        out,
        "wrote {} topic(s) to {}",
        declared.len(),
        path.display()
    );
    Ok(Outcome::Changed)
}

fn check_lock(
    path: &Path,
    declared: &[TopicSpec],
    out: &mut dyn Write,
) -> Result<Outcome, TopicsError> {
    let text = std::fs::read_to_string(path).map_err(|source| TopicsError::LockIo {
        action: "read",
        path: path.to_path_buf(),
        hint: if source.kind() == std::io::ErrorKind::NotFound {
            " (run `topics lock` to create it)"
        } else {
            ""
        },
        source,
    })?;
    let locked = lock::parse(&text).map_err(|reason| TopicsError::LockInvalid {
        path: path.to_path_buf(),
        reason,
    })?;
    let lines = lock::diff(&locked, declared);
    if !lines.is_empty() {
        return Err(TopicsError::Drift {
            path: path.to_path_buf(),
            lines,
        });
    }
    let _ = writeln!(
        out,
        "{} matches the {} declared topic(s)",
        path.display(),
        declared.len()
    );
    Ok(Outcome::Unchanged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn detailed_exit_codes() {
        let changed: Result<Outcome, TopicsError> = Ok(Outcome::Changed);
        let unchanged: Result<Outcome, TopicsError> = Ok(Outcome::Unchanged);
        let failed: Result<Outcome, TopicsError> = Err(TopicsError::LockInvalid {
            path: "x".into(),
            reason: "y".into(),
        });
        assert_eq!(exit_code(&changed, true), 2);
        assert_eq!(exit_code(&changed, false), 0);
        assert_eq!(exit_code(&unchanged, true), 0);
        assert_eq!(exit_code(&failed, true), 1);
        assert_eq!(exit_code(&failed, false), 1);
    }

    #[test]
    fn topics_arguments_parse() {
        let cli = crate::cli::Cli::parse_from([
            "app",
            "topics",
            "reset",
            "--force",
            "--detailed-exitcode",
            "--lock-file",
            "x.lock",
        ]);
        let crate::cli::Command::Topics(args) = cli.command else {
            panic!("expected topics")
        };
        assert!(args.detailed_exitcode);
        assert_eq!(args.lock_file, PathBuf::from("x.lock"));
        assert!(matches!(
            args.action,
            TopicsAction::Reset(ForceArgs { force: true })
        ));
        let help = crate::cli::Cli::try_parse_from(["app", "topics", "--help"])
            .unwrap_err()
            .to_string();
        assert!(help.contains("clap also exits with 2"), "{help}");
    }
}
