//! The command buttons of the process and group pages, and the pages `/commands` and
//! `/commands/{command_id}`.

use maud::{Markup, html};

use super::form::{DEFAULT_EXPIRY_S, MAX_EXPIRY_S, MAX_PAUSE_S, partition_of};
use super::store::{Sent, Status};
use crate::web::commands::{Action, Outcome, Target};
use crate::web::ui::pages::{age, layout, problems, segment, time};

/// A form posting one command to `/commands`: the CSRF token and `fields` hidden, an expiry
/// field (and `extra` inputs) shown. Nothing when the UI is read-only (`csrf` is `None`).
fn command_form(
    (base, csrf): (&str, Option<&str>),
    fields: &[(&str, &str)],
    extra: Markup,
    (label, testid, confirm): (&str, &str, Option<&str>),
) -> Markup {
    html! {
        @if let Some(csrf) = csrf {
            form.write.command method="post" action={ (base) "/commands" } data-confirm=[confirm]
                style="display:inline-block; white-space:nowrap; margin:0 1em .2em 0" {
                input type="hidden" name="csrf" value=(csrf);
                @for (name, value) in fields {
                    input type="hidden" name=(name) value=(value);
                }
                (extra)
                label title="the command expires unless a process takes it within this many seconds" {
                    " expires in "
                    input type="number" name="expires_s" value=(DEFAULT_EXPIRY_S) min="1" max=(MAX_EXPIRY_S) style="width:4.5em" data-testid={ (testid) "-expires" };
                    " s "
                }
                button type="submit" data-testid=(testid) { (label) }
            }
        }
    }
}

/// Quiet and stop buttons for process `id` (stop asks for confirmation).
pub(crate) fn process_buttons(base: &str, csrf: Option<&str>, id: &str) -> Markup {
    let stop = format!(
        "Stop process {id}? It finishes its running batches, publishes a last report and exits."
    );
    html! {
        @if csrf.is_some() {
            h2 { "Commands" }
            div.commands data-testid="process-commands" {
                (command_form((base, csrf), &[("action", "quiet"), ("process", id)], html! {},
                    ("Quiet", "command-quiet", None)))
                (command_form((base, csrf), &[("action", "stop"), ("process", id)], html! {},
                    ("Stop", "command-stop", Some(&stop))))
                p { a href={ (base) "/commands" } { "Commands sent" } }
            }
        }
    }
}

/// Pause and resume buttons for one partition held by process `owner` (a pause may carry a
/// duration).
pub(crate) fn partition_buttons(
    base: &str,
    csrf: Option<&str>,
    owner: &str,
    (consumer_group, topic, partition): (&str, &str, i32),
) -> Markup {
    let partition = partition.to_string();
    let fields = |action| {
        [
            ("action", action),
            ("process", owner),
            ("consumer_group", consumer_group),
            ("topic", topic),
            ("partition", partition.as_str()),
        ]
    };
    let for_s = html! {
        label title="resume by itself after this many seconds (empty: until a resume)" {
            " for "
            input type="number" name="for_s" min="1" max=(MAX_PAUSE_S) placeholder="∞" style="width:4.5em" data-testid="command-pause-for";
            " s"
        }
    };
    html! {
        (command_form((base, csrf), &fields("pause_partition"), for_s, ("Pause", "command-pause", None)))
        (command_form((base, csrf), &fields("resume_partition"), html! {}, ("Resume", "command-resume", None)))
    }
}

fn describe(action: &Action) -> String {
    match (action, partition_of(action)) {
        (
            Action::PausePartition {
                for_ms: Some(ms), ..
            },
            Some(p),
        ) => format!("pause {p} for {}", age(*ms as i64)),
        (Action::PausePartition { .. }, Some(p)) => format!("pause {p}"),
        (Action::ResumePartition { .. }, Some(p)) => format!("resume {p}"),
        _ => action.name().to_string(),
    }
}

fn target(base: &str, target: &Target) -> Markup {
    html! {
        @match target {
            Target::All => "all processes",
            Target::Process(id) => a href={ (base) "/processes/" (segment(id)) } { (id) },
        }
    }
}

/// The status badge of a command.
fn status(sent: &Sent, now_ms: i64) -> Markup {
    let status = sent.status(now_ms);
    let class = match status {
        Status::Done => "badge",
        Status::Pending => "badge",
        Status::Refused | Status::Expired => "badge bad",
    };
    html! {
        span class=(class) data-testid="command-status" data-status=(status.name()) { (status.name()) }
        @if sent.untaken(now_ms) { " " span data-testid="untaken" { "no process took it" } }
    }
}

/// The expiry of a command: when, and how far from now.
fn expiry(expires_at_ms: i64, now_ms: i64) -> Markup {
    html! {
        (time(expires_at_ms))
        @if now_ms > expires_at_ms { " (" (age(now_ms - expires_at_ms)) " ago)" }
        @else { " (in " (age(expires_at_ms - now_ms)) ")" }
    }
}

/// `/commands`: the newest commands, newest first.
pub(crate) fn commands_page(
    base: &str,
    sent: &[Sent],
    problem: Option<String>,
    now_ms: i64,
) -> Markup {
    let body = html! {
        (problems(&problem.into_iter().collect::<Vec<_>>()))
        p { "Commands sent to the fleet's processes through the commands topic (the newest "
            (sent.len()) "), with what each process answered. Pause, resume, quiet and stop them from a "
            a href={ (base) "/processes" } { "process's page" } "." }
        @if sent.is_empty() { p data-testid="no-commands" { "No commands on the commands topic." } }
        @else {
            table {
                thead { tr { th { "Issued" } th { "Command" } th { "Target" } th { "By" } th { "Expires" } th { "Status" } th { "Answers" } } }
                tbody { @for s in sent { tr data-testid="command-row" data-command-id=(s.command.command_id) {
                    td { a href={ (base) "/commands/" (segment(&s.command.command_id)) } { (time(s.command.issued_at_ms)) } }
                    td data-testid="command-action" { (describe(&s.command.action)) }
                    td { (target(base, &s.command.target)) }
                    td { (s.command.issued_by) }
                    td { (expiry(s.command.expires_at_ms, now_ms)) }
                    td { (status(s, now_ms)) }
                    td { (s.acks.len()) }
                } } }
            }
        }
    };
    layout(base, "commands", "Commands", body)
}

/// `/commands/{command_id}`: one command and every process's answer.
pub(crate) fn command_page(base: &str, id: &str, sent: Option<&Sent>, now_ms: i64) -> Markup {
    let Some(s) = sent else {
        let body = html! { p.problem data-testid="unknown-command" { "No command " code { (id) }
        " on the commands topic (yet): a command just sent shows within a second; an old one may have left the topic's retention or this page's memory." } };
        return layout(base, "command", "Command", body);
    };
    let c = &s.command;
    let body = html! {
        dl {
            dt { "Id" } dd data-testid="command-id" { code { (c.command_id) } }
            dt { "Command" } dd data-testid="command-action" { (describe(&c.action)) }
            dt { "Target" } dd { (target(base, &c.target)) }
            dt { "Issued" } dd { (time(c.issued_at_ms)) " by " (c.issued_by) }
            dt { "Expires" } dd data-testid="command-expiry" { (expiry(c.expires_at_ms, now_ms)) }
            dt { "Status" } dd { (status(s, now_ms)) }
        }
        @match s.status(now_ms) {
            Status::Pending => p data-testid="command-pending" { "Waiting for the process to acknowledge it (this page refreshes by itself)." },
            _ if s.untaken(now_ms) => p.problem data-testid="command-expired" { "Expired: no process took it before "
                (time(c.expires_at_ms)) ". The process may have stopped, or not read the commands topic." },
            _ => {},
        }
        h2 { "Answers" }
        @if s.acks.is_empty() { p { "None." } }
        @else {
            table {
                thead { tr { th { "Process" } th { "Outcome" } th { "Why" } th { "At" } } }
                tbody { @for a in s.acks.values() { tr data-testid="ack-row" data-process-id=(a.process_id) {
                    td { a href={ (base) "/processes/" (segment(&a.process_id)) } { (a.process_id) } }
                    td data-testid="ack-outcome" { (a.outcome.name()) }
                    td data-testid="ack-reason" { @match &a.outcome {
                        Outcome::Refused { reason } => (reason),
                        Outcome::Expired => "it arrived after its expiry: nothing was done",
                        Outcome::Done => "-",
                    } }
                    td { (time(a.at_ms)) }
                } } }
            }
        }
        p { a href={ (base) "/commands" } { "All commands" } }
    };
    layout(
        base,
        "command",
        &format!("Command {}", c.action.name()),
        body,
    )
}
