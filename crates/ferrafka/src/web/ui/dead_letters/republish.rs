//! `POST /dead-letters/{topic}/{partition}/{offset}/republish`: produces a dead letter again,
//! to its source topic (and partition) or to the topic the operator names, at most once.
//!
//! The republish id is the dead letter's coordinates and timestamp, the same for every
//! request. A request for an id already in flight in this process is refused at once (the
//! in-process lock); otherwise the audit topic decides ([`index`](super::super::audit_page::index)):
//! the request writes a `started` record (its claim, keyed by the id) *before* producing, and
//! produces only if the audit reader finds its claim the first of that id. Two `web` processes
//! racing both write claims, and both read the same order: one produces, the other refuses.
//! The republished record carries the id in [`REPUBLISH_ID`], with the original key, payload
//! and headers.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Form;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rdkafka::error::RDKafkaErrorCode as Code;

use super::super::audit_page::index::{
    AuditIndex, CLAIM, DONE, RELEASED, REPUBLISH, STARTED, Verdict,
};
use super::super::audit_page::{self as audit_page, AuditCell};
use super::super::safety::Operator;
use super::super::state::{Shared, Writes, blocking};
use super::letter::{DeadLetter, is_topic_name};
use super::read;
use super::render::{self, Result as Outcome};
use crate::error::Error;
use crate::producer::Record;
use crate::routing::dlq_headers::REPUBLISH_ID;
use crate::web::audit::{self, AuditRecord};

/// How long a request waits for the audit reader to read its claim back.
const CLAIM_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a request waits for the audit reader to catch up before checking.
const SYNC_TIMEOUT: Duration = Duration::from_secs(5);

/// The republish ids this process is working on.
pub(super) type InFlight = Arc<Mutex<HashSet<String>>>;

/// The form: the target topic, empty for the source topic (`csrf` is the guard's).
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct RepublishForm {
    #[serde(default)]
    to: String,
}

/// Holds a republish id in [`InFlight`] until dropped.
struct Held<'a>(&'a InFlight, String);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.1);
    }
}

/// One request, once the dead letter is read.
struct Request<'a> {
    s: &'a Shared,
    writes: &'a Writes,
    operator: &'a Operator,
    letter: &'a DeadLetter,
    id: String,
    to: String,
}

impl Request<'_> {
    /// An audit record of this request with `outcome`.
    fn record(&self, outcome: &str) -> AuditRecord {
        AuditRecord::new(
            &self.id,
            &self.operator.who,
            &self.operator.from,
            REPUBLISH,
            self.letter.coordinates(),
        )
        .detail("to", &self.to)
        .detail("republish_id", &self.id)
        .outcome(outcome)
    }

    async fn audit(&self, record: &AuditRecord) -> crate::Result<()> {
        audit::publish(&self.writes.producer, &self.s.topics.audit, record).await
    }

    /// Audits a refusal (best effort: the refusal stands either way).
    async fn refuse(&self, why: &str) {
        if let Err(e) = self.audit(&self.record(&format!("refused: {why}"))).await {
            tracing::warn!(republish_id = %self.id, error = %e, "cannot audit a refused republish");
        }
    }
}

pub(super) async fn republish(
    State(s): State<Shared>,
    Extension(cell): Extension<AuditCell>,
    Extension(in_flight): Extension<InFlight>,
    Extension(operator): Extension<Operator>,
    Path((topic, partition, offset)): Path<(String, i32, i64)>,
    Form(form): Form<RepublishForm>,
) -> Response {
    let page = |letter: &DeadLetter, id: &str, status: StatusCode, outcome: Outcome| {
        (status, render::result(&s.base, letter, id, &outcome)).into_response()
    };
    let plain = |status: StatusCode, text: String| (status, format!("{text}\n")).into_response();
    let Some(writes) = s.writes.clone() else {
        return plain(
            StatusCode::FORBIDDEN,
            "this web UI is read-only (`web_read_only`)".into(),
        );
    };
    if !s.topics.dead_letters.contains_key(&topic) {
        return plain(
            StatusCode::NOT_FOUND,
            format!("{topic} is not a dead-letter topic of this app's routes"),
        );
    }
    let kafka = s.kafka.clone();
    let read = blocking(move || read::one(&kafka, &topic, partition, offset)).await;
    let letter = match read {
        Ok(Ok(letter)) => letter,
        Ok(Err(why)) => return plain(StatusCode::NOT_FOUND, why),
        Err(response) => return response,
    };
    let id = letter.republish_id();
    let to = match target(&form.to, &letter, &s).await {
        Ok(to) => to,
        Err(why) => return page(&letter, &id, StatusCode::BAD_REQUEST, Outcome::Failed(why)),
    };
    let request = Request {
        s: &s,
        writes: &writes,
        operator: &operator,
        letter: &letter,
        id: id.clone(),
        to,
    };
    let inserted = in_flight
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id.clone());
    if !inserted {
        let why = "another request of this web process is republishing it right now";
        request.refuse(why).await;
        return page(
            &letter,
            &id,
            StatusCode::CONFLICT,
            Outcome::Failed(format!("refused: {why}")),
        );
    }
    let _held = Held(&in_flight, id.clone());
    let index = match audit_page::index(&cell, &s) {
        Ok(index) => index,
        Err(why) => {
            return page(
                &letter,
                &id,
                StatusCode::SERVICE_UNAVAILABLE,
                Outcome::Failed(why),
            );
        }
    };
    let (status, outcome) = claim_and_produce(&request, &index).await;
    page(&letter, &id, status, outcome)
}

/// The target topic: the one given, or the source topic; refused when it is not a topic of
/// the cluster or is the dead-letter topic itself.
async fn target(given: &str, letter: &DeadLetter, s: &Shared) -> Result<String, String> {
    let to = match (given.trim(), &letter.origin.topic) {
        ("", Some(source)) => source.clone(),
        ("", None) => return Err("the dead letter names no source topic (no ferrafka-source-topic header): give a target topic".into()),
        (given, _) => given.to_string(),
    };
    if !is_topic_name(&to) {
        return Err(format!(
            "target topic {to:?}: use 1 to 249 of a-z, A-Z, 0-9, '.', '_' and '-'"
        ));
    }
    if to == letter.topic {
        return Err(format!(
            "target topic {to}: that is the dead-letter topic itself; name the topic whose consumer should read it again"
        ));
    }
    let admin = s.admin.clone();
    let name = to.clone();
    match blocking(move || admin.topic_info(&name)).await {
        Ok(Ok(Some(_))) => Ok(to),
        Ok(Ok(None)) => Err(format!(
            "target topic {to} does not exist on the cluster: create it first, or give another one"
        )),
        Ok(Err(e)) => Err(format!(
            "cannot read the cluster's metadata to check target topic {to}: {e}"
        )),
        Err(_) => Err("the metadata check failed".into()),
    }
}

/// Checks, claims on the audit topic, produces if the claim won, and audits the outcome.
async fn claim_and_produce(r: &Request<'_>, index: &AuditIndex) -> (StatusCode, Outcome) {
    let unavailable = |why: String| (StatusCode::SERVICE_UNAVAILABLE, Outcome::Failed(why));
    let (admin, synced_index) = (r.s.admin.clone(), index.clone());
    let synced = match blocking(move || synced_index.sync(&admin, SYNC_TIMEOUT)).await {
        Ok(synced) => synced,
        Err(_) => Err("the audit check failed".to_string()),
    };
    if let Err(why) = synced {
        return unavailable(format!(
            "cannot tell whether it was republished already ({why}): nothing was published"
        ));
    }
    let state = index.lock().state(&r.id);
    if let Some(state) = state {
        r.refuse("republished already").await;
        return (StatusCode::CONFLICT, Outcome::Refused(state));
    }
    let claim = uuid::Uuid::new_v4().simple().to_string();
    index.expect(&claim);
    if let Err(e) = r.audit(&r.record(STARTED).detail(CLAIM, &claim)).await {
        let _ = index.verdict(&claim, Duration::ZERO).await;
        return unavailable(format!(
            "cannot write the audit record before republishing ({e}): nothing was published"
        ));
    }
    match index.verdict(&claim, CLAIM_TIMEOUT).await {
        Some(Verdict::Won) => produce(r, &claim).await,
        Some(Verdict::Lost(state)) => {
            r.refuse("republished already").await;
            (StatusCode::CONFLICT, Outcome::Refused(state))
        }
        None => {
            // Not produced: release the claim in case it is the first after all.
            let release = r
                .record("failed: the claim was not read back in time")
                .detail(CLAIM, &claim)
                .detail(RELEASED, "true");
            let _ = r.audit(&release).await;
            unavailable(format!(
                "the audit topic did not show the claim within {CLAIM_TIMEOUT:?}: nothing was published"
            ))
        }
    }
}

/// Produces the republished record and audits how it went.
async fn produce(r: &Request<'_>, claim: &str) -> (StatusCode, Outcome) {
    let l = r.letter;
    let mut record = Record::to(&r.to);
    if let Some(key) = &l.key {
        record = record.key(key);
    }
    if let Some(payload) = &l.payload {
        record = record.payload(payload);
    }
    for (k, v) in &l.headers {
        record = record.header(k, v.as_deref().unwrap_or_default());
    }
    record = record.header(REPUBLISH_ID, &r.id);
    // Back where it came from: its source partition, so its order there holds.
    if let (Some(source), Some(p)) = (&l.origin.topic, l.origin.partition)
        && *source == r.to
    {
        record = record.partition(p);
    }
    match r.writes.producer.produce(record).await {
        Ok(d) => {
            let landed = format!("{}/{}/{}", r.to, d.partition, d.offset);
            tracing::info!(republish_id = %r.id, %landed, who = %r.operator.who, "dead letter republished");
            let done = r
                .record(DONE)
                .detail(CLAIM, claim)
                .detail("landed", &landed);
            if let Err(e) = r.audit(&done).await {
                tracing::warn!(republish_id = %r.id, error = %e, "republished, but cannot audit the outcome");
            }
            (StatusCode::OK, Outcome::Done { landed })
        }
        Err(e) => {
            let released = surely_not_written(&e);
            let error = crate::error::error_chain(&e);
            let failed = r
                .record(&format!("failed: {error}"))
                .detail(CLAIM, claim)
                .detail(RELEASED, released.to_string());
            if let Err(e) = r.audit(&failed).await {
                tracing::warn!(republish_id = %r.id, error = %e, "cannot audit a failed republish");
            }
            let why = match released {
                true => format!("{error} (nothing was written: it can be republished again)"),
                false => format!(
                    "{error} (it may have landed: look for ferrafka-republish-id {} in {}; it stays locked)",
                    r.id, r.to
                ),
            };
            (StatusCode::BAD_GATEWAY, Outcome::Failed(why))
        }
    }
}

/// Whether a failed produce surely wrote nothing (refused before or by the broker), as
/// opposed to a timeout, after which the record may have landed.
fn surely_not_written(e: &Error) -> bool {
    match e {
        Error::NotAuthorized { .. } => true,
        Error::Produce { source, .. } => matches!(
            source.rdkafka_error_code(),
            Some(
                Code::QueueFull
                    | Code::MessageSizeTooLarge
                    | Code::InvalidMessageSize
                    | Code::MessageBatchTooLarge
                    | Code::InvalidRecord
                    | Code::InvalidMessage
                    | Code::UnknownTopic
                    | Code::UnknownPartition
                    | Code::UnknownTopicOrPartition
                    | Code::TopicAuthorizationFailed
                    | Code::InvalidArgument
            )
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::error::KafkaError;

    #[test]
    fn only_failures_that_surely_wrote_nothing_release_a_claim() {
        let produce = |code| Error::Produce {
            topic: "t".into(),
            source: Box::new(KafkaError::MessageProduction(code)),
        };
        assert!(surely_not_written(&produce(Code::MessageSizeTooLarge)));
        assert!(surely_not_written(&produce(Code::QueueFull)));
        assert!(!surely_not_written(&produce(Code::MessageTimedOut)));
        assert!(!surely_not_written(&produce(Code::RequestTimedOut)));
        assert!(!surely_not_written(&produce(
            Code::NotEnoughReplicasAfterAppend
        )));
    }
}
