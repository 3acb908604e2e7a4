//! The [`Admin`] clients `doctor --live` reads a real cluster with, through [`Live`].

use std::time::Duration;

use super::Live;
use crate::admin::Admin;
use crate::doctor::AppView;

/// The [`Admin`] clients for the live checks, with the app's kafka properties.
pub(crate) struct AdminLive {
    admin: Admin,
    /// A second client with a short timeout for DescribeConfigs on brokers, which some brokers
    /// (tansu 0.6.0) never answer.
    broker_admin: Admin,
}

impl std::fmt::Debug for AdminLive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminLive").finish_non_exhaustive()
    }
}

/// How long the broker-config request may take at most.
const BROKER_CONFIG_TIMEOUT: Duration = Duration::from_secs(5);

impl AdminLive {
    /// Connects with the app's kafka properties; `timeout` bounds each request.
    pub(crate) fn connect(app: &dyn AppView, timeout: Duration) -> crate::Result<Self> {
        let kafka = &app.admin_kafka();
        Ok(AdminLive {
            admin: Admin::new(kafka)?.with_timeout(timeout),
            broker_admin: Admin::new(kafka)?.with_timeout(timeout.min(BROKER_CONFIG_TIMEOUT)),
        })
    }

    /// The live checks' view of the cluster through these clients.
    pub(crate) fn live(&self) -> crate::Result<Live<'_, Admin>> {
        Live::new(&self.admin, &self.broker_admin)
    }
}

#[cfg(test)]
mod tests {
    use super::super::view::timestamp_of;
    use crate::admin::MessageStamp;

    fn message(timestamp: Option<i64>) -> Option<MessageStamp> {
        Some(MessageStamp {
            offset: 7,
            timestamp,
        })
    }

    #[test]
    fn a_missing_message_or_timestamp_is_an_error_not_an_empty_answer() {
        let none = timestamp_of(None, "t", 0, 7).expect_err("nothing came back");
        assert!(
            none.contains("no message came back from offset 7"),
            "{none}"
        );
        let unstamped = timestamp_of(message(None), "t", 0, 7);
        assert!(
            unstamped
                .expect_err("no timestamp")
                .contains("offset 7 carries no timestamp")
        );
        let stamped = timestamp_of(message(Some(1_000)), "t", 0, 7);
        assert_eq!(stamped, Ok(1_000));
    }
}
