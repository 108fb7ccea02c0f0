//! The clean-up: unfinished uploads untouched for the time-to-live, and
//! completed ones that long after they completed, are removed; a
//! completed upload's content stays when a document carries it. After each
//! start, once, attachment files that nothing refers to (what a crash left
//! between writing a send's files and its commit) go too.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{blocking, Transfers};
use crate::error::Result;

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub unfinished: usize,
    pub unsent: usize,
}

impl Transfers {
    /// How often the sweep runs: a quarter of the time-to-live, so that
    /// nothing outlives it by much, and at least every 10 minutes.
    pub fn sweep_interval(&self) -> Duration {
        (self.limits.ttl / 4).clamp(Duration::from_millis(10), Duration::from_secs(600))
    }

    /// Removes what expired.
    pub async fn sweep(&self) -> Result<Swept> {
        let mut swept = Swept::default();
        let Some(expired_before) = SystemTime::now().checked_sub(self.limits.ttl) else {
            return Ok(swept);
        };
        let store = self.store.clone();
        for found in blocking(move || store.partial_uploads()).await? {
            if found.modified > expired_before {
                continue;
            }
            // A stream writing it now keeps it; none may start meanwhile.
            let Ok(writing) = self.slot(&found.key).lock.clone().try_lock_owned() else {
                continue;
            };
            let (store, key) = (self.store.clone(), found.key);
            blocking(move || store.discard_upload(&key)).await?;
            self.set_partial(&found.key, None);
            drop(writing);
            swept.unfinished += 1;
        }
        for (key, at) in self.store.completed_uploads() {
            if at > expired_before {
                continue;
            }
            let store = self.store.clone();
            blocking(move || store.forget_upload(&key)).await?;
            self.state().unsent.remove(&key);
            swept.unsent += 1;
        }
        // Slots nobody holds or waits for.
        self.state()
            .slots
            .retain(|_, slot| Arc::strong_count(slot) > 1 || slot.lock.try_lock().is_err());
        Ok(swept)
    }

    /// Runs the sweep every [`Transfers::sweep_interval`] until the task is
    /// aborted; first, once, removes attachment files nothing refers to.
    pub async fn sweep_forever(self: Arc<Self>) {
        let store = self.store.clone();
        match blocking(move || store.sweep_attachment_files()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(files = n, "removed attachment files no document refers to"),
            Err(e) => tracing::warn!(error = %e, "sweeping attachment files"),
        }
        let mut tick = tokio::time::interval(self.sweep_interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if self.store.shared() {
                // Other front ends' leftovers are only removed here (see
                // `store::files`).
                let store = self.store.clone();
                match blocking(move || store.sweep_attachment_files()).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(files = n, "removed attachment files no document refers to")
                    }
                    Err(e) => tracing::warn!(error = %e, "sweeping attachment files"),
                }
            }
            match self.sweep().await {
                Ok(swept) if swept == Swept::default() => {}
                Ok(swept) => tracing::info!(
                    unfinished = swept.unfinished,
                    unsent = swept.unsent,
                    "removed expired uploads"
                ),
                // Tried again at the next tick; nothing is lost by waiting.
                Err(e) => tracing::warn!(error = %e, "sweeping uploads"),
            }
        }
    }
}
