//! An operator's pause: a command of the commands topic (see [`crate::web::commands`]) stops
//! a partition's batches and its fetching until a resume command or the pause's expiry. It is
//! the machine's own pause, like a consumer's `ctx.pause`: what waits stays buffered and runs
//! after the resume, in order, so nothing is skipped or run twice.

use std::time::Instant;

use super::{ConsumerPause, Effect, Partition};

impl Partition {
    /// Pauses the partition for an operator until `until` (`None`: until resumed). The
    /// running batch finishes; nothing new starts.
    pub(crate) fn operator_pause(
        &mut self,
        until: Option<Instant>,
        now: Instant,
        out: &mut Vec<Effect>,
    ) {
        self.operator_pause = Some(until.map_or(ConsumerPause::Indefinite, ConsumerPause::Until));
        self.step(now, out);
    }

    /// Ends an operator's pause; true when there was one.
    pub(crate) fn operator_resume(&mut self, now: Instant, out: &mut Vec<Effect>) -> bool {
        let was = self.operator_pause.take().is_some();
        self.step(now, out);
        was
    }

    /// Whether an operator's pause holds the partition now.
    #[cfg(test)]
    pub(crate) fn operator_paused(&self) -> bool {
        self.operator_pause.is_some()
    }

    pub(super) fn end_expired_operator_pause(&mut self, now: Instant) {
        if let Some(ConsumerPause::Until(t)) = self.operator_pause
            && now >= t
        {
            self.operator_pause = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Harness, SECOND, dispatched, settings, stores};
    use super::super::{Effect, Outcome};
    use crate::consumer::PartitionRequest;
    use crate::instrumentation::PauseReason;

    fn pauses(effects: &[Effect]) -> (bool, bool) {
        let pause = effects.iter().any(|e| matches!(e, Effect::Pause));
        let resume = effects.iter().any(|e| matches!(e, Effect::Resume));
        (pause, resume)
    }

    #[test]
    fn an_operator_pause_lets_the_running_batch_finish_and_starts_nothing_until_resumed() {
        let mut h = Harness::new(settings());
        assert_eq!(dispatched(&h.fetch(0..3)), Some((0, vec![0, 1, 2], 1)));
        h.p.operator_pause(None, h.now, &mut h.out);
        let e = std::mem::take(&mut h.out);
        assert_eq!(pauses(&e), (true, false), "fetching pauses: {e:?}");
        assert_eq!(h.p.pause_reason(h.now), PauseReason::Operator);
        assert_eq!(dispatched(&h.fetch(3..6)), None);
        let e = h.finish(0, Outcome::Consumed, Some(3));
        assert_eq!(stores(&e), vec![3], "the running batch's marks count");
        assert_eq!(dispatched(&e), None, "paused: nothing starts");
        assert_eq!(
            h.p.next_wakeup(h.now),
            None,
            "no wake-up while paused for good"
        );
        assert_eq!(dispatched(&h.advance(3600 * SECOND)), None);
        assert!(h.p.operator_resume(h.now, &mut h.out));
        let e = std::mem::take(&mut h.out);
        assert_eq!(pauses(&e), (false, true));
        assert_eq!(
            dispatched(&e),
            Some((1, vec![3, 4, 5], 1)),
            "the next offsets, in order"
        );
        assert!(
            !h.p.operator_resume(h.now, &mut h.out),
            "no pause left to end"
        );
    }

    #[test]
    fn a_consumers_resume_does_not_end_an_operator_pause() {
        let mut h = Harness::new(settings());
        assert_eq!(dispatched(&h.fetch(0..3)), Some((0, vec![0, 1, 2], 1)));
        h.p.operator_pause(None, h.now, &mut h.out);
        h.fetch(3..6);
        let e = h.finish_with(
            0,
            Outcome::Consumed,
            Some(3),
            vec![PartitionRequest::Resume],
        );
        assert_eq!(dispatched(&e), None);
        assert!(h.p.operator_paused());
        assert_eq!(h.p.pause_reason(h.now), PauseReason::Operator);
    }

    #[test]
    fn an_operator_pause_with_an_expiry_ends_by_itself_and_wakes_the_listener() {
        let mut h = Harness::new(settings());
        h.p.operator_pause(Some(h.now + 5 * SECOND), h.now, &mut h.out);
        h.out.clear();
        assert_eq!(dispatched(&h.fetch(0..3)), None);
        assert_eq!(h.p.next_wakeup(h.now), Some(h.now + 5 * SECOND));
        assert_eq!(dispatched(&h.advance(4 * SECOND)), None);
        let e = h.advance(SECOND);
        assert_eq!(dispatched(&e), Some((0, vec![0, 1, 2], 1)));
        assert!(!h.p.operator_paused());
    }
}
