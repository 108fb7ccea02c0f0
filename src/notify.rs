//! Live notifications: each organisation's mailbox events, replayed from the
//! store and then pushed as they happen, each exactly once and in order.
//!
//! # How replay and live meet without a gap or a duplicate
//!
//! The committer hands every durable batch of events to the publisher task
//! (through [`Listener`]), which for each event first raises its
//! organisation's *durable watermark* and then broadcasts it. A subscriber
//! (1) takes a broadcast receiver, (2) reads the watermark W, (3) replays
//! the stored events after its position up to W, then (4) forwards live
//! events, skipping any at or below the last one sent. Every event above W
//! was broadcast after step 1, so the receiver has it; every event up to W
//! is in the store. Should a live event ever arrive beyond the next
//! sequence, the missing ones are read from the store first.
//!
//! # Several front ends
//!
//! When other front ends commit to the same store (PostgreSQL), their
//! events reach this one's subscribers too: the engine wakes the publisher
//! after their commits (LISTEN/NOTIFY, see `store::postgres`), and the
//! publisher reads from the store every event above each organisation's
//! watermark and publishes it. The store is the truth and the wake-up only
//! a signal, so events are published in order, each once, whichever front
//! end committed them; an event at or below the watermark (already read
//! from the store) is skipped, and one beyond the next sequence is preceded
//! by those missing, read from the store. A subscriber that resumes here
//! with a sequence seen on another front end is served from the store up
//! to the committed counter.
//!
//! # Bounded memory
//!
//! An organisation's broadcast buffer holds at most `buffer` events, and
//! senders never wait for it. A subscriber that falls further behind is
//! disconnected with RESOURCE_EXHAUSTED naming the sequence to resume
//! after, rather than holding memory or slowing anyone down.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::Stream;
use tonic::Status;

use crate::clock;
use crate::directory::OrgCode;
use crate::document;
use crate::error::{Error, Result};
use crate::pb;
use crate::store::{CommitListener, DocId, EventKind, Store, StoredEvent};

#[derive(Debug, Clone)]
pub struct NotifyOptions {
    /// A heartbeat is sent after this long without an event.
    pub heartbeat: Duration,
    /// Events buffered per organisation for subscribers that lag behind.
    pub buffer: usize,
}

impl Default for NotifyOptions {
    fn default() -> Self {
        NotifyOptions {
            heartbeat: Duration::from_secs(crate::defaults::HEARTBEAT_SECONDS),
            buffer: crate::defaults::EVENT_BUFFER,
        }
    }
}

/// Events read from the store per replay step.
const REPLAY_PAGE: usize = 256;
/// Stream items queued towards the gRPC connection.
const STREAM_QUEUE: usize = 64;

/// The committer's side: hands durable events to the publisher without
/// ever blocking the committer.
pub struct Listener(mpsc::UnboundedSender<Vec<StoredEvent>>);

impl CommitListener for Listener {
    fn committed(&self, events: Vec<StoredEvent>) {
        // Unbounded, but drained as fast as commits arrive: the publisher
        // does a little work per event and never waits for subscribers.
        // A send fails only once the publisher has stopped (shutdown);
        // the events are in the store, and subscribers replay them.
        let _ = self.0.send(events);
    }
}

pub fn listener() -> (Listener, mpsc::UnboundedReceiver<Vec<StoredEvent>>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Listener(tx), rx)
}

type Item = Arc<pb::MailboxEvent>;

pub struct Notifier {
    store: Arc<Store>,
    options: NotifyOptions,
    /// Other front ends commit to the store too.
    shared: bool,
    channels: Mutex<HashMap<OrgCode, broadcast::Sender<Item>>>,
    watermarks: Mutex<HashMap<OrgCode, u64>>,
    closing: watch::Sender<bool>,
    /// Tasks to wait for at shutdown: each holds the store open.
    publisher: Mutex<Option<tokio::task::JoinHandle<()>>>,
    subscriptions: Mutex<tokio::task::JoinSet<()>>,
}

/// Where a subscription starts.
#[derive(Debug, Clone, Copy)]
pub enum Start {
    After(u64),
    Now,
}

pub type EventStream = Pin<Box<dyn Stream<Item = Result<pb::SubscribeResponse, Status>> + Send>>;

impl Notifier {
    /// Starts the publisher task. Watermarks come from the store, in which
    /// everything is durable at start.
    pub fn start(
        store: Arc<Store>,
        mut committed: mpsc::UnboundedReceiver<Vec<StoredEvent>>,
        options: NotifyOptions,
    ) -> Result<Arc<Notifier>> {
        let watermarks = store.event_counters()?.into_iter().collect();
        let (closing, _) = watch::channel(false);
        let others = Arc::new(tokio::sync::Notify::new());
        let shared = {
            let others = others.clone();
            store.watch_others(Arc::new(move || others.notify_one()))?
        };
        let notifier = Arc::new(Notifier {
            store,
            options,
            shared,
            channels: Mutex::new(HashMap::new()),
            watermarks: Mutex::new(watermarks),
            closing,
            publisher: Mutex::new(None),
            subscriptions: Mutex::new(tokio::task::JoinSet::new()),
        });
        let publisher = notifier.clone();
        let task = tokio::spawn(async move {
            // Ends when the store's committer stops and drops its Listener.
            loop {
                tokio::select! {
                    batch = committed.recv() => match batch {
                        Some(batch) => publisher.publish(batch),
                        None => break,
                    },
                    () = others.notified(), if shared => publisher.catch_up(),
                }
            }
        });
        *lock(&notifier.publisher) = Some(task);
        Ok(notifier)
    }

    /// How many event streams are open now (for the metrics).
    pub fn open_streams(&self) -> usize {
        let mut tasks = lock(&self.subscriptions);
        while tasks.try_join_next().is_some() {} // reap the finished
        tasks.len()
    }

    /// Waits for every subscription task to end (after [`Notifier::close`]).
    pub async fn join_subscriptions(&self) {
        let mut tasks = std::mem::take(&mut *lock(&self.subscriptions));
        while tasks.join_next().await.is_some() {}
    }

    /// Waits for the publisher to end (after the store is closed).
    pub async fn join_publisher(&self) {
        let task = lock(&self.publisher).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// Publishes events this front end committed.
    fn publish(&self, batch: Vec<StoredEvent>) {
        let mut headers: HashMap<Vec<u8>, Option<pb::Document>> = HashMap::new();
        for event in batch {
            let Some(org) = OrgCode::parse(&event.org) else {
                continue;
            };
            if self.shared {
                let watermark = self.watermark(&org);
                if event.seq <= watermark {
                    continue; // read from the store already
                }
                if event.seq > watermark + 1 {
                    // Another front end's, not heard of yet: first those.
                    self.publish_stored(&org, event.seq - 1, &mut headers);
                }
            }
            self.publish_one(org, &event, &mut headers);
        }
    }

    /// Publishes the events other front ends committed (woken by the
    /// engine): every organisation's events above its watermark.
    fn catch_up(&self) {
        let counters = match self.store.event_counters() {
            Ok(counters) => counters,
            Err(e) => {
                // The next wake-up, or the next local commit, tries again.
                tracing::warn!(error = %e, "reading the event counters of other front ends' commits");
                return;
            }
        };
        let mut headers = HashMap::new();
        for (org, committed) in counters {
            if committed > self.watermark(&org) {
                self.publish_stored(&org, committed, &mut headers);
            }
        }
    }

    /// Publishes `org`'s stored events above its watermark, up to `up_to`.
    fn publish_stored(
        &self,
        org: &OrgCode,
        up_to: u64,
        headers: &mut HashMap<Vec<u8>, Option<pb::Document>>,
    ) {
        loop {
            let after = self.watermark(org);
            if after >= up_to {
                return;
            }
            let events = match self.store.events(org, after, up_to, REPLAY_PAGE) {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(error = %e, %org, "reading events committed by other front ends");
                    return;
                }
            };
            if events.is_empty() {
                // Trimmed (older than the events kept): subscribers that
                // need them resynchronise, as on one front end.
                lock(&self.watermarks).insert(*org, up_to);
                return;
            }
            for event in &events {
                self.publish_one(*org, event, headers);
            }
        }
    }

    fn publish_one(
        &self,
        org: OrgCode,
        event: &StoredEvent,
        headers: &mut HashMap<Vec<u8>, Option<pb::Document>>,
    ) {
        let header = headers
            .entry(event.document_id.clone())
            .or_insert_with(|| self.header(&event.document_id));
        let item = Arc::new(to_pb(event, header.as_ref()));
        // Watermark first, then broadcast: see the module documentation.
        lock(&self.watermarks).insert(org, event.seq);
        let sender = lock(&self.channels).get(&org).cloned();
        if let Some(sender) = sender {
            let _ = sender.send(item); // no receiver: nobody is listening
        }
    }

    /// The header of an event's document, to show its subject and urgency.
    /// Only a courtesy: an event goes out without them rather than not at
    /// all, so a failure here is logged, not passed on.
    fn header(&self, document_id: &[u8]) -> Option<pb::Document> {
        let Ok(id) = document_id.try_into().map(DocId) else {
            tracing::warn!("an event names a malformed document id");
            return None;
        };
        let stored = match self.store.document(&id) {
            Ok(stored) => stored?,
            Err(e) => {
                tracing::warn!(error = %e, %id, "reading the document of an event");
                return None;
            }
        };
        match document::header(stored.paper, &stored.document_bytes) {
            Ok(header) => Some(header),
            Err(e) => {
                tracing::warn!(error = %e, %id, "decoding the document of an event");
                None
            }
        }
    }

    fn watermark(&self, org: &OrgCode) -> u64 {
        lock(&self.watermarks).get(org).copied().unwrap_or(0)
    }

    fn receiver(&self, org: &OrgCode) -> Result<broadcast::Receiver<Item>> {
        let mut channels = lock(&self.channels);
        let buffer = self.options.buffer.max(1);
        Ok(channels
            .entry(*org)
            .or_insert_with(|| broadcast::channel(buffer).0)
            .subscribe())
    }

    /// Ends every stream with UNAVAILABLE and refuses new ones.
    pub fn close(&self) {
        let _ = self.closing.send(true);
    }

    /// Opens `org`'s event stream.
    pub fn subscribe(self: &Arc<Self>, org: OrgCode, start: Start) -> Result<EventStream> {
        if *self.closing.borrow() {
            return Err(Error::Unavailable(
                "the server is shutting down; subscribe again to another or later".into(),
            ));
        }
        // Order matters: receiver, then watermark, then the stored range.
        let live = self.receiver(&org)?;
        let mut latest = self.watermark(&org);
        if self.shared {
            // Events another front end committed and this one has not
            // published yet: in the store, and so replayed; those after
            // will be published, and so received.
            latest = latest.max(self.store.committed_event_counter(&org)?);
        }
        let after = match start {
            Start::Now => latest,
            Start::After(after) => {
                if after > latest {
                    return Err(Error::OutOfRange {
                        field: "after_seq".into(),
                        reason: format!(
                            "{after} is ahead of the latest event, {latest}; resynchronise from ListInbox and subscribe with after_seq={latest}"
                        ),
                    });
                }
                let oldest = self.store.oldest_event(&org)?.unwrap_or(latest + 1);
                if after + 1 < oldest {
                    return Err(Error::OutOfRange {
                        field: "after_seq".into(),
                        reason: format!(
                            "events after {after} are no longer all kept: the oldest kept is {oldest}; resynchronise from ListInbox and subscribe with after_seq={latest}"
                        ),
                    });
                }
                after
            }
        };
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        let task = Subscription {
            notifier: self.clone(),
            org,
            last: after,
            tx,
            closing: self.closing.subscribe(),
        };
        let mut tasks = lock(&self.subscriptions);
        while tasks.try_join_next().is_some() {} // reap the finished
        tasks.spawn(task.run(live, latest));
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }
}

/// Takes a lock even if a thread panicked while holding it. Every use here
/// is a single insert, lookup or take, which a panic cannot leave half
/// done; refusing the lock instead would silently stop raising watermarks
/// and so stop notifications.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The API's kind of a stored event kind.
fn kind_to_pb(kind: i32) -> pb::EventKind {
    match EventKind::try_from(kind) {
        Ok(EventKind::DocumentArrived) => pb::EventKind::DocumentArrived,
        Ok(EventKind::StatusChanged) => pb::EventKind::StatusChanged,
        Ok(EventKind::DocumentRevoked) => pb::EventKind::DocumentRevoked,
        Ok(EventKind::DocumentUpdated) => pb::EventKind::DocumentUpdated,
        Ok(EventKind::DocumentReplaced) => pb::EventKind::DocumentReplaced,
        Ok(EventKind::Unspecified) | Err(_) => pb::EventKind::Unspecified,
    }
}

fn to_pb(event: &StoredEvent, header: Option<&pb::Document>) -> pb::MailboxEvent {
    pb::MailboxEvent {
        seq: event.seq,
        kind: kind_to_pb(event.kind) as i32,
        document_id: hex::encode(&event.document_id),
        at_ms: event.at_ms,
        sender: event.sender.clone(),
        arrival_year: event.arrival_year,
        arrival_number: event.arrival_number,
        subject: header.map(|h| h.subject.clone()).unwrap_or_default(),
        urgency: header.map_or(0, |h| h.urgency),
        status: event.status as i32,
        by: event.by.clone(),
        superseded_by: if event.superseded_by.is_empty() {
            String::new()
        } else {
            hex::encode(&event.superseded_by)
        },
    }
}

/// One open stream.
struct Subscription {
    notifier: Arc<Notifier>,
    org: OrgCode,
    /// The last sequence sent.
    last: u64,
    tx: mpsc::Sender<Result<pb::SubscribeResponse, Status>>,
    closing: watch::Receiver<bool>,
}

/// What woke a subscription up.
enum Wake {
    Live(Result<Item, broadcast::error::RecvError>),
    Idle,
    Closing,
}

/// Why a stream stopped.
enum Stop {
    /// The client went away.
    Gone,
    /// End it with this status.
    Fail(Status),
}

impl Subscription {
    async fn run(mut self, mut live: broadcast::Receiver<Item>, replay_to: u64) {
        let result = self.serve(&mut live, replay_to).await;
        if let Err(Stop::Fail(status)) = result {
            let _ = self.tx.send(Err(status)).await;
        }
    }

    fn resume_hint(&self) -> String {
        format!("resume with after_seq={}", self.last)
    }

    fn shutting_down(&self) -> Stop {
        Stop::Fail(Status::unavailable(format!(
            "the server is shutting down; {}",
            self.resume_hint()
        )))
    }

    async fn serve(
        &mut self,
        live: &mut broadcast::Receiver<Item>,
        replay_to: u64,
    ) -> Result<(), Stop> {
        self.replay(replay_to).await?;
        let heartbeat = self.notifier.options.heartbeat;
        loop {
            let wake = tokio::select! {
                received = live.recv() => Wake::Live(received),
                _ = tokio::time::sleep(heartbeat) => Wake::Idle,
                _ = self.closing.wait_for(|c| *c) => Wake::Closing,
            };
            let item = match wake {
                Wake::Live(item) => item,
                Wake::Idle => {
                    let beat = pb::Heartbeat {
                        latest_seq: self.notifier.watermark(&self.org),
                        at_ms: clock::now_ms(),
                    };
                    self.send(pb::subscribe_response::Item::Heartbeat(beat))
                        .await?;
                    continue;
                }
                Wake::Closing => return Err(self.shutting_down()),
            };
            match item {
                Ok(event) => {
                    if event.seq <= self.last {
                        continue; // already sent during the replay
                    }
                    if event.seq > self.last + 1 {
                        self.replay(event.seq - 1).await?; // never expected
                    }
                    self.send(pb::subscribe_response::Item::Event((*event).clone()))
                        .await?;
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    return Err(Stop::Fail(Status::resource_exhausted(format!(
                        "subscriber too slow: {missed} events went past the buffer of {} while it was not reading; {}",
                        self.notifier.options.buffer,
                        self.resume_hint()
                    ))));
                }
                Err(broadcast::error::RecvError::Closed) => {
                    return Err(Stop::Fail(Status::unavailable(format!(
                        "notifications stopped; {}",
                        self.resume_hint()
                    ))));
                }
            }
        }
    }

    /// Sends the stored events after `last` up to `up_to`.
    async fn replay(&mut self, up_to: u64) -> Result<(), Stop> {
        while self.last < up_to {
            let events = self
                .notifier
                .store
                .events(&self.org, self.last, up_to, REPLAY_PAGE)
                .map_err(|e| Stop::Fail(e.into()))?;
            if events.first().map(|e| e.seq) != Some(self.last + 1) {
                // Trimmed while we were replaying: the client must resync.
                return Err(Stop::Fail(Status::out_of_range(format!(
                    "after_seq: event {} is no longer kept; resynchronise from ListInbox",
                    self.last + 1
                ))));
            }
            let mut headers: HashMap<Vec<u8>, Option<pb::Document>> = HashMap::new();
            for event in events {
                let header = headers
                    .entry(event.document_id.clone())
                    .or_insert_with(|| self.notifier.header(&event.document_id));
                let item = to_pb(&event, header.as_ref());
                self.send(pb::subscribe_response::Item::Event(item)).await?;
            }
        }
        Ok(())
    }

    /// Queues an item for the client; waits while the queue is full, unless
    /// the server is closing.
    async fn send(&mut self, item: pb::subscribe_response::Item) -> Result<(), Stop> {
        let seq = match &item {
            pb::subscribe_response::Item::Event(e) => Some(e.seq),
            pb::subscribe_response::Item::Heartbeat(_) => None,
        };
        let message = Ok(pb::SubscribeResponse { item: Some(item) });
        let sent = tokio::select! {
            sent = self.tx.send(message) => Some(sent.is_ok()),
            _ = self.closing.wait_for(|c| *c) => None,
        };
        match sent {
            Some(true) => {}
            Some(false) => return Err(Stop::Gone),
            None => return Err(self.shutting_down()),
        }
        if let Some(seq) = seq {
            self.last = seq;
        }
        Ok(())
    }
}
