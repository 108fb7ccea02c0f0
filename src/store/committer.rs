//! Group commit: every write is applied by one leader at a time, which
//! syncs once for all the writes it applied.
//!
//! Senders queue their job and wait. If no commit is running, the sender
//! that queued becomes the *leader* and commits on its own thread: it takes
//! everything queued (up to a batch limit), applies the jobs in one engine
//! transaction, each apart in an overlay so that one refused job leaves
//! nothing and fails no other (the rules are in `commit`), makes the batch
//! durable with one [`Engine::sync`], and only then answers each sender.
//! One transaction per batch rather than per job: on PostgreSQL, one
//! advisory lock, one `COMMIT` and one WAL flush for the batch. Jobs queued while it
//! worked wait for the next batch, whose leader is the first of their
//! senders: the leader passes the role on and returns to its own request.
//! One fsync covers many sends, and no reply leaves before its data is on
//! disk.
//!
//! Why leaders rather than a committer thread: a send at low load then
//! crosses no thread at all, and under load each waiting sender is woken
//! once, with its answer (a thread would add a wake-up on the way in and
//! one on the way out, which the profile showed as a third of the server's
//! time). A leader on a multi-threaded runtime commits inside
//! `block_in_place`, so the runtime moves its other tasks elsewhere while
//! the sync blocks.
//!
//! Exactly one leader exists at a time, so exactly one sync is ever in
//! progress (sled 0.34.7 deadlocks when several `flush_async` calls
//! overlap), and transactions never conflict.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, Notify};

use super::commit;
use super::engine::{self, Engine, Space, Txn};
use super::keys;
use super::overlay::Overlay;
use super::records::StoredEvent;
use super::{
    CommitListener, DocId, NewDocument, NewStatus, Pending, Sealer, SendOutcome, StatusOutcome,
};
use crate::error::{Error, Result};

/// How many sends one flush covers at most.
const MAX_BATCH: usize = 512;

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

/// A job waiting for a leader, with the way to make its sender the next
/// leader.
struct Queued {
    job: Job,
    promote: oneshot::Sender<Leadership>,
}

struct Shared {
    state: Mutex<State>,
    /// Locked by the leader for the whole of a batch: never contended,
    /// since there is one leader at a time. Taken by [`Committer::stop`],
    /// which drops the listener with it: that ends the notifier's
    /// publisher.
    setup: Mutex<Option<Setup>>,
    /// Woken when the last leader steps down (for [`Committer::stop`]).
    idle: Notify,
}

struct State {
    queue: VecDeque<Queued>,
    /// A [`Leadership`] exists: a batch is being committed, or the role is
    /// on its way to the next leader.
    leading: bool,
    /// No new jobs; those queued are still committed.
    closed: bool,
}

pub(super) struct Committer(Arc<Shared>);

impl Committer {
    pub(super) fn start(setup: Setup) -> Result<Committer> {
        Ok(Committer(Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                leading: false,
                closed: false,
            }),
            setup: Mutex::new(Some(setup)),
            idle: Notify::new(),
        })))
    }

    /// Queues a job made by `job` and waits for its answer, which comes
    /// only once its work is durable.
    async fn ask<T>(&self, job: impl FnOnce(Reply<T>) -> Job) -> Result<T> {
        self.ask_in_turn(job, None).await
    }

    /// [`Committer::ask`], queueing the job only once every send before
    /// `turn`'s place was queued or gave up.
    ///
    /// Waiting senders are bounded by admission (each is an open request,
    /// and requests are capped per connection and in total), so the queue
    /// needs no bound of its own.
    async fn ask_in_turn<T>(
        &self,
        job: impl FnOnce(Reply<T>) -> Job,
        turn: Option<Turn>,
    ) -> Result<T> {
        let (reply, mut answer) = oneshot::channel();
        let (promote, mut promoted) = oneshot::channel();
        if let Some(turn) = &turn {
            turn.come().await;
        }
        let leadership = {
            let mut state = lock(&self.0.state);
            if state.closed {
                return Err(closed());
            }
            state.queue.push_back(Queued {
                job: job(reply),
                promote,
            });
            if state.leading {
                None
            } else {
                state.leading = true;
                Some(Leadership(Some(self.0.clone())))
            }
        };
        drop(turn); // queued: the next send's turn
        if let Some(leadership) = leadership {
            leadership.lead_here();
        }
        let mut may_be_promoted = true;
        loop {
            tokio::select! {
                biased;
                outcome = &mut answer => return outcome.map_err(|_| closed())?,
                // Dropped unsent once this job is taken into a batch.
                leadership = &mut promoted, if may_be_promoted => {
                    may_be_promoted = false;
                    if let Ok(leadership) = leadership {
                        leadership.lead_here();
                    }
                }
            }
        }
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

    /// Takes no more jobs, waits until those queued are committed, and
    /// syncs a last time.
    pub(super) async fn stop(&self) {
        lock(&self.0.state).closed = true;
        loop {
            let idle = self.0.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if !lock(&self.0.state).leading {
                break;
            }
            idle.await;
        }
        let Some(setup) = lock(&self.0.setup).take() else {
            return; // stopped before
        };
        let synced = tokio::task::spawn_blocking(move || setup.engine.sync()).await;
        match synced {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "final sync failed"),
            Err(e) => tracing::error!(error = %e, "the final sync did not complete"),
        }
    }
}

fn closed() -> Error {
    Error::Unavailable("the service is shutting down; try again later".into())
}

/// The right, and the duty, to commit what is queued. One exists while
/// [`State::leading`]; it is used by [`Leadership::lead_here`], or, if
/// dropped unused (a promoted sender whose request was cancelled before it
/// could take the role), passed on by its `Drop`.
struct Leadership(Option<Arc<Shared>>);

impl Leadership {
    /// Commits batches on this thread until the queue is empty or the role
    /// went to a sender of the next batch.
    fn lead_here(mut self) {
        let Some(shared) = self.0.take() else { return };
        let multi_threaded = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi_threaded {
            tokio::task::block_in_place(|| lead(&shared));
        } else {
            // A single-threaded runtime has nowhere else to run; its other
            // tasks wait for the batch, as they would for any blocking call.
            lead(&shared);
        }
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        if let Some(shared) = self.0.take() {
            // Rare (a cancelled request was chosen to lead): lead on a
            // thread of its own rather than block whoever dropped this.
            let spawned = std::thread::Builder::new()
                .name("lienthong-commit".into())
                .spawn(move || lead(&shared));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a thread to commit the queued writes");
            }
        }
    }
}

/// The leader's loop: one batch, then pass the role to a waiting sender;
/// lead the next batch itself only if none can take it.
fn lead(shared: &Arc<Shared>) {
    loop {
        let jobs: Vec<Job> = {
            let mut state = lock(&shared.state);
            if state.queue.is_empty() {
                state.leading = false;
                drop(state);
                shared.idle.notify_waiters();
                return;
            }
            let n = state.queue.len().min(MAX_BATCH);
            // Each promise to promote is dropped: its sender stops waiting
            // for the role and waits for its answer.
            state.queue.drain(..n).map(|queued| queued.job).collect()
        };
        match lock(&shared.setup).as_mut() {
            Some(setup) => setup.commit(jobs),
            // Cannot happen: stop takes the setup only once no job is left.
            None => jobs.into_iter().for_each(|job| job.refuse(closed())),
        }
        let mut state = lock(&shared.state);
        for queued in state.queue.iter_mut() {
            let (stand_in, _) = oneshot::channel();
            let promote = std::mem::replace(&mut queued.promote, stand_in);
            match promote.send(Leadership(Some(shared.clone()))) {
                Ok(()) => return,
                // That sender is gone; its job stays queued, in its place,
                // to be committed all the same. Try the next.
                Err(mut refused) => refused.0 = None,
            }
        }
        // Nobody waiting can take the role: this leader goes on.
    }
}

/// Takes a lock even if a thread panicked while holding it: each use is a
/// single clone or take of an `Option`, which a panic cannot leave half done.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Everything the leader uses to commit (one leader at a time).
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
    /// Set once a sync failed: what was in memory may never reach the
    /// disk, so no more writes are taken, and nothing is acknowledged on
    /// top of a lost one.
    pub failed: Option<String>,
}

impl Setup {
    /// Makes and stores a signed checkpoint if `force` or if one is due;
    /// otherwise returns the latest. Run by the leader, so the size it
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
            commit::Checkpoint::Latest(size, signed) => {
                // Perhaps another front end's, newer than we knew.
                self.last_checkpoint = size;
                signed
            }
        })
    }

    /// Applies one send or status change to `txn` by the rules.
    fn apply(&self, txn: &mut dyn Txn, job: &Job) -> Result<Applied> {
        let now = self.clock.now_ms();
        let (sealer, kept) = (self.sealer.as_ref(), self.events_kept);
        match job {
            Job::Send { new, .. } => commit::send(txn, new, sealer, kept, now)
                .map(|(outcome, events)| Applied::Send(outcome, events)),
            Job::Status { new, .. } => commit::status(txn, new, sealer, kept, now)
                .map(|(outcome, events)| Applied::Status(outcome, events)),
            Job::Checkpoint { .. } | Job::Snapshot { .. } => Err(Error::storage(
                "a checkpoint or snapshot was applied as a write",
            )),
        }
    }

    /// Applies a group of sends and status changes in one engine
    /// transaction, each job apart in an [`Overlay`]: a job the rules refuse
    /// leaves nothing and fails no other. If the transaction itself fails
    /// (the engine, not the rules), each job is tried again in a
    /// transaction of its own, so that one job's storage failure is its
    /// own.
    fn apply_group(
        &self,
        group: Vec<Job>,
        answers: &mut Vec<Answer>,
        events: &mut Vec<StoredEvent>,
    ) {
        if group.is_empty() {
            return;
        }
        let mut outcomes: Vec<Result<Applied>> = Vec::with_capacity(group.len());
        let together = self.engine.transact(&mut |txn| {
            // The engine may run this again: start over.
            outcomes.clear();
            for job in &group {
                let mut overlay = Overlay::new(&mut *txn);
                match self.apply(&mut overlay, job) {
                    Ok(applied) => {
                        overlay.apply()?;
                        outcomes.push(Ok(applied));
                    }
                    // The engine failed: the transaction may be broken.
                    Err(e @ Error::Storage(_)) => return Err(e),
                    Err(refused) => outcomes.push(Err(refused)),
                }
            }
            Ok(())
        });
        if let Err(e) = together {
            tracing::warn!(error = %e, jobs = group.len(), "a batch's transaction failed; its jobs are applied one by one");
            outcomes = group
                .iter()
                .map(|job| engine::transact(self.engine.as_ref(), |txn| self.apply(txn, job)))
                .collect();
        }
        for (job, outcome) in group.into_iter().zip(outcomes) {
            answers.push(job.answer_applied(outcome, events));
        }
    }

    /// Before a send or status change joins the batch: marks what it will
    /// change as in flight, holding the durable records readers are shown
    /// meanwhile. A job that cannot be held is answered with the error and
    /// not applied.
    fn hold(&self, job: Job, ids: &mut Vec<DocId>, answers: &mut Vec<Answer>) -> Option<Job> {
        let held = match &job {
            Job::Send { new, .. } => {
                self.pending.insert(new.id);
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
                    held =
                        held.and_then(|()| self.pending.hold(self.engine.as_ref(), *earlier, None));
                }
                held
            }
            Job::Status { new, .. } => {
                ids.push(new.document);
                self.pending
                    .hold(self.engine.as_ref(), new.document, Some(&new.from))
            }
            Job::Checkpoint { .. } | Job::Snapshot { .. } => Ok(()),
        };
        match held {
            Ok(()) => Some(job),
            Err(e) => {
                answers.push(job.answer_failed(e));
                None
            }
        }
    }
}

/// What a send or a status change made, with its events.
enum Applied {
    Send(SendOutcome, Vec<StoredEvent>),
    Status(StatusOutcome, Vec<StoredEvent>),
}

impl Job {
    /// The answer to this send or status change, from what applying it
    /// made; its events are added to `events`.
    fn answer_applied(self, outcome: Result<Applied>, events: &mut Vec<StoredEvent>) -> Answer {
        match (self, outcome) {
            (Job::Send { reply, .. }, Ok(Applied::Send(outcome, mut new))) => {
                events.append(&mut new);
                answer(reply, Ok(outcome))
            }
            (Job::Status { reply, .. }, Ok(Applied::Status(outcome, mut new))) => {
                events.append(&mut new);
                answer(reply, Ok(outcome))
            }
            (job, Err(e)) => job.answer_failed(e),
            (job, Ok(_)) => {
                job.answer_failed(Error::storage("a job's outcome did not match the job"))
            }
        }
    }

    /// The answer that this job failed with `error`, given with the batch's
    /// other answers.
    fn answer_failed(self, error: Error) -> Answer {
        match self {
            Job::Send { reply, .. } => answer(reply, Err(error)),
            Job::Status { reply, .. } => answer(reply, Err(error)),
            Job::Checkpoint { reply } => answer(reply, Err(error)),
            Job::Snapshot { reply } => answer(reply, Err(error)),
        }
    }
}

impl Setup {
    /// Applies `jobs` (runs of sends and status changes in one transaction
    /// each, see [`Setup::apply_group`]), syncs once, and then answers them
    /// all.
    fn commit(&mut self, jobs: Vec<Job>) {
        let setup = self;
        if let Some(reason) = &setup.failed {
            for job in jobs {
                job.refuse(Error::Unavailable(format!(
                    "storage failed earlier ({reason}); the service must be restarted"
                )));
            }
            return;
        }

        let mut ids = Vec::with_capacity(jobs.len());
        let mut answers: Vec<Answer> = Vec::with_capacity(jobs.len());
        let mut events = Vec::new();
        let mut group = Vec::with_capacity(jobs.len());
        for job in jobs {
            match job {
                Job::Send { .. } | Job::Status { .. } => {
                    if let Some(job) = setup.hold(job, &mut ids, &mut answers) {
                        group.push(job);
                    }
                }
                // A checkpoint or a snapshot sees every write queued before
                // it: the group so far is committed first.
                Job::Checkpoint { reply } => {
                    setup.apply_group(std::mem::take(&mut group), &mut answers, &mut events);
                    answers.push(answer(reply, setup.checkpoint(true)));
                }
                // Answered after this batch's sync, like a send: a failed
                // sync fails the snapshot too, so it never holds a send
                // that was not acknowledged.
                Job::Snapshot { reply } => {
                    setup.apply_group(std::mem::take(&mut group), &mut answers, &mut events);
                    answers.push(answer(reply, setup.engine.snapshot()));
                }
            }
        }
        setup.apply_group(group, &mut answers, &mut events);
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
                setup.failed = Some(reason);
            }
        }
    }
}
