//! `SendBatch`: many sends on one stream. Each request is sent exactly as
//! `Send` would send it, on its own task, so that their checks run at once
//! and many are in the committer's queue together, sharing its fsync. They
//! reach the committer in the order of the stream (a store `Sequence`),
//! so that the earlier of two documents claiming one number takes it, and
//! numbers the server assigns follow the batch. Each result goes back in
//! the order of the requests, as soon as it and those before it are
//! known. A refused document is one result, not the end of the stream.
//!
//! Bounded: at most [`WINDOW`] documents, and at most the largest
//! document's bytes (unless a single document is larger), are in flight;
//! the stream is not read further until some finish. Each message's bytes
//! are given back to the admission budgets once its send is answered.

use std::sync::Arc;

use prost::Message;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use super::{convert, log_accepted, send_input, Admitted};
use crate::directory::Organization;
use crate::exchange::Exchange;
use crate::pb;
use crate::store::Sequence;

/// Documents of one batch in flight at most.
pub const WINDOW: usize = 64;

pub type ResultStream = ReceiverStream<Result<pb::SendBatchResult, Status>>;

/// What the reader hands the forwarder, in request order.
enum Next {
    Result(JoinHandle<pb::SendBatchResult>),
    /// The request stream broke: this ends the answer, after the results
    /// of what was read before.
    Broken(Status),
}

/// Starts reading `requests` and answering them; returns the answer.
pub fn start(
    exchange: Arc<Exchange>,
    caller: Organization,
    admitted: Admitted,
    requests: Streaming<pb::SendRequest>,
    max_document_bytes: usize,
) -> ResultStream {
    let (results, answer) = mpsc::channel(WINDOW);
    let (pending, order) = mpsc::channel(WINDOW);
    tokio::spawn(read(
        exchange,
        caller,
        admitted,
        requests,
        max_document_bytes,
        pending,
    ));
    tokio::spawn(forward(order, results));
    ReceiverStream::new(answer)
}

/// Reads each request and starts its send.
async fn read(
    exchange: Arc<Exchange>,
    caller: Organization,
    admitted: Admitted,
    mut requests: Streaming<pb::SendRequest>,
    max_document_bytes: usize,
    pending: mpsc::Sender<Next>,
) {
    let budget = u32::try_from(max_document_bytes).unwrap_or(u32::MAX).max(1);
    let in_flight = Arc::new(Semaphore::new(budget as usize));
    let sequence = Sequence::new();
    for index in 0u64.. {
        let request = match requests.message().await {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(status) => {
                let _ = pending.send(Next::Broken(status)).await;
                return;
            }
        };
        let bytes = request.encoded_len() + 5;
        // Waits while the documents in flight hold the byte budget.
        let permits = u32::try_from(bytes).unwrap_or(u32::MAX).min(budget);
        let Ok(held) = in_flight.clone().acquire_many_owned(permits).await else {
            return;
        };
        // Taken in the order sent, as the documents are committed.
        let rate = (admitted.take_send)();
        let turn = sequence.turn(index);
        let (exchange, caller, admitted) = (exchange.clone(), caller.clone(), admitted.clone());
        let task = tokio::spawn(async move {
            let outcome = match rate {
                Err(refused) => Err(refused),
                Ok(()) => exchange
                    .send_in_turn(&caller, send_input(request), Some(turn))
                    .await
                    .map(|sent| {
                        log_accepted(&caller, &sent);
                        convert::send_response(exchange.directory(), &sent)
                    })
                    .map_err(Status::from),
            };
            (admitted.give_back)(bytes);
            drop(held);
            pb::SendBatchResult {
                index,
                outcome: Some(match outcome {
                    Ok(sent) => pb::send_batch_result::Outcome::Sent(sent),
                    Err(status) => pb::send_batch_result::Outcome::Error(pb::SendError {
                        code: status.code() as i32,
                        message: status.message().to_owned(),
                    }),
                }),
            }
        });
        if pending.send(Next::Result(task)).await.is_err() {
            return; // the client stopped reading the answer
        }
    }
}

/// Sends each result in request order.
async fn forward(
    mut order: mpsc::Receiver<Next>,
    results: mpsc::Sender<Result<pb::SendBatchResult, Status>>,
) {
    while let Some(next) = order.recv().await {
        let result = match next {
            Next::Result(task) => task.await.map_err(|e| {
                Status::internal(format!("a send of the batch did not complete: {e}"))
            }),
            Next::Broken(status) => Err(status),
        };
        if results.send(result).await.is_err() {
            return;
        }
    }
}
