//! Deadlines and backoff for the waits the SDK does not do for us (EC2's eventual consistency).
//! Every wait is bounded by a deadline set below the Lambda timeout.

use std::time::Duration;

use tokio::time::Instant;

/// The moment by which the hook must have answered.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    pub fn after(budget: Duration) -> Self {
        Self { at: Instant::now() + budget }
    }

    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }
}

/// Exponential backoff with jitter: 50 ms doubling to 800 ms, each wait drawn from the upper half
/// of its step so that concurrent invocations spread out.
#[derive(Debug)]
pub struct Backoff {
    step: Duration,
    pub attempts: u32,
}

const FIRST_STEP: Duration = Duration::from_millis(50);
const MAX_STEP: Duration = Duration::from_millis(800);

impl Default for Backoff {
    fn default() -> Self {
        Self { step: FIRST_STEP, attempts: 1 }
    }
}

impl Backoff {
    /// Sleeps before the next attempt. Returns false, without sleeping, when the wait would pass
    /// the deadline: the caller must give up and report.
    pub async fn wait(&mut self, deadline: &Deadline) -> bool {
        let half = self.step / 2;
        let jitter = Duration::from_millis(fastrand::u64(0..=half.as_millis() as u64));
        let pause = half + jitter;
        if pause >= deadline.remaining() {
            return false;
        }
        tokio::time::sleep(pause).await;
        self.step = (self.step * 2).min(MAX_STEP);
        self.attempts += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn backoff_grows_and_stops_at_the_deadline() {
        let deadline = Deadline::after(Duration::from_secs(2));
        let start = Instant::now();
        let mut backoff = Backoff::default();
        let mut waits = 0;
        while backoff.wait(&deadline).await {
            waits += 1;
        }
        let spent = start.elapsed();
        assert!(spent < Duration::from_secs(2), "waited past the deadline: {spent:?}");
        assert!(waits >= 3, "gave up too early after {waits} waits");
        assert_eq!(backoff.attempts, waits + 1);
    }
}
