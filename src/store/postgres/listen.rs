//! Commits of other front ends, heard through PostgreSQL's LISTEN/NOTIFY.
//!
//! Every write transaction ends with `pg_notify(CHANNEL, <its engine's
//! id>)` just before `COMMIT`; PostgreSQL delivers the notification to every
//! listening session when, and only if, the transaction commits. Each
//! engine that is watched keeps one session listening, and calls its
//! [`Wake`] for each notification from another engine.
//!
//! The notification is only a wake-up: the tables are the truth. Whoever is
//! woken reads what is new from them, so a notification lost while the
//! session was down costs nothing as long as the session wakes once more
//! after it reconnects — which it does.

use std::time::Duration;

use tokio_postgres::{AsyncMessage, Config, NoTls};

use crate::store::engine::Wake;

/// The notification channel of commits.
pub(super) const CHANNEL: &str = "lienthong_commits";

/// How long to wait before connecting again after the session ended, at
/// first and at most.
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(10);

/// Listens on `runtime` for as long as it runs; `own` is this engine's id
/// (its own commits are not news to it).
pub(super) fn spawn(runtime: &tokio::runtime::Handle, config: Config, own: String, wake: Wake) {
    runtime.spawn(async move {
        let mut retry = RETRY_FIRST;
        loop {
            match listen(&config, &own, &wake).await {
                Ok(()) => retry = RETRY_FIRST,
                Err(e) => {
                    tracing::warn!(error = %e, "listening for other front ends' commits; connecting again");
                }
            }
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(RETRY_MAX);
        }
    });
}

/// One listening session, until it ends.
async fn listen(config: &Config, own: &str, wake: &Wake) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    // The LISTEN's own messages travel on the connection, which only this
    // task drives: run the statement beside it.
    let statement = format!("LISTEN {CHANNEL}");
    let listening = client.batch_execute(&statement);
    tokio::pin!(listening);
    let mut listened = false;
    loop {
        tokio::select! {
            done = &mut listening, if !listened => {
                done?;
                listened = true;
                // Whatever was committed while no session listened.
                wake();
            }
            message = std::future::poll_fn(|cx| connection.poll_message(cx)) => match message {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if n.payload() != own {
                        wake();
                    }
                }
                Some(Ok(_)) => {} // a notice
                Some(Err(e)) => return Err(e),
                None => return Ok(()), // closed by the server
            },
        }
    }
}
