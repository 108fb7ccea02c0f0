//! Group commit: one thread applies every write and syncs for all of them.
//!
//! Senders hand their [`NewDocument`] to the committer and wait. The
//! committer takes everything queued (up to a batch limit), applies each send
//! as its own transaction (the rules are in `commit`), makes the batch
//! durable with one [`Engine::sync`], and only then answers each sender. One
//! fsync covers many sends, and no reply leaves before its data is on disk.
//!
//! Why a thread: the engine's sync blocks, and with sled it must not run
//! concurrently with itself (sled 0.34.7 deadlocks when several
//! `flush_async` calls overlap). Here exactly one sync is ever in progress.
//! One writer also means transactions never conflict.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use super::commit;
use super::engine::{self, Engine, Space};
use super::keys;
use super::records::StoredEvent;
use super::{CommitListener, NewDocument, NewStatus, Pending, Sealer, SendOutcome, StatusOutcome};
use crate::error::{Error, Result};

/// How many sends one flush covers at most.
const MAX_BATCH: usize = 512;
/// How many sends may wait for the committer before senders are held back.
const QUEUE: usize = 4096;

type Reply<T> = oneshot::Sender<Result<T>>;

/// Sends that must reach the committer in order (a batch): each holds a
/// [`Turn`] with its place, and is queued only once every send before it
/// was queued or gave up.
pub struct Sequence {
    /// The first place not yet done.
    next: tokio::sync::watch::Sender<u64>,
    /// Places done while one before them was not.
    done_ahead: Mutex<std::collections::BTreeSet<u64>>,
}

impl Sequence {
    pub fn new() -> Arc<Sequence> {
        Arc::new(Sequence {
            next: tokio::sync::watch::Sender::new(0),
            done_ahead: Mutex::new(std::collections::BTreeSet::new()),
        })
    }

    /// The turn at `place` (0 for the first).
    pub fn turn(self: &Arc<Self>, place: u64) -> Turn {
        Turn {
            sequence: self.clone(),
            place,
        }
    }

    fn done(&self, place: u64) {
        let mut ahead = lock(&self.done_ahead);
        ahead.insert(place);
        self.next.send_modify(|next| {
            while ahead.remove(next) {
                *next += 1;
            }
        });
    }
}

/// A send's place in a [`Sequence`]: done once its job is queued, or when
/// dropped on the way (a send refused before it reached the committer).
pub struct Turn {
    sequence: Arc<Sequence>,
    place: u64,
}

impl Turn {
    /// Waits until every place before this one is done.
    async fn come(&self) {
        let mut next = self.sequence.next.subscribe();
        // The sender lives in `self.sequence`: it cannot close meanwhile.
        let _ = next.wait_for(|next| *next >= self.place).await;
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.sequence.done(self.place);
    }
}

impl std::fmt::Debug for Turn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Turn({})", self.place)
    }
}

enum Job {
    Send {
        new: Box<NewDocument>,
        reply: Reply<SendOutcome>,
    },
    /// A status change or a revocation.
    Status {
        new: Box<NewStatus>,
        reply: Reply<StatusOutcome>,
    },
    /// Sign a checkpoint of the archive as it stands (or return the latest
    /// if nothing was appended since).
    Checkpoint { reply: Reply<Vec<u8>> },
    /// Begin a snapshot of the store between two sends, answered once the
    /// sends before it are durable.
    Snapshot { reply: Reply<engine::Snapshot> },
}

// A reply that cannot be sent means the caller stopped waiting (its request
// was cancelled): the outcome stands, durable or not, whether or not anyone
// hears of it; an idempotent retry finds it. So `let _ = reply.send(…)`.

impl Job {
    /// Answers the job with `error` without doing it.
    fn refuse(self, error: Error) {
        match self {
            Job::Send { reply, .. } => drop(reply.send(Err(error))),
            Job::Status { reply, .. } => drop(reply.send(Err(error))),
            Job::Checkpoint { reply } => drop(reply.send(Err(error))),
            Job::Snapshot { reply } => drop(reply.send(Err(error))),
        }
    }
}

/// A job's outcome, held until the sync that makes it durable; then called
/// with `None` to deliver it, or with the error that lost it.
type Answer = Box<dyn FnOnce(Option<Error>) + Send>;

fn answer<T: Send + 'static>(reply: Reply<T>, outcome: Result<T>) -> Answer {
    Box::new(move |failure| {
        let _ = reply.send(match failure {
            None => outcome,
            Some(error) => Err(error),
        });
    })
}

pub(super) struct Committer {
    queue: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Committer {
    pub(super) fn start(setup: Setup) -> Result<Committer> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("lienthong-committer".into())
            .spawn(move || run(setup, rx))
            .map_err(|e| Error::storage(format!("cannot start the committer thread: {e}")))?;
        Ok(Committer {
            queue: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues a job made by `job` and waits for its answer, which comes
    /// only once its work is durable.
    async fn ask<T>(&self, job: impl FnOnce(Reply<T>) -> Job) -> Result<T> {
        self.ask_in_turn(job, None).await
    }

    /// [`Committer::ask`], queueing the job only once every send before
    /// `turn`'s place was queued or gave up.
    async fn ask_in_turn<T>(
        &self,
        job: impl FnOnce(Reply<T>) -> Job,
        turn: Option<Turn>,
    ) -> Result<T> {
        let closed = || Error::Unavailable("the service is shutting down; try again later".into());
        let queue = lock(&self.queue).clone().ok_or_else(closed)?;
        let (reply, answer) = oneshot::channel();
        if let Some(turn) = &turn {
            turn.come().await;
        }
        queue.send(job(reply)).await.map_err(|_| closed())?;
        drop(turn); // done: the next send's turn
        answer.await.map_err(|_| closed())?
    }

    pub(super) async fn submit(&self, new: NewDocument, turn: Option<Turn>) -> Result<SendOutcome> {
        self.ask_in_turn(
            |reply| Job::Send {
                new: Box::new(new),
                reply,
            },
            turn,
        )
        .await
    }

    pub(super) async fn submit_status(&self, new: NewStatus) -> Result<StatusOutcome> {
        self.ask(|reply| Job::Status {
            new: Box::new(new),
            reply,
        })
        .await
    }

    /// A signed checkpoint of the archive, durable when returned.
    pub(super) async fn checkpoint(&self) -> Result<Vec<u8>> {
        self.ask(|reply| Job::Checkpoint { reply }).await
    }

    /// A snapshot of the store that holds every send answered before the
    /// call, all of it durable.
    pub(super) async fn snapshot(&self) -> Result<engine::Snapshot> {
        self.ask(|reply| Job::Snapshot { reply }).await
    }

    /// Closes the queue, lets the committer finish what was queued, and
    /// waits for its last flush.
    pub(super) async fn stop(&self) {
        lock(&self.queue).take();
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            let joined = tokio::task::spawn_blocking(move || thread.join()).await;
            if !matches!(joined, Ok(Ok(()))) {
                // It cannot have acknowledged anything it did not sync:
                // replies leave only after a sync. Say so loudly anyway.
                tracing::error!(
                    "the committer thread panicked; its last batch was not acknowledged"
                );
            }
        }
    }
}

/// Takes a lock even if a thread panicked while holding it: each use is a
/// single clone or take of an `Option`, which a panic cannot leave half done.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Everything the committer thread owns.
pub(super) struct Setup {
    pub engine: Arc<dyn Engine>,
    pub pending: Arc<Pending>,
    pub sealer: Arc<dyn Sealer>,
    pub listener: Arc<dyn CommitListener>,
    pub events_kept: u64,
    /// A checkpoint is made once this many leaves were appended since the
    /// last one.
    pub checkpoint_every: u64,
    /// The size of the last checkpoint.
    pub last_checkpoint: u64,
    pub clock: crate::clock::Clock,
}

impl Setup {
    /// Makes and stores a signed checkpoint if `force` or if one is due;
    /// otherwise returns the latest. On the committer thread, so the size it
    /// reads cannot move under it.
    fn checkpoint(&mut self, force: bool) -> Result<Vec<u8>> {
        if !force {
            // The common case, after every batch: not due. Decided from one
            // read, without opening a transaction.
            let size = match self.engine.get(Space::Counters, keys::ARCHIVE_SIZE)? {
                Some(v) => {
                    keys::be_u64(&v).ok_or_else(|| commit::corrupt_counter(keys::ARCHIVE_SIZE))?
                }
                None => 0,
            };
            if size < self.last_checkpoint.saturating_add(self.checkpoint_every) {
                return Ok(Vec::new());
            }
        }
        let (sealer, last, every) = (
            self.sealer.clone(),
            self.last_checkpoint,
            self.checkpoint_every,
        );
        let now = self.clock.now_ms();
        let outcome = engine::transact(self.engine.as_ref(), |txn| {
            commit::checkpoint(txn, sealer.as_ref(), last, every, force, now)
        })?;
        Ok(match outcome {
            commit::Checkpoint::Made(size, signed) => {
                self.last_checkpoint = size;
                signed
            }
            commit::Checkpoint::Latest(signed) => signed,
        })
    }

    fn status(&self, new: &NewStatus) -> Result<(StatusOutcome, Vec<StoredEvent>)> {
        engine::transact(self.engine.as_ref(), |txn| {
            commit::status(
                txn,
                new,
                self.sealer.as_ref(),
                self.events_kept,
                self.clock.now_ms(),
            )
        })
    }

    fn send(&self, new: &NewDocument) -> Result<(SendOutcome, Vec<StoredEvent>)> {
        engine::transact(self.engine.as_ref(), |txn| {
            commit::send(
                txn,
                new,
                self.sealer.as_ref(),
                self.events_kept,
                self.clock.now_ms(),
            )
        })
    }
}

fn run(mut setup: Setup, mut rx: mpsc::Receiver<Job>) {
    // After a failed sync, what is in memory may never reach the disk: take
    // no more writes, so nothing is acknowledged on top of a lost one.
    let mut failed: Option<String> = None;
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        if let Some(reason) = &failed {
            for job in jobs {
                job.refuse(Error::Unavailable(format!(
                    "storage failed earlier ({reason}); the service must be restarted"
                )));
            }
            continue;
        }

        let mut ids = Vec::with_capacity(jobs.len());
        let mut answers: Vec<Answer> = Vec::with_capacity(jobs.len());
        let mut events = Vec::new();
        for job in jobs {
            match job {
                Job::Send { new, reply } => {
                    setup.pending.insert(new.id);
                    ids.push(new.id);
                    // The earlier documents it names have their records
                    // rewritten (replies, supersession): held as they were.
                    let mut held = Ok(());
                    for earlier in new
                        .reply_to
                        .iter()
                        .chain(new.supersedes.iter().map(|(id, _)| id))
                    {
                        ids.push(*earlier);
                        held = held.and_then(|()| {
                            setup.pending.hold(setup.engine.as_ref(), *earlier, None)
                        });
                    }
                    let outcome =
                        held.and_then(|()| setup.send(&new))
                            .map(|(outcome, mut new_events)| {
                                events.append(&mut new_events);
                                outcome
                            });
                    answers.push(answer(reply, outcome));
                }
                Job::Status { new, reply } => {
                    ids.push(new.document);
                    let outcome = setup
                        .pending
                        .hold(setup.engine.as_ref(), new.document, Some(&new.from))
                        .and_then(|()| setup.status(&new))
                        .map(|(outcome, mut new_events)| {
                            events.append(&mut new_events);
                            outcome
                        });
                    answers.push(answer(reply, outcome));
                }
                Job::Checkpoint { reply } => {
                    answers.push(answer(reply, setup.checkpoint(true)));
                }
                // Answered after this batch's sync, like a send: a failed
                // sync fails the snapshot too, so it never holds a send
                // that was not acknowledged.
                Job::Snapshot { reply } => {
                    answers.push(answer(reply, setup.engine.snapshot()));
                }
            }
        }
        // Every `checkpoint_every` appends, a checkpoint in the same sync. A
        // failure here loses nothing acknowledged: the next batch, or the
        // timer, tries again.
        if let Err(e) = setup.checkpoint(false) {
            tracing::error!(error = %e, "cannot make the periodic checkpoint");
        }
        let syncing = std::time::Instant::now();
        match setup.engine.sync() {
            Ok(()) => {
                setup.listener.synced(answers.len(), syncing.elapsed());
                setup.pending.remove(&ids);
                // Durable now: first tell the listener, so that a sender who
                // subscribes right after its acknowledgement finds the event.
                if !events.is_empty() {
                    setup.listener.committed(events);
                }
                for answer in answers {
                    answer(None);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "sync failed; refusing further writes");
                let reason = e.to_string();
                for answer in answers {
                    answer(Some(Error::storage(format!("sync failed: {reason}"))));
                }
                failed = Some(reason);
            }
        }
    }
    if let Err(e) = setup.engine.sync() {
        tracing::error!(error = %e, "final sync failed");
    }
}
