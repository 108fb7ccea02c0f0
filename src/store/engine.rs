//! The interface a storage engine implements: named keyspaces of ordered
//! byte keys, atomic transactions over them, and a way to make what was
//! committed durable.
//!
//! Everything the service stores — and every rule of a commit — is written
//! against these few calls (see `commit` and the key layout in the parent
//! module), so an engine knows nothing of documents, mailboxes or archives.
//! sled implements it in `store::sled`; `store::postgres` maps each
//! keyspace to a table of `(key bytea primary key, value bytea)` and a
//! transaction to an SQL transaction.

use crate::error::Result;

/// The keyspaces of the store. Keys sort as unsigned bytes within one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Space {
    Meta,
    Documents,
    SmallAttachments,
    Inbox,
    Outbox,
    Events,
    ArchiveLeaves,
    ArchiveNodes,
    ArchiveIndex,
    Checkpoints,
    Counters,
    Idempotency,
    Numbering,
    Statuses,
    Deadlines,
    Unread,
    Report,
    AttachmentFiles,
}

impl Space {
    /// Every keyspace, in a fixed order (engines may index by position).
    pub const ALL: [Space; 18] = [
        Space::Meta,
        Space::Documents,
        Space::SmallAttachments,
        Space::Inbox,
        Space::Outbox,
        Space::Events,
        Space::ArchiveLeaves,
        Space::ArchiveNodes,
        Space::ArchiveIndex,
        Space::Checkpoints,
        Space::Counters,
        Space::Idempotency,
        Space::Numbering,
        Space::Statuses,
        Space::Deadlines,
        Space::Unread,
        Space::Report,
        Space::AttachmentFiles,
    ];

    /// The keyspace's name on disk (a sled tree, a table).
    pub fn name(self) -> &'static str {
        match self {
            Space::Meta => "meta",
            Space::Documents => "documents",
            Space::SmallAttachments => "small_attachments",
            Space::Inbox => "inbox",
            Space::Outbox => "outbox",
            Space::Events => "events",
            Space::ArchiveLeaves => "archive_leaves",
            Space::ArchiveNodes => "archive_nodes",
            Space::ArchiveIndex => "archive_index",
            Space::Checkpoints => "checkpoints",
            Space::Counters => "counters",
            Space::Idempotency => "idempotency",
            Space::Numbering => "numbering",
            Space::Statuses => "statuses",
            Space::Deadlines => "deadlines",
            Space::Unread => "unread",
            Space::Report => "report",
            Space::AttachmentFiles => "attachment_files",
        }
    }

    /// The position of this keyspace in [`Space::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The keyspace of this name on disk, if this build has one.
    pub fn from_name(name: &str) -> Option<Space> {
        Space::ALL.into_iter().find(|space| space.name() == name)
    }
}

/// Which way a scan walks its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Ascending,
    Descending,
}

/// One key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// Every entry of every keyspace as committed at one instant, while writes
/// go on: keyspaces in [`Space::ALL`] order, each key once. Within a
/// keyspace the order is not guaranteed (an engine may give keys written
/// since the instant after the others). Dropping it ends the snapshot.
pub type Snapshot = Box<dyn Iterator<Item = Result<(Space, Entry)>> + Send>;

/// Reads and writes inside one transaction. A read sees the transaction's
/// own earlier writes.
pub trait Txn {
    fn get(&mut self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>>;
    fn put(&mut self, space: Space, key: &[u8], value: &[u8]) -> Result<()>;
    fn delete(&mut self, space: Space, key: &[u8]) -> Result<()>;
}

/// A storage engine.
///
/// Writers are serialised by the caller (one commit leader at a time), so an
/// engine need not resolve write conflicts between transactions; readers
/// run concurrently with it and see committed transactions only. (An
/// engine that several processes share must serialise their writers
/// itself: the PostgreSQL engine does, with an advisory lock.)
pub trait Engine: Send + Sync {
    /// Runs `work` as one transaction: if it returns `Ok`, all its writes
    /// are committed together; if it returns `Err`, none is. Committed is
    /// not yet durable: see [`Engine::sync`]. `work` may be run again if
    /// the engine must retry the transaction, so it must not keep state
    /// across runs.
    fn transact(&self, work: &mut dyn FnMut(&mut dyn Txn) -> Result<()>) -> Result<()>;

    /// Returns once every transaction committed before the call is on
    /// stable storage (fsync, not only the page cache).
    fn sync(&self) -> Result<()>;

    /// The committed value of `key`.
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Up to `limit` committed entries with `start <= key < end` (no upper
    /// bound if `end` is `None`), walked in `order`.
    fn scan(
        &self,
        space: Space,
        start: &[u8],
        end: Option<&[u8]>,
        order: Order,
        limit: usize,
    ) -> Result<Vec<Entry>>;

    /// A consistent view of every keyspace as committed now: no
    /// transaction is in it by halves, and every transaction committed
    /// before the call is in it. It may be read slowly while transactions
    /// go on (an online backup). sled keeps before-images of what is written
    /// meanwhile (`store::sled::snapshot`); PostgreSQL reads in one
    /// `REPEATABLE READ` transaction.
    fn snapshot(&self) -> Result<Snapshot>;

    /// Whether other processes commit to the same data (several front
    /// ends on one database). If they may, `wake` is called soon after each
    /// of their commits — possibly once for several, possibly when nothing
    /// is new — and `true` is returned: what they committed is read from
    /// the keyspaces, which are the truth; the call is only a signal to
    /// look. An embedded engine, which only this process writes, returns
    /// `false` and never calls it.
    fn watch_others(&self, wake: Wake) -> Result<bool> {
        let _ = wake;
        Ok(false)
    }

    /// Whether other processes may write the same data (see
    /// [`Engine::watch_others`]). Then what this process holds in memory
    /// about shared files is not the whole story (`store::files`).
    fn shared(&self) -> bool {
        false
    }

    /// Runs `work` while no other process opening the same data runs its
    /// own (the one-time upgrades and index builds at open, which check a
    /// mark and then build). An embedded engine's data is already held by
    /// one process only.
    fn exclusive(&self, work: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        work()
    }
}

/// Called when other processes may have committed (see
/// [`Engine::watch_others`]). Must return quickly: it only signals.
pub type Wake = std::sync::Arc<dyn Fn() + Send + Sync>;

/// Runs `work` in one transaction of `engine` and returns what it returned.
pub fn transact<T>(
    engine: &dyn Engine,
    mut work: impl FnMut(&mut dyn Txn) -> Result<T>,
) -> Result<T> {
    let mut out = None;
    engine.transact(&mut |txn| {
        out = Some(work(txn)?);
        Ok(())
    })?;
    out.ok_or_else(|| crate::error::Error::storage("a transaction ended without its result"))
}

/// The last entry of a keyspace (greatest key), if any.
pub fn last(engine: &dyn Engine, space: Space) -> Result<Option<Entry>> {
    Ok(engine
        .scan(space, &[], None, Order::Descending, 1)?
        .into_iter()
        .next())
}

/// The smallest key after `key`: where a scan resumes after it.
pub fn after_key(key: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next
}

/// Every committed entry of one keyspace in key order, read a page (one
/// [`Engine::scan`]) at a time. Unlike a [`Snapshot`], the pages are not
/// read at one instant: for an engine no one else writes to meanwhile.
pub struct Walk<'a> {
    engine: &'a dyn Engine,
    space: Space,
    page: usize,
    /// Where the next page starts; `None` once the last one was read.
    from: Option<Vec<u8>>,
    ready: std::vec::IntoIter<Entry>,
}

impl<'a> Walk<'a> {
    pub fn new(engine: &'a dyn Engine, space: Space, page: usize) -> Walk<'a> {
        Walk {
            engine,
            space,
            page: page.max(1),
            from: Some(Vec::new()),
            ready: Vec::new().into_iter(),
        }
    }
}

impl Iterator for Walk<'_> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(entry) = self.ready.next() {
            return Some(Ok(entry));
        }
        // A failed read ends the walk: `from` stays taken.
        let from = self.from.take()?;
        let page = match self
            .engine
            .scan(self.space, &from, None, Order::Ascending, self.page)
        {
            Ok(page) => page,
            Err(e) => return Some(Err(e)),
        };
        if page.len() == self.page {
            self.from = page.last().map(|(key, _)| after_key(key));
        }
        self.ready = page.into_iter();
        self.ready.next().map(Ok)
    }
}
