//! Admin behaviour that needs a broker misbehaving on purpose: librdkafka's mock cluster.

use std::time::Duration;

use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use super::*;

#[test]
fn a_read_that_times_out_before_any_message_is_an_error_not_an_empty_answer() {
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic("orders", 1, 1).expect("mock topic");
    let bootstrap = mock.bootstrap_servers();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("producer");
    producer
        .send(BaseRecord::to("orders").key("k").payload("v"))
        .expect("enqueued");
    producer.flush(Duration::from_secs(10)).expect("delivered");
    let admin = Admin::connect(&bootstrap)
        .expect("admin")
        .with_timeout(Duration::from_secs(2));
    assert_eq!(admin.watermarks("orders", 0).expect("watermarks"), (0, 1));
    // Every fetch fails from now on: the message exists but never arrives.
    mock.request_errors(
        RDKafkaApiKey::Fetch,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION; 500],
    );
    let error = admin
        .read_messages("orders", 0, OffsetSpec::At(0), 1)
        .expect_err("nothing arrived");
    let text = error.to_string();
    assert!(
        text.contains("read messages on orders/0") && text.contains("no message of offsets 0..1"),
        "{text}"
    );
    mock.clear_request_errors(RDKafkaApiKey::Fetch);
    let messages = admin
        .read_messages("orders", 0, OffsetSpec::At(0), 1)
        .expect("readable again");
    assert_eq!(messages.len(), 1);
}
