//! `lienthong fill`: a stopped server's data directory filled with signed
//! documents, for measuring at scale. Re-runnable: it adds only what is
//! missing.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::client;
use crate::error::Error;
use crate::pb;
use crate::pki::{self, PkiPaths};

/// What became of one document of the fill.
#[derive(Debug, Clone, Copy)]
pub enum Filled {
    Added,
    /// An earlier run stored it.
    AlreadyThere,
}

/// What a fill did.
#[derive(Debug, Clone)]
pub struct FillReport {
    pub added: u64,
    pub already_there: u64,
    pub seconds: f64,
}

/// Fills the data directory of a stopped server until it holds documents
/// 1 to `count` of the fill, through the same checks and commit path as a
/// send, with many in flight so that group commit batches them.
///
/// Document n is always the same: number n, from the n-th department in
/// turn. One already stored is refused by the numbering rule (number and
/// notation unique per issuer and year) and counted as already there, so a
/// second run, or one after an interruption, adds only what is missing.
pub async fn fill(
    data_dir: &Path,
    count: u64,
    to: &[String],
    in_flight: usize,
    progress: Arc<dyn Fn(Filled) + Send + Sync>,
) -> Result<FillReport, String> {
    use crate::directory::Directory;
    use crate::exchange::{Exchange, Limits, SendInput};
    use crate::keys::KeyRegistry;
    use crate::receipt::{Notary, ServiceKey};
    use crate::store::{Store, StoreOptions};

    let directory = Arc::new(Directory::builtin().map_err(|e| e.to_string())?);
    let pki_paths = PkiPaths::new(data_dir.join("pki"));
    pki::ensure_dev_pki(&pki_paths, &directory).map_err(|e| e.to_string())?;
    let keys = Arc::new(KeyRegistry::load(&pki_paths.signing_keys()).map_err(|e| e.to_string())?);
    let service_key = Arc::new(ServiceKey::load_or_create(data_dir)?);
    let (listener, mut committed) = crate::notify::listener();
    tokio::spawn(async move { while committed.recv().await.is_some() {} });
    let engine =
        crate::store::open_engine(data_dir, &StoreOptions::default()).map_err(|e| e.to_string())?;
    let store = Arc::new(
        Store::open(
            engine,
            &data_dir.join("attachments"),
            &StoreOptions::default(),
            Arc::new(Notary::new(service_key.clone())),
            Arc::new(listener),
        )
        .map_err(|e| e.to_string())?,
    );
    let exchange = Arc::new(Exchange::new(
        store.clone(),
        directory.clone(),
        keys,
        service_key,
        Limits::default(),
    ));
    let senders: Vec<_> = directory
        .organizations()
        .iter()
        .filter(|o| o.kind == "department")
        .map(|o| {
            let key = pki::find_signing_key(&pki_paths, &o.alias).map_err(|e| e.to_string())?;
            Ok((o.clone(), Arc::new(key)))
        })
        .collect::<Result<_, String>>()?;
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let date = crate::clock::format_date(crate::clock::today());
    let mut tasks = Vec::new();
    let (added, already) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    for _ in 0..in_flight.max(1) {
        let (added, already) = (added.clone(), already.clone());
        let progress = progress.clone();
        let (exchange, next, senders, to, date) = (
            exchange.clone(),
            next.clone(),
            senders.clone(),
            to.to_vec(),
            date.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    return Ok::<(), String>(());
                }
                let (org, key) = &senders[n as usize % senders.len()];
                let header = pb::Document {
                    from: org.alias.clone(),
                    to: to.clone(),
                    number: n + 1,
                    // A công văn: the issuer's abbreviation, then a unit.
                    notation: format!("{}-TH", org.abbreviation().unwrap_or("VP")),
                    promulgation_date: date.clone(),
                    document_type: "cong-van".into(),
                    subject: format!("V/v văn bản số {} để đo ở quy mô lớn", n + 1),
                    ..Default::default()
                };
                let request = client::send_request(header, Vec::new(), None, key)?;
                let input = SendInput {
                    document_bytes: request.document,
                    attachments: Vec::new(),
                    idempotency_key: String::new(),
                    signature: request.signature,
                };
                match exchange.send(org, input).await {
                    Ok(_) => {
                        added.fetch_add(1, Ordering::Relaxed);
                        progress(Filled::Added);
                    }
                    Err(Error::AlreadyExists { field, .. }) if field == "document.number" => {
                        already.fetch_add(1, Ordering::Relaxed);
                        progress(Filled::AlreadyThere);
                    }
                    Err(e) => return Err(format!("document {}: {e}", n + 1)),
                }
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    let seconds = started.elapsed().as_secs_f64();
    store.close().await.map_err(|e| e.to_string())?;
    Ok(FillReport {
        added: added.load(Ordering::Relaxed),
        already_there: already.load(Ordering::Relaxed),
        seconds,
    })
}
