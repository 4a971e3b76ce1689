//! The optional inwink rate cap (`PXSYNC_INWINK_RATE_LIMIT`, or `inwink_rate_limit` of a salon in
//! `PXSYNC_CONFIG`), shared by every emitter process of the namespace through Postgres.
//!
//! inwink's rate limit belongs to the inwink event, not to a process: [`SharedBudget`] spaces
//! the calls of every process on one timeline per inwink event (`Store::take_call_slots`), so
//! that together they never go faster than the cap, however many replicas run. Without a cap
//! nothing is shared and the emitter adapts to inwink's 429s alone.
//!
//! Cost: one short upsert per reservation. When several calls of a process wait at once, one
//! reservation takes a slot for each of them (at most [`MAX_SLOTS_PER_TAKE`]).

use crate::emitter::Clients;
use pxsync_inwink::CallBudget;
use pxsync_store::Store;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// The most slots one round trip reserves.
pub const MAX_SLOTS_PER_TAKE: usize = 8;

/// When Postgres cannot be reached, a call waits this long and then goes (the next take tries
/// Postgres again): a slow trickle rather than a stop, and never a burst.
const FALLBACK_WAIT: Duration = Duration::from_secs(1);

/// Parses a rate cap in calls per second: a finite number above 0.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err("must be a number of calls per second above 0, such as 20 or 2.5".into()),
    }
}

/// One inwink event's share of the budget in this process.
pub struct SharedBudget {
    store: Store,
    inwink_event_id: String,
    interval: Duration,
    /// Calls of this process waiting for a slot (how many slots the next reservation takes).
    waiting: AtomicUsize,
    /// Slots reserved by this process and not used yet, earliest first.
    reserved: tokio::sync::Mutex<VecDeque<Instant>>,
}

impl SharedBudget {
    /// A budget of `per_second` calls (all processes together) for one inwink event.
    pub fn new(store: Store, inwink_event_id: &str, per_second: f64) -> SharedBudget {
        SharedBudget {
            store,
            inwink_event_id: inwink_event_id.to_owned(),
            interval: Duration::try_from_secs_f64(1.0 / per_second).unwrap_or(FALLBACK_WAIT),
            waiting: AtomicUsize::new(0),
            reserved: tokio::sync::Mutex::new(VecDeque::new()),
        }
    }

    /// The instant this call may be sent.
    async fn slot(&self) -> Instant {
        let mut reserved = self.reserved.lock().await;
        let now = Instant::now();
        // A slot passed by more than an interval is dropped: sent that late, the call would
        // crowd the slots other processes hold.
        while reserved.front().is_some_and(|s| *s + self.interval < now) {
            reserved.pop_front();
        }
        if let Some(slot) = reserved.pop_front() {
            return slot;
        }
        let wanted = self
            .waiting
            .load(Ordering::SeqCst)
            .clamp(1, MAX_SLOTS_PER_TAKE);
        match self
            .store
            .take_call_slots(&self.inwink_event_id, wanted as u32, self.interval)
            .await
        {
            Ok(waits) => {
                let now = Instant::now();
                let mut slots = waits.into_iter().map(|w| now + w);
                let first = slots.next().unwrap_or(now);
                reserved.extend(slots);
                first
            }
            Err(e) => {
                tracing::warn!(event = %self.inwink_event_id, error = %e, "cannot take inwink call slots: waiting 1 s instead");
                now + FALLBACK_WAIT
            }
        }
    }
}

impl CallBudget for SharedBudget {
    fn take(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            self.waiting.fetch_add(1, Ordering::SeqCst);
            let slot = self.slot().await;
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            tokio::time::sleep_until(slot).await;
        })
    }
}

/// Gives each client whose inwink event has a cap in `limits` (calls per second) its shared
/// budget. Clients without a cap are left as they are.
pub fn share(clients: &mut Clients, store: &Store, limits: &BTreeMap<String, f64>) {
    for (event, client) in clients.iter_mut() {
        if let Some(&per_second) = limits.get(event) {
            tracing::info!(event = %event, per_second, "inwink calls capped, shared with every emitter of the namespace");
            let budget = Arc::new(SharedBudget::new(store.clone(), event, per_second));
            *client = client.clone().with_budget(budget);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_is_a_positive_finite_number() {
        assert_eq!(parse_rate("20"), Ok(20.0));
        assert_eq!(parse_rate("2.5"), Ok(2.5));
        for bad in ["0", "-1", "NaN", "inf", "fast", ""] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }
}
