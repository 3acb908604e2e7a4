//! An app whose consumer you test without a broker: `tests/orders.rs` drives its real routes
//! through `ferrafka::testing::Tester` (batching, retries with backoff on a virtual clock,
//! dead letters, marks) and looks at what it produced.
//!
//! ```sh
//! cargo test -p example-testing
//! ```

use ferrafka::{App, ConsumeResult, Consumer, Context, DeadLetterQueue, Messages, Record};

/// An order as it arrives on `orders`.
#[derive(serde::Deserialize)]
pub struct Order {
    /// Its id.
    pub id: u64,
    /// Its amount in cents; an order without one is malformed.
    pub cents: u64,
}

/// Writes a receipt to `receipts` for every order.
pub struct Receipts;

impl Consumer for Receipts {
    async fn consume(&mut self, ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        for m in messages {
            let order: Order = m.payload_json()?;
            let receipt = serde_json::json!({ "order": order.id, "total": order.cents });
            let key = order.id.to_string();
            ctx.producer()
                .produce(
                    Record::to("receipts")
                        .key(key.as_bytes())
                        .payload(receipt.to_string().as_bytes()),
                )
                .await?;
        }
        Ok(())
    }
}

/// The app: `orders` consumed by [`Receipts`], malformed orders to `orders-dlq` after two
/// retries.
pub fn app() -> App {
    App::builder()
        .setup(|c| {
            c.client_id("receipts");
        })
        .routes(|r| {
            r.topic("orders")
                .consumer(|| Receipts)
                .dead_letter_queue(DeadLetterQueue::to("orders-dlq").max_retries(2));
        })
        .build_with_env([])
}
