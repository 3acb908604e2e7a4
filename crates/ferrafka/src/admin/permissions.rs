//! What the cluster lets this client's principal do: the operations Kafka's authorizer allows it
//! on each topic and consumer group, as the broker reports them to the principal itself
//! (KIP-430), so no right to read the ACLs is needed. `doctor --live` checks them before a
//! deploy.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::error::RDKafkaErrorCode;

use super::Admin;
use crate::error::Result;
use crate::sys::admin::FfiError;
use crate::sys::permissions as ffi_permissions;

/// A kind of resource the broker's ACLs protect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ResourceKind {
    /// A topic.
    Topic,
    /// A consumer group.
    Group,
}

impl std::fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ResourceKind::Topic => "topic",
            ResourceKind::Group => "group",
        })
    }
}

/// What the cluster says the principal may do with one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permissions {
    /// The operations allowed, upper case as Kafka's ACLs name them (`READ`, `WRITE`,
    /// `DESCRIBE`, ...); implied ones included (`READ` implies `DESCRIBE`).
    Allowed(BTreeSet<String>),
    /// The broker refused to describe the resource: the principal lacks even Describe on it.
    /// (For a topic Kafka gives the same answer whether or not it exists.)
    DescribeDenied,
    /// The cluster reports no operations: it runs no authorizer (everything is allowed), or a
    /// broker predates KIP-430.
    NotReported,
    /// The resource could not be described for another reason (e.g. a topic that does not
    /// exist).
    Unknown(String),
}

impl Permissions {
    fn from_ffi(answer: ffi_permissions::Operations) -> Self {
        match answer {
            Ok(Some(ops)) => {
                Permissions::Allowed(ops.into_iter().map(|o| o.to_ascii_uppercase()).collect())
            }
            Ok(None) => Permissions::NotReported,
            Err(FfiError {
                code:
                    Some(
                        RDKafkaErrorCode::TopicAuthorizationFailed
                        | RDKafkaErrorCode::GroupAuthorizationFailed,
                    ),
                ..
            }) => Permissions::DescribeDenied,
            Err(e) => Permissions::Unknown(match e.code {
                Some(code) if e.reason.is_empty() => code.to_string(),
                _ => e.reason,
            }),
        }
    }
}

/// True for an answer a cluster gives while a coordinator is still settling.
fn settling(answer: &ffi_permissions::Operations) -> bool {
    matches!(
        answer,
        Err(FfiError {
            code: Some(
                RDKafkaErrorCode::NotCoordinator
                    | RDKafkaErrorCode::CoordinatorLoadInProgress
                    | RDKafkaErrorCode::CoordinatorNotAvailable
            ),
            ..
        })
    )
}

impl Admin {
    /// What this client's principal may do with each of `names`, resources of one `kind`.
    /// Blocks up to the admin timeout.
    pub fn permissions(
        &self,
        kind: ResourceKind,
        names: &[&str],
    ) -> Result<BTreeMap<String, Permissions>> {
        if names.is_empty() {
            return Ok(BTreeMap::new());
        }
        let client = &self.client;
        let ask = || match kind {
            ResourceKind::Topic => ffi_permissions::topic_operations(client, names, self.timeout),
            ResourceKind::Group => ffi_permissions::group_operations(client, names, self.timeout),
        };
        // A group's coordinator may still be loading (or not yet exist, before the first
        // group of a fresh cluster): ask again until it answers.
        let deadline = crate::config::later(Instant::now(), self.timeout);
        let answers = loop {
            let answers = ask().map_err(|e| {
                super::code_error("describe permissions", kind.to_string(), e.code, e.reason)
            })?;
            if !answers.iter().any(|(_, a)| settling(a)) || Instant::now() >= deadline {
                break answers;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        Ok(answers
            .into_iter()
            .map(|(name, answer)| (name, Permissions::from_ffi(answer)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_map_to_what_a_check_needs() {
        let allowed = Permissions::from_ffi(Ok(Some(BTreeSet::from(["Read".to_string()]))));
        assert_eq!(
            allowed,
            Permissions::Allowed(BTreeSet::from(["READ".to_string()]))
        );
        assert_eq!(Permissions::from_ffi(Ok(None)), Permissions::NotReported);
        let denied = FfiError::new(Some(RDKafkaErrorCode::GroupAuthorizationFailed), "denied");
        assert_eq!(
            Permissions::from_ffi(Err(denied)),
            Permissions::DescribeDenied
        );
        let unknown = FfiError::new(Some(RDKafkaErrorCode::UnknownTopicOrPartition), "");
        assert!(matches!(
            Permissions::from_ffi(Err(unknown)),
            Permissions::Unknown(text) if text.contains("Unknown topic")
        ));
    }
}
