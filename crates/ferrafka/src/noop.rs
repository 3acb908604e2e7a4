//! The no-op consumer. Kept outside `testing` (which needs the `testing` feature) so that
//! ferrafka's own unit tests use the one definition `ferrafka::testing` re-exports.

use crate::{ConsumeResult, Consumer, Context, Messages};

/// A consumer that does nothing and succeeds: for apps whose routes a test needs but not
/// their processing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Noop;

impl Consumer for Noop {
    async fn consume(&mut self, _: &mut Context, _: &Messages) -> ConsumeResult {
        Ok(())
    }
}
