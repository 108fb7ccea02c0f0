//! The gRPC surface. Each handler does four things and nothing else:
//! authenticate the caller from its certificate, unpack the request, call the
//! domain, and map the result (errors through [`crate::error::Error`]).
//! The streamed calls of large attachments are in [`streams`], the batch of
//! sends in [`batch`].

mod batch;
pub mod codec;
mod convert;
pub mod framing;
mod operations;
mod register;
mod streams;

use std::sync::Arc;

use tonic::{Request, Response, Status, Streaming};

use crate::archive::Archive;
use crate::deadlines::Deadlines;
use crate::directory::Organization;
use crate::error::Error;
use crate::exchange::{Content, Exchange, SendInput};
use crate::notify::{EventStream, Notifier, Start};
use crate::paper::PaperInput;
use crate::pb;
use crate::pki;
use crate::register::Registers;
use crate::report::{Period, Reports};
use crate::tracking::{StatusInput, Tracking};
use crate::transfer::Transfers;

pub use operations::{OperationsApi, OperationsServer};
pub use pb::exchange_server::ExchangeServer;

/// What the admission layer (`crate::admission`) lends a handler, in the
/// request's extensions: the handler of a client stream gives back each
/// message's bytes once it is done with them, and a batch takes one send
/// from the caller's rate per document.
#[derive(Clone)]
pub struct Admitted {
    pub give_back: Arc<dyn Fn(usize) + Send + Sync>,
    /// RESOURCE_EXHAUSTED, with `retry-after`, for a send over the rate.
    pub take_send: Arc<dyn Fn() -> Result<(), Status> + Send + Sync>,
}

impl Admitted {
    /// A request that came in without the layer (a test's in-process
    /// service): nothing to give back, no rate.
    fn of<T>(request: &Request<T>) -> Admitted {
        request
            .extensions()
            .get::<Admitted>()
            .cloned()
            .unwrap_or_else(|| Admitted {
                give_back: Arc::new(|_| {}),
                take_send: Arc::new(|| Ok(())),
            })
    }
}

/// The log line of each accepted document.
fn log_accepted(caller: &Organization, sent: &crate::exchange::Sent) {
    tracing::info!(
        id = %sent.view.id,
        sender = %caller.alias,
        recipients = sent.view.stored.deliveries.len(),
        duplicate = sent.duplicate,
        "document accepted"
    );
}

/// An attachment's or a scan's content as the domain takes it.
fn content(a: pb::AttachmentContent) -> Content {
    if a.uploaded {
        Content::Uploaded
    } else {
        Content::Inline(a.content)
    }
}

/// A send request as the domain takes it.
fn send_input(request: pb::SendRequest) -> SendInput {
    SendInput {
        document_bytes: request.document,
        attachments: request.attachments.into_iter().map(content).collect(),
        idempotency_key: request.idempotency_key,
        signature: request.signature,
    }
}

pub struct ExchangeApi {
    exchange: Arc<Exchange>,
    transfers: Arc<Transfers>,
    tracking: Arc<Tracking>,
    archive: Arc<Archive>,
    notifier: Arc<Notifier>,
    deadlines: Arc<Deadlines>,
    registers: Registers,
    reports: Arc<Reports>,
}

impl ExchangeApi {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        exchange: Arc<Exchange>,
        transfers: Arc<Transfers>,
        tracking: Arc<Tracking>,
        archive: Arc<Archive>,
        notifier: Arc<Notifier>,
        deadlines: Arc<Deadlines>,
        reports: Arc<Reports>,
    ) -> ExchangeApi {
        ExchangeApi {
            registers: Registers::new(exchange.clone()),
            exchange,
            transfers,
            tracking,
            archive,
            notifier,
            deadlines,
            reports,
        }
    }

    /// A status change (or, with `revocation`, a revocation) as `caller`.
    async fn signed_change(
        &self,
        caller: &Organization,
        status_bytes: Vec<u8>,
        signature: Option<pb::DocumentSignature>,
        revocation: bool,
    ) -> Result<Response<pb::StatusChange>, Status> {
        let input = StatusInput {
            status_bytes,
            signature,
        };
        let entry = if revocation {
            self.tracking.revoke(caller, input).await?
        } else {
            self.tracking.change_status(caller, input).await?
        };
        let change = convert::status_change(self.exchange.directory(), &entry);
        on_document(&change.document_id);
        Ok(Response::new(change))
    }

    /// The caller's organisation, from the client certificate that TLS
    /// verified against the client CA. Nothing in the request can change it.
    fn caller<T>(&self, request: &Request<T>) -> Result<Organization, Error> {
        let certs = request.peer_certs();
        let leaf = certs.as_ref().and_then(|c| c.first()).map(|c| c.as_ref());
        pki::caller(self.exchange.directory(), leaf)
    }
}

/// Names the document a request is about in its log span (opened by
/// [`crate::admission::layer`]); an id that is no well-formed document id
/// is left out, since it is only the caller's text.
fn on_document(id: &str) {
    if crate::store::DocId::parse(id).is_some() {
        tracing::Span::current().record("document_id", id);
    }
}

/// The caller's certificate (DER), which TLS verified against the client
/// CA: the only thing that says who the caller is.
fn client_certificate<T>(request: &Request<T>) -> Result<Vec<u8>, Error> {
    request
        .peer_certs()
        .and_then(|certs| certs.first().map(|c| c.to_vec()))
        .ok_or_else(|| Error::Unauthenticated("a client certificate is required".into()))
}

#[tonic::async_trait]
impl pb::exchange_server::Exchange for ExchangeApi {
    async fn send(
        &self,
        request: Request<pb::SendRequest>,
    ) -> Result<Response<pb::SendResponse>, Status> {
        let caller = self.caller(&request)?;
        let input = send_input(request.into_inner());
        let sent = self.exchange.send(&caller, input).await?;
        on_document(&sent.view.id.to_string());
        log_accepted(&caller, &sent);
        Ok(Response::new(convert::send_response(
            self.exchange.directory(),
            &sent,
        )))
    }

    async fn record_paper(
        &self,
        request: Request<pb::RecordPaperRequest>,
    ) -> Result<Response<pb::SendResponse>, Status> {
        let caller = self.caller(&request)?;
        let req = request.into_inner();
        let input = PaperInput {
            record: req.record,
            signature: req.signature,
            scan: req.scan.into_iter().map(content).collect(),
        };
        let recorded = self.exchange.record_paper(&caller, input).await?;
        on_document(&recorded.view.id.to_string());
        tracing::info!("paper document recorded");
        Ok(Response::new(convert::send_response(
            self.exchange.directory(),
            &recorded,
        )))
    }

    async fn list_inbox(
        &self,
        request: Request<pb::ListMailboxRequest>,
    ) -> Result<Response<pb::ListInboxResponse>, Status> {
        let caller = self.caller(&request)?;
        let req = request.into_inner();
        let listing = self
            .exchange
            .inbox(&caller, req.page_size, &req.page_token)?;
        Ok(Response::new(convert::inbox_response(
            self.exchange.directory(),
            &caller,
            listing,
        )))
    }

    async fn list_outbox(
        &self,
        request: Request<pb::ListMailboxRequest>,
    ) -> Result<Response<pb::ListOutboxResponse>, Status> {
        let caller = self.caller(&request)?;
        let req = request.into_inner();
        let listing = self
            .exchange
            .outbox(&caller, req.page_size, &req.page_token)?;
        let directory = self.exchange.directory();
        Ok(Response::new(pb::ListOutboxResponse {
            entries: listing
                .items
                .iter()
                .map(|v| convert::outbox_entry(directory, v))
                .collect(),
            next_page_token: listing.next_page_token,
        }))
    }

    async fn get_document(
        &self,
        request: Request<pb::GetDocumentRequest>,
    ) -> Result<Response<pb::GetDocumentResponse>, Status> {
        let caller = self.caller(&request)?;
        let req = request.into_inner();
        on_document(&req.id);
        let exchange = self.exchange.clone();
        let who = caller.clone();
        // Attachments can be tens of megabytes read from disk: off the
        // async workers.
        let fetched =
            tokio::task::spawn_blocking(move || exchange.get(&who, &req.id, req.include_content))
                .await
                .map_err(|e| Status::internal(format!("the read did not complete: {e}")))??;
        Ok(Response::new(convert::get_response(
            &self.exchange,
            &caller,
            fetched,
        )))
    }

    async fn get_directory(
        &self,
        request: Request<pb::GetDirectoryRequest>,
    ) -> Result<Response<pb::GetDirectoryResponse>, Status> {
        let caller = self.caller(&request)?;
        let directory = self.exchange.directory();
        Ok(Response::new(pb::GetDirectoryResponse {
            caller: Some(convert::organization(&caller)),
            organizations: directory
                .organizations()
                .iter()
                .map(convert::organization)
                .collect(),
            groups: directory.groups().iter().map(convert::group).collect(),
        }))
    }

    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let caller = self.caller(&request)?;
        let req = request.into_inner();
        let start = if req.from_now {
            Start::Now
        } else {
            Start::After(req.after_seq)
        };
        Ok(Response::new(self.notifier.subscribe(caller.code, start)?))
    }

    async fn get_checkpoint(
        &self,
        request: Request<pb::GetCheckpointRequest>,
    ) -> Result<Response<pb::SignedCheckpoint>, Status> {
        self.caller(&request)?;
        let req = request.into_inner();
        Ok(Response::new(
            self.archive.checkpoint(req.tree_size, req.fresh).await?,
        ))
    }

    async fn get_inclusion_proof(
        &self,
        request: Request<pb::GetInclusionProofRequest>,
    ) -> Result<Response<pb::InclusionProof>, Status> {
        let caller = self.caller(&request)?;
        let req = request.into_inner();
        on_document(&req.document_id);
        Ok(Response::new(
            self.archive
                .inclusion_proof(&caller, &req.document_id, req.tree_size, req.leaf_index)
                .await?,
        ))
    }

    async fn get_consistency_proof(
        &self,
        request: Request<pb::GetConsistencyProofRequest>,
    ) -> Result<Response<pb::ConsistencyProof>, Status> {
        self.caller(&request)?;
        let req = request.into_inner();
        Ok(Response::new(
            self.archive
                .consistency_proof(req.first_size, req.second_size)?,
        ))
    }

    async fn change_status(
        &self,
        request: Request<pb::ChangeStatusRequest>,
    ) -> Result<Response<pb::StatusChange>, Status> {
        let caller = self.caller(&request)?;
        let req = request.into_inner();
        self.signed_change(&caller, req.status, req.signature, false)
            .await
    }

    async fn revoke(
        &self,
        request: Request<pb::RevokeRequest>,
    ) -> Result<Response<pb::StatusChange>, Status> {
        let caller = self.caller(&request)?;
        let req = request.into_inner();
        self.signed_change(&caller, req.status, req.signature, true)
            .await
    }

    async fn get_history(
        &self,
        request: Request<pb::GetHistoryRequest>,
    ) -> Result<Response<pb::GetHistoryResponse>, Status> {
        let caller = self.caller(&request)?;
        let req = request.into_inner();
        on_document(&req.document_id);
        let directory = self.exchange.directory();
        let changes = self
            .tracking
            .history(&caller, &req.document_id)?
            .iter()
            .map(|entry| convert::status_change(directory, entry))
            .collect();
        Ok(Response::new(pb::GetHistoryResponse { changes }))
    }

    async fn list_deadlines(
        &self,
        request: Request<pb::ListDeadlinesRequest>,
    ) -> Result<Response<pb::ListDeadlinesResponse>, Status> {
        let caller = self.caller(&request)?;
        let req = request.into_inner();
        let deadlines = self.deadlines.clone();
        // Walks the deadlines index: off the async workers.
        let list = tokio::task::spawn_blocking(move || {
            deadlines.page(
                &caller,
                req.within_days,
                req.district,
                req.page_size,
                &req.page_token,
            )
        })
        .await
        .map_err(|e| Status::internal(format!("the listing did not complete: {e}")))??;
        let directory = self.exchange.directory();
        Ok(Response::new(pb::ListDeadlinesResponse {
            entries: list
                .entries
                .iter()
                .map(|d| convert::deadline(directory, d))
                .collect(),
            today: crate::clock::format_date(list.today),
            next_page_token: list.next_page_token.unwrap_or_default(),
        }))
    }

    async fn get_report(
        &self,
        request: Request<pb::GetReportRequest>,
    ) -> Result<Response<pb::GetReportResponse>, Status> {
        let caller = self.caller(&request)?;
        let req = request.into_inner();
        let today = self.reports.today();
        let period = Period::parse(&req.period, &req.from, &req.to, today)?;
        let report = self.reports.report(&caller, period)?;
        Ok(Response::new(convert::report(&report)))
    }

    async fn explain_report(
        &self,
        request: Request<pb::ExplainReportRequest>,
    ) -> Result<Response<pb::ExplainReportResponse>, Status> {
        let caller = self.caller(&request)?;
        let req = request.into_inner();
        let today = self.reports.today();
        let period = Period::parse(&req.period, &req.from, &req.to, today)?;
        let window = convert::explain_window(req.offset, req.limit)?;
        let reports = self.reports.clone();
        // Reads documents: off the async workers.
        let explanation = tokio::task::spawn_blocking(move || {
            reports.explain(&caller, &req.organization, period, window)
        })
        .await
        .map_err(|e| Status::internal(format!("the explanation did not complete: {e}")))??;
        Ok(Response::new(convert::explanation(
            self.exchange.directory(),
            &explanation,
        )))
    }

    async fn get_register(
        &self,
        request: Request<pb::GetRegisterRequest>,
    ) -> Result<Response<pb::GetRegisterResponse>, Status> {
        let caller = self.caller(&request)?;
        let req = request.into_inner();
        let page = self.registers.register(
            &caller,
            req.year,
            req.outgoing,
            req.page_size,
            &req.page_token,
        )?;
        Ok(Response::new(register::response(
            self.exchange.directory(),
            page,
        )))
    }

    async fn list_unread(
        &self,
        request: Request<pb::ListMailboxRequest>,
    ) -> Result<Response<pb::ListInboxResponse>, Status> {
        let caller = self.caller(&request)?;
        let req = request.into_inner();
        let listing = self
            .registers
            .unread(&caller, req.page_size, &req.page_token)?;
        Ok(Response::new(convert::inbox_response(
            self.exchange.directory(),
            &caller,
            listing,
        )))
    }

    async fn begin_upload(
        &self,
        request: Request<pb::BeginUploadRequest>,
    ) -> Result<Response<pb::UploadStatus>, Status> {
        let caller = self.caller(&request)?;
        let req = request.into_inner();
        let status = self.transfers.begin(&caller, &req.sha256, req.size).await?;
        Ok(Response::new(streams::upload_status(&status)))
    }

    async fn upload_attachment(
        &self,
        request: Request<Streaming<pb::UploadChunk>>,
    ) -> Result<Response<pb::UploadStatus>, Status> {
        let caller = self.caller(&request)?;
        let admitted = Admitted::of(&request);
        streams::upload(&self.transfers, &caller, admitted, request.into_inner()).await
    }

    type DownloadAttachmentStream = streams::DownloadStream;

    async fn download_attachment(
        &self,
        request: Request<pb::DownloadAttachmentRequest>,
    ) -> Result<Response<streams::DownloadStream>, Status> {
        let caller = self.caller(&request)?;
        streams::download(self.transfers.clone(), caller, request.into_inner()).await
    }

    type SendBatchStream = batch::ResultStream;

    async fn send_batch(
        &self,
        request: Request<Streaming<pb::SendRequest>>,
    ) -> Result<Response<batch::ResultStream>, Status> {
        let caller = self.caller(&request)?;
        let admitted = Admitted::of(&request);
        Ok(Response::new(batch::start(
            self.exchange.clone(),
            caller,
            admitted,
            request.into_inner(),
            self.exchange.rules().limits.max_document_bytes,
        )))
    }

    async fn get_keys(
        &self,
        request: Request<pb::GetKeysRequest>,
    ) -> Result<Response<pb::GetKeysResponse>, Status> {
        self.caller(&request)?;
        Ok(Response::new(pb::GetKeysResponse {
            service_key: Some(self.exchange.service_key().to_pb()),
            signing_keys: self
                .exchange
                .keys()
                .keys()
                .map(convert::signing_key)
                .collect(),
        }))
    }
}
