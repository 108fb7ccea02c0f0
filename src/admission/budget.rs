//! Budgets of request bytes held in memory: one for all callers and one per
//! organisation. A request's body is charged frame by frame as it arrives,
//! before tonic buffers it, and the charge is held until the request is
//! answered (the decoded request lives that long). A frame over either
//! budget refuses the request with RESOURCE_EXHAUSTED; refusing rather than
//! waiting means that stalled uploads cannot make others queue behind them.
//! A body that stops arriving for the stall time is refused too, so that it
//! does not hold its charge for ever.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use tonic::Status;

use super::Warnings;
use crate::directory::OrgCode;

/// Seconds a refused caller is told to wait: requests in flight finish in
/// about that time.
const RETRY_SECONDS: u64 = 1;

const MIB: f64 = 1024.0 * 1024.0;

/// Bytes held against a limit.
struct Budget {
    limit: usize,
    used: AtomicUsize,
}

impl Budget {
    fn new(limit: usize) -> Budget {
        Budget {
            limit,
            used: AtomicUsize::new(0),
        }
    }

    fn try_take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&after| after <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// The budget of all callers and those of each organisation.
pub struct Budgets {
    all: Arc<Budget>,
    per_org: usize,
    /// By organisation (`None`: a certificate naming none, refused by the
    /// handlers; its requests still share one budget until then). Never
    /// shrinks: only certificates the client CA signed get here.
    orgs: Mutex<HashMap<Option<OrgCode>, Arc<Budget>>>,
    warnings: Arc<Warnings>,
}

impl Budgets {
    pub fn new(all: usize, per_org: usize, warnings: Arc<Warnings>) -> Budgets {
        Budgets {
            all: Arc::new(Budget::new(all)),
            per_org,
            orgs: Mutex::new(HashMap::new()),
            warnings,
        }
    }

    /// An empty charge for one request of `org` (named `who` in messages).
    pub fn charge(self: &Arc<Self>, org: Option<OrgCode>, who: String) -> Arc<Charge> {
        let org_budget = self
            .orgs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(org)
            .or_insert_with(|| Arc::new(Budget::new(self.per_org)))
            .clone();
        Arc::new(Charge {
            budgets: self.clone(),
            org: org_budget,
            who,
            held: AtomicUsize::new(0),
        })
    }

    /// Bytes held for all callers now.
    pub fn used(&self) -> usize {
        self.all.used.load(Ordering::Acquire)
    }
}

/// The bytes one request holds; given back when the last holder (its body,
/// its response) drops it.
pub struct Charge {
    budgets: Arc<Budgets>,
    org: Arc<Budget>,
    who: String,
    held: AtomicUsize,
}

impl Charge {
    /// Holds `bytes` more, or refuses the request.
    fn add(&self, bytes: usize) -> Result<(), Status> {
        if !self.org.try_take(bytes) {
            let limit = self.org.limit as f64 / MIB;
            self.budgets
                .warnings
                .limit_bit("--org-request-budget-mib", || {
                    format!(
                        "refused a request of {}: its requests in progress hold {limit:.0} MiB, its budget",
                        self.who
                    )
                });
            return Err(refusal(format!(
                "{} has {limit:.0} MiB of requests in progress, the most one organisation may; retry when they are done",
                self.who
            )));
        }
        if !self.budgets.all.try_take(bytes) {
            self.org.give_back(bytes);
            let limit = self.budgets.all.limit as f64 / MIB;
            self.budgets.warnings.limit_bit("--request-budget-mib", || {
                format!(
                    "refused a request of {}: requests in progress hold {limit:.0} MiB, the budget of all callers",
                    self.who
                )
            });
            return Err(refusal(format!(
                "the server holds {limit:.0} MiB of requests in progress, its limit; retry in a moment"
            )));
        }
        self.held.fetch_add(bytes, Ordering::AcqRel);
        Ok(())
    }
}

impl Charge {
    /// Gives back up to `bytes` of what the request holds: the handler of
    /// a client stream is done with a message of that many bytes, so the
    /// stream is charged for what it holds in memory, not for all it ever
    /// sent.
    pub fn give_back(&self, bytes: usize) {
        let before = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                Some(held.saturating_sub(bytes))
            })
            .unwrap_or(0);
        let given = before.min(bytes);
        self.org.give_back(given);
        self.budgets.all.give_back(given);
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        let held = *self.held.get_mut();
        self.org.give_back(held);
        self.budgets.all.give_back(held);
    }
}

/// RESOURCE_EXHAUSTED with `retry-after`, in seconds, as HTTP has it.
fn refusal(message: String) -> Status {
    let mut status = Status::resource_exhausted(message);
    status
        .metadata_mut()
        .insert("retry-after", RETRY_SECONDS.into());
    status
}

/// A request body that charges each frame before passing it on, and fails
/// when nothing arrives for the stall time.
pub struct ChargedBody {
    inner: tonic::body::Body,
    charge: Arc<Charge>,
    stall: Duration,
    stalled: Pin<Box<Sleep>>,
}

impl ChargedBody {
    pub fn new(inner: tonic::body::Body, charge: Arc<Charge>, stall: Duration) -> ChargedBody {
        ChargedBody {
            inner,
            charge,
            stall,
            stalled: Box::pin(tokio::time::sleep(stall)),
        }
    }
}

impl http_body::Body for ChargedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.charge.add(data.len())?;
                }
                let next = Instant::now() + this.stall;
                this.stalled.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                if this.stalled.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                let seconds = this.stall.as_secs_f64();
                this.charge
                    .budgets
                    .warnings
                    .limit_bit("--stall-seconds", || {
                        format!(
                            "refused a request of {} whose body stalled for {seconds} s",
                            this.charge.who
                        )
                    });
                Poll::Ready(Some(Err(Status::deadline_exceeded(format!(
                    "the request stopped arriving: nothing came for {seconds} s"
                )))))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_charge_holds_both_budgets_until_dropped() {
        let budgets = Arc::new(Budgets::new(100, 60, Arc::default()));
        let a = budgets.charge(None, "a".into());
        a.add(50).unwrap();
        // Over the organisation's budget: refused, nothing more held.
        let status = a.add(20).unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(status.metadata().get("retry-after").unwrap(), "1");
        assert_eq!(budgets.used(), 50);
        // Another organisation meets the budget of all callers.
        let code = OrgCode::parse("000.02.09.H37");
        let b = budgets.charge(code, "b".into());
        b.add(50).unwrap();
        assert!(b.add(1).is_err());
        assert_eq!(budgets.used(), 100);
        drop(a);
        assert_eq!(budgets.used(), 50);
        b.add(50).unwrap_err(); // its own budget: 60
        b.add(10).unwrap();
        drop(b);
        assert_eq!(budgets.used(), 0);
    }
}
