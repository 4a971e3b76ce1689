//! The inwink rate budget shared by every emitter process: one timeline of call slots per inwink
//! event (`inwink_rate_budgets`), taken with one short upsert.

use crate::{Ctx, Result, Store};
use std::time::Duration;

impl Store {
    /// Reserves `n` consecutive call slots, `interval` apart, on the inwink event's timeline, and
    /// returns how long to wait before each of them (by Postgres's clock, from the moment it
    /// answered; zero for a slot that is due).
    ///
    /// The first slot is the later of the timeline's next free slot and now, so an idle timeline
    /// gives no burst credit: calls are never closer than `interval`, whichever process takes
    /// them. The row lock serialises concurrent takers, each for one statement.
    pub async fn take_call_slots(
        &self,
        inwink_event_id: &str,
        n: u32,
        interval: Duration,
    ) -> Result<Vec<Duration>> {
        let n = n.max(1);
        let span = interval.as_secs_f64() * f64::from(n);
        let client = self.client().await?;
        let row = client
            .query_one(
                "INSERT INTO inwink_rate_budgets AS b (inwink_event_id, next_slot) \
                 VALUES ($1, clock_timestamp() + make_interval(secs => $2)) \
                 ON CONFLICT (inwink_event_id) DO UPDATE \
                 SET next_slot = greatest(b.next_slot, clock_timestamp()) + make_interval(secs => $2) \
                 RETURNING extract(epoch FROM b.next_slot - clock_timestamp())::float8",
                &[&inwink_event_id, &span],
            )
            .await
            .ctx("take inwink call slots")?;
        // Seconds from now to the end of the reservation; slot i starts (n - i) intervals before.
        let end: f64 = row.get(0);
        Ok((0..n)
            .map(|i| {
                let wait = end - interval.as_secs_f64() * f64::from(n - i);
                Duration::try_from_secs_f64(wait.max(0.0)).unwrap_or(interval)
            })
            .collect())
    }
}
