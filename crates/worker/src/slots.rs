//! Render slots with priority: sync jobs (someone waits on the line) go before batch jobs.
//!
//! Batch jobs use at most `capacity` slots and only when no sync job is waiting; a sync job
//! also gets one slot beyond that, so it starts at once even while a large batch fills every
//! regular slot.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

/// Which queue a job came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Sync,
    Batch,
}

#[derive(Debug, Default)]
struct State {
    in_use: usize,
    sync_waiting: usize,
}

#[derive(Debug)]
pub struct Slots {
    capacity: usize,
    state: Mutex<State>,
    freed: Notify,
}

/// A held slot, given back on drop.
#[derive(Debug)]
pub struct Permit {
    slots: Arc<Slots>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.slots.lock().in_use -= 1;
        self.slots.freed.notify_waiters();
    }
}

/// Counts a waiting sync job for as long as it waits (also when its future is dropped).
struct Waiting<'a>(&'a Slots);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.lock().sync_waiting -= 1;
        // Batch jobs held back by this one may go now.
        self.0.freed.notify_waiters();
    }
}

impl Slots {
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Slots {
            capacity: capacity.max(1),
            state: Mutex::new(State::default()),
            freed: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a slot.
    pub async fn acquire(self: &Arc<Self>, priority: Priority) -> Permit {
        let _waiting = (priority == Priority::Sync).then(|| {
            self.lock().sync_waiting += 1;
            Waiting(self)
        });
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut state = self.lock();
                let free = match priority {
                    Priority::Sync => state.in_use < self.capacity + 1,
                    Priority::Batch => state.in_use < self.capacity && state.sync_waiting == 0,
                };
                if free {
                    state.in_use += 1;
                    return Permit {
                        slots: self.clone(),
                    };
                }
            }
            freed.await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn sync_gets_a_slot_beyond_a_full_batch_and_goes_first() {
        let slots = Slots::new(2);
        let a = slots.acquire(Priority::Batch).await;
        let _b = slots.acquire(Priority::Batch).await;
        // Every regular slot is taken by batch work: a third batch job waits...
        let third = tokio::time::timeout(Duration::from_millis(50), slots.acquire(Priority::Batch));
        assert!(third.await.is_err());
        // ...while a sync job starts at once on the reserved slot.
        let s1 = slots.acquire(Priority::Sync).await;
        // A second sync job waits, and when a slot frees it goes before the waiting batch job.
        let order = Arc::new(Mutex::new(Vec::new()));
        let (o1, sl1) = (order.clone(), slots.clone());
        let batch = tokio::spawn(async move {
            let p = sl1.acquire(Priority::Batch).await;
            o1.lock().unwrap().push("batch");
            p
        });
        tokio::task::yield_now().await;
        let (o2, sl2) = (order.clone(), slots.clone());
        let sync = tokio::spawn(async move {
            let p = sl2.acquire(Priority::Sync).await;
            o2.lock().unwrap().push("sync");
            p
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(order.lock().unwrap().is_empty());
        drop(a);
        let s2 = sync.await.unwrap();
        assert_eq!(*order.lock().unwrap(), vec!["sync"]);
        drop(s1);
        drop(s2);
        let _p = batch.await.unwrap();
        assert_eq!(*order.lock().unwrap(), vec!["sync", "batch"]);
    }
}
