//! Commands from the UI: the pause, resume, quiet and stop buttons of the process and group
//! pages post to `POST /commands`; the handler audits the command (`audit_topic`), sends it to
//! `commands_topic` with the UI's producer, and redirects to `/commands/{command_id}`, which
//! shows every process's acknowledgement (done, refused with the reason, expired) or, when no
//! process took it before its expiry, says so. `/commands` lists the newest commands.

mod form;
mod render;
mod store;

#[cfg(test)]
mod tests;

use axum::extract::{Extension, Form, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Router, http::HeaderValue};
use maud::{Markup, html};

use super::pages::layout;
use super::safety::Operator;
use super::state::Shared;
use crate::messages::now_ms;
use crate::web::{audit, commands};

pub(crate) use render::{partition_buttons, process_buttons};
use store::{Tail, lock};

/// Commands shown on `/commands`.
const LISTED: usize = 200;

/// The routes of commands: `/commands` (list, and the `POST` that sends one) and
/// `/commands/{command_id}`.
pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/commands", get(list).post(send))
        .route("/commands/{command_id}", get(one))
        .layer(Extension(Tail::default()))
}

fn store(s: &Shared, tail: &Tail) -> store::SharedCommands {
    tail.store(
        &s.topics.commands,
        &s.kafka,
        std::sync::Arc::downgrade(&s._alive),
    )
}

async fn list(State(s): State<Shared>, Extension(tail): Extension<Tail>) -> Markup {
    let commands = store(&s, &tail);
    let (sent, problem) = {
        let commands = lock(&commands);
        (commands.newest(LISTED), commands.problem())
    };
    render::commands_page(&s.base, &sent, problem, now_ms())
}

async fn one(
    State(s): State<Shared>,
    Extension(tail): Extension<Tail>,
    Path(id): Path<String>,
) -> Markup {
    let sent = lock(&store(&s, &tail)).get(&id);
    render::command_page(&s.base, &id, sent.as_ref(), now_ms())
}

/// Checks the form, audits the command, sends it, and redirects to its page.
async fn send(
    State(s): State<Shared>,
    Extension(tail): Extension<Tail>,
    Extension(operator): Extension<Operator>,
    Form(form): Form<form::CommandForm>,
) -> Response {
    let Some(writes) = s.writes.clone() else {
        // The guard refuses every write of a read-only UI before this runs.
        return failed(
            &s.base,
            StatusCode::FORBIDDEN,
            "this web UI is read-only",
            &[],
        );
    };
    let command = match form.command(&operator.who) {
        Ok(command) => command,
        Err(problems) => {
            let why = "the form does not describe a command";
            return failed(&s.base, StatusCode::BAD_REQUEST, why, &problems);
        }
    };
    let commands = store(&s, &tail);
    let record = form::audit_record(&command, &operator);
    if let Err(e) = audit::publish(&writes.producer, &s.topics.audit, &record).await {
        let why = format!(
            "not sent: the audit record could not be written to `{}`",
            s.topics.audit
        );
        return failed(&s.base, StatusCode::SERVICE_UNAVAILABLE, &why, &[chain(&e)]);
    }
    if let Err(e) = commands::send_with(&writes.producer, &s.topics.commands, &command).await {
        let error = chain(&e);
        // The audit says what became of the write it recorded.
        let outcome = record.outcome(format!("failed: {error}"));
        let _ = audit::publish(&writes.producer, &s.topics.audit, &outcome).await;
        let why = format!(
            "not sent: the command could not be written to `{}`",
            s.topics.commands
        );
        return failed(&s.base, StatusCode::SERVICE_UNAVAILABLE, &why, &[error]);
    }
    tracing::info!(command_id = %command.command_id, action = command.action.name(),
        target = %form::subject(&command), who = %operator.who, from = %operator.from, "command sent from the web UI");
    let location = format!(
        "{}/commands/{}",
        s.base,
        super::pages::segment(&command.command_id)
    );
    lock(&commands).insert_command(command);
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn chain(e: &crate::Error) -> String {
    crate::error::error_chain(e)
}

/// A page saying why no command was sent.
fn failed(base: &str, code: StatusCode, why: &str, problems: &[String]) -> Response {
    let body = html! {
        p.problem data-testid="command-not-sent" { (why) }
        (super::pages::problems(problems))
        p { "Nothing was sent. Go back, correct what is named above, and send it again." }
    };
    (code, layout(base, "command", "Command not sent", body)).into_response()
}
