//! Large attachments, streamed, end to end: uploads that resume from the
//! durable offset, ranged downloads, the quotas, a wrong offset, a digest
//! that does not match, a client that vanishes, the clean-up of what is
//! left, and the sweep of files a failed send wrote.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::*;
use lienthong::client::{self, Outgoing};
use lienthong::pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
const NOI_VU: &str = "phong-noi-vu";
const NOI_VU_CODE: &str = "000.02.09.H37";

/// `n` bytes that differ with `seed`.
fn content(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
        .collect()
}

fn sha(bytes: &[u8]) -> Vec<u8> {
    lienthong::crypto::sha256(bytes).to_vec()
}

/// One upload stream: `data` from `offset`, in pieces of `piece` bytes.
fn chunks(
    sha256: &[u8],
    size: u64,
    offset: u64,
    data: &[u8],
    piece: usize,
) -> Vec<pb::UploadChunk> {
    let mut out = vec![pb::UploadChunk {
        sha256: sha256.to_vec(),
        size,
        offset,
        data: Vec::new(),
    }];
    for part in data.chunks(piece) {
        out.push(pb::UploadChunk {
            data: part.to_vec(),
            ..Default::default()
        });
    }
    out
}

async fn upload(
    client: &mut Client,
    sha256: &[u8],
    size: u64,
    offset: u64,
    data: &[u8],
) -> Result<pb::UploadStatus, tonic::Status> {
    let stream = tokio_stream::iter(chunks(sha256, size, offset, data, 256 * KIB));
    client
        .upload_attachment(stream)
        .await
        .map(|r| r.into_inner())
}

async fn begin(client: &mut Client, sha256: &[u8], size: u64) -> pb::UploadStatus {
    client
        .begin_upload(pb::BeginUploadRequest {
            sha256: sha256.to_vec(),
            size,
        })
        .await
        .expect("begin")
        .into_inner()
}

/// Every file under `dir`, however deep.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

fn uploads_dir(server: &TestServer) -> PathBuf {
    server.dir.path().join("attachments").join("uploads")
}

fn partial_file(server: &TestServer, sha256: &[u8], size: u64) -> PathBuf {
    uploads_dir(server)
        .join(NOI_VU_CODE)
        .join(format!("{}-{size}.part", hex::encode(sha256)))
}

fn attachment_file(server: &TestServer, sha256: &[u8]) -> PathBuf {
    let name = hex::encode(sha256);
    server
        .dir
        .path()
        .join("attachments")
        .join(&name[..2])
        .join(name)
}

/// A send of `document` by `org` naming `content` as uploaded.
fn naming_upload(
    server: &TestServer,
    document: pb::Document,
    name: &str,
    content: &[u8],
) -> pb::SendRequest {
    let signer = server.signer(&document.from);
    let attachment = Outgoing {
        declared: pb::AttachmentRef {
            name: name.into(),
            media_type: "application/pdf".into(),
            size: content.len() as u64,
            sha256: sha(content),
        },
        content: None,
    };
    client::signed_request(document, vec![attachment], None, &signer).expect("sign")
}

/// The range asked for, checking that each chunk starts where the last
/// ended.
async fn download(
    client: &mut Client,
    id: &str,
    index: u32,
    offset: u64,
    length: u64,
) -> Result<Vec<u8>, tonic::Status> {
    let mut stream = client
        .download_attachment(pb::DownloadAttachmentRequest {
            document_id: id.into(),
            index,
            offset,
            length,
        })
        .await?
        .into_inner();
    let mut out = Vec::new();
    while let Some(chunk) = stream.message().await? {
        assert_eq!(chunk.offset, offset + out.len() as u64, "chunks in order");
        out.extend_from_slice(&chunk.data);
    }
    Ok(out)
}

/// Waits until `condition` holds, checking every 20 ms, for at most 30 s.
async fn until(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited 30 s for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_resumes_from_the_durable_offset_and_downloads_take_ranges() {
    let server = TestServer::start().await;
    let mut noi_vu = server.client(NOI_VU).await;
    let data = content(3 * MIB + 123, 1);
    let (digest, size) = (sha(&data), data.len() as u64);

    let fresh = begin(&mut noi_vu, &digest, size).await;
    assert_eq!((fresh.offset, fresh.complete), (0, false));
    assert!(
        !partial_file(&server, &digest, size).exists(),
        "asking creates nothing"
    );

    // A stream that ends early keeps what it sent, durably.
    let half = 1536 * KIB;
    let status = upload(&mut noi_vu, &digest, size, 0, &data[..half])
        .await
        .expect("first part");
    assert_eq!((status.offset, status.complete), (half as u64, false));
    assert_eq!(begin(&mut noi_vu, &digest, size).await.offset, half as u64);
    assert_eq!(
        std::fs::metadata(partial_file(&server, &digest, size))
            .expect("partial")
            .len(),
        half as u64
    );

    // A wrong offset names the right one, and changes nothing.
    let wrong = upload(&mut noi_vu, &digest, size, 0, &data)
        .await
        .expect_err("offset 0");
    assert_eq!(wrong.code(), Code::FailedPrecondition);
    assert_eq!(
        wrong.message(),
        format!(
            "offset: the server holds {half} bytes of this upload, not 0: continue from {half}"
        )
    );
    let past = upload(&mut noi_vu, &digest, size, size + 1, &[])
        .await
        .expect_err("past the end");
    assert_eq!(past.code(), Code::OutOfRange);
    assert!(past.message().starts_with("offset: "), "{}", past.message());
    assert_eq!(begin(&mut noi_vu, &digest, size).await.offset, half as u64);

    let done = upload(&mut noi_vu, &digest, size, half as u64, &data[half..])
        .await
        .expect("the rest");
    assert_eq!((done.offset, done.complete), (size, true));
    assert!(!partial_file(&server, &digest, size).exists());
    assert_eq!(
        std::fs::read(attachment_file(&server, &digest)).expect("stored"),
        data
    );
    // Asking again, or sending again, says it is complete.
    assert!(begin(&mut noi_vu, &digest, size).await.complete);
    assert!(
        upload(&mut noi_vu, &digest, size, 0, &data[..10])
            .await
            .expect("again")
            .complete
    );

    // A send names it without carrying it.
    let sent = noi_vu
        .send(naming_upload(
            &server,
            directive(NOI_VU, &["xa-van-nham"], 1),
            "ho-so.pdf",
            &data,
        ))
        .await
        .expect("send naming the upload")
        .into_inner();
    let mut commune = server.client("xa-van-nham").await;
    assert_eq!(
        download(&mut commune, &sent.id, 0, 0, 0)
            .await
            .expect("whole"),
        data
    );
    assert_eq!(
        download(&mut commune, &sent.id, 0, 1000, 5000)
            .await
            .expect("a range"),
        &data[1000..6000]
    );
    assert_eq!(
        download(&mut commune, &sent.id, 0, size - 7, 0)
            .await
            .expect("the end"),
        &data[data.len() - 7..]
    );
    assert!(download(&mut commune, &sent.id, 0, size, 0)
        .await
        .expect("nothing")
        .is_empty());
    let past = download(&mut commune, &sent.id, 0, size + 1, 0)
        .await
        .expect_err("past the end");
    assert_eq!(past.code(), Code::OutOfRange);
    assert!(past.message().starts_with("offset: "), "{}", past.message());
    let long = download(&mut commune, &sent.id, 0, 10, size)
        .await
        .expect_err("too long");
    assert_eq!(long.code(), Code::OutOfRange);
    assert!(long.message().starts_with("length: "), "{}", long.message());
    let index = download(&mut commune, &sent.id, 1, 0, 0)
        .await
        .expect_err("no such attachment");
    assert_eq!(index.code(), Code::InvalidArgument);
    assert!(
        index.message().starts_with("index: "),
        "{}",
        index.message()
    );

    // Not a party: the same NOT_FOUND as an unknown document.
    let mut other = server.client("xa-yen-vuong").await;
    let hidden = download(&mut other, &sent.id, 0, 0, 0)
        .await
        .expect_err("not a party");
    let unknown_id = "0".repeat(32);
    let unknown = download(&mut other, &unknown_id, 0, 0, 0)
        .await
        .expect_err("unknown");
    assert_eq!(
        (hidden.code(), unknown.code()),
        (Code::NotFound, Code::NotFound)
    );
    assert_eq!(
        hidden.message().replace(&sent.id, "ID"),
        unknown.message().replace(&unknown_id, "ID")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_may_name_only_its_own_completed_uploads() {
    let server = TestServer::start().await;
    let mut noi_vu = server.client(NOI_VU).await;
    let mut commune = server.client("xa-van-nham").await;
    let data = content(100 * KIB, 2);
    let document = || directive(NOI_VU, &["xa-yen-vuong"], 1);

    let never = noi_vu
        .send(naming_upload(&server, document(), "a.pdf", &data))
        .await
        .expect_err("nothing uploaded");
    assert_eq!(never.code(), Code::FailedPrecondition);
    assert!(
        never.message().starts_with("attachments[0]: "),
        "{}",
        never.message()
    );

    // Another organisation's upload of the same bytes does not lend them.
    let theirs = upload(&mut commune, &sha(&data), data.len() as u64, 0, &data)
        .await
        .expect("the commune uploads");
    assert!(theirs.complete);
    let borrowed = noi_vu
        .send(naming_upload(&server, document(), "a.pdf", &data))
        .await
        .expect_err("the commune's upload");
    assert_eq!(borrowed.code(), Code::FailedPrecondition);

    // Half an upload is not an upload either.
    upload(
        &mut noi_vu,
        &sha(&data),
        data.len() as u64,
        0,
        &data[..50 * KIB],
    )
    .await
    .expect("half");
    let half = noi_vu
        .send(naming_upload(&server, document(), "a.pdf", &data))
        .await
        .expect_err("half uploaded");
    assert_eq!(half.code(), Code::FailedPrecondition);
    let outbox = client::outbox_pages(&noi_vu, String::new(), 0, true)
        .await
        .expect("outbox")
        .0;
    assert!(outbox.is_empty(), "nothing was stored");

    // GetDocument carries contents only while they fit in one answer.
    let small = TestServer::with_config(|c| c.limits.max_document_bytes = MIB).await;
    let mut noi_vu = small.client(NOI_VU).await;
    let big = content(2 * MIB, 3);
    upload(&mut noi_vu, &sha(&big), big.len() as u64, 0, &big)
        .await
        .expect("upload");
    let sent = noi_vu
        .send(naming_upload(&small, document(), "big.pdf", &big))
        .await
        .expect("sent")
        .into_inner();
    let refused = noi_vu
        .get_document(pb::GetDocumentRequest {
            id: sent.id.clone(),
            include_content: true,
        })
        .await
        .expect_err("too large for one answer");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().starts_with("include_content: "),
        "{}",
        refused.message()
    );
    assert_eq!(
        download(&mut noi_vu, &sent.id, 0, 0, 0)
            .await
            .expect("streamed"),
        big
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_that_do_not_match_the_declared_upload_are_discarded() {
    let server = TestServer::start().await;
    let mut noi_vu = server.client(NOI_VU).await;
    let data = content(MIB, 4);
    let other = content(MIB, 5);
    let size = data.len() as u64;

    // The right size, the wrong bytes: found at the last byte.
    let mismatch = upload(&mut noi_vu, &sha(&data), size, 0, &other)
        .await
        .expect_err("digest");
    assert_eq!(mismatch.code(), Code::InvalidArgument);
    assert!(
        mismatch
            .message()
            .starts_with("sha256: the 1048576 bytes received do not have the declared SHA-256"),
        "{}",
        mismatch.message()
    );
    assert!(
        files_under(&uploads_dir(&server)).is_empty(),
        "nothing half-stored"
    );
    assert!(!attachment_file(&server, &sha(&data)).exists());
    assert_eq!(begin(&mut noi_vu, &sha(&data), size).await.offset, 0);

    // More than declared.
    let mut longer = data.clone();
    longer.push(0);
    let over = upload(&mut noi_vu, &sha(&data), size, 0, &longer)
        .await
        .expect_err("too long");
    assert_eq!(over.code(), Code::InvalidArgument);
    assert!(
        over.message()
            .starts_with("data: the upload declared 1048576 bytes"),
        "{}",
        over.message()
    );
    assert!(files_under(&uploads_dir(&server)).is_empty());

    // Malformed: a digest of the wrong length, an empty upload.
    let short = upload(&mut noi_vu, &[1, 2, 3], size, 0, &data)
        .await
        .expect_err("short digest");
    assert_eq!(short.code(), Code::InvalidArgument);
    assert!(
        short.message().starts_with("sha256: "),
        "{}",
        short.message()
    );
    let empty = upload(&mut noi_vu, &sha(&[]), 0, 0, &[])
        .await
        .expect_err("empty");
    assert_eq!(empty.code(), Code::InvalidArgument);
    assert!(empty.message().starts_with("size: "), "{}", empty.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quotas_stop_an_upload_before_and_in_the_middle() {
    let server = TestServer::with_config(|c| {
        c.uploads.max_attachment_bytes = 4 * MIB as u64;
        c.uploads.org_quota_bytes = 3 * MIB as u64;
    })
    .await;
    let mut noi_vu = server.client(NOI_VU).await;

    let too_big = noi_vu
        .begin_upload(pb::BeginUploadRequest {
            sha256: sha(b"x"),
            size: 4 * MIB as u64 + 1,
        })
        .await
        .expect_err("over the attachment quota");
    assert_eq!(too_big.code(), Code::ResourceExhausted);
    assert!(
        too_big.message().starts_with("max_attachment_bytes: "),
        "{}",
        too_big.message()
    );

    // 2 MiB uploaded, not sent yet: it counts.
    let first = content(2 * MIB, 6);
    assert!(
        upload(&mut noi_vu, &sha(&first), first.len() as u64, 0, &first)
            .await
            .expect("first")
            .complete
    );
    // The next passes the quota half-way: refused then, and discarded.
    let second = content(2 * MIB, 7);
    let stopped = upload(&mut noi_vu, &sha(&second), second.len() as u64, 0, &second)
        .await
        .expect_err("over the organisation's quota");
    assert_eq!(stopped.code(), Code::ResourceExhausted);
    assert!(
        stopped.message().starts_with("org_upload_quota_bytes: "),
        "{}",
        stopped.message()
    );
    assert!(
        !partial_file(&server, &sha(&second), second.len() as u64).exists(),
        "discarded"
    );
    assert_eq!(
        begin(&mut noi_vu, &sha(&second), second.len() as u64)
            .await
            .offset,
        0
    );
    assert!(
        begin(&mut noi_vu, &sha(&first), first.len() as u64)
            .await
            .complete,
        "the first stays"
    );

    // Another organisation has its own quota.
    let mut commune = server.client("xa-van-nham").await;
    assert!(
        upload(&mut commune, &sha(&second), second.len() as u64, 0, &second)
            .await
            .expect("theirs")
            .complete
    );

    // Once sent, an upload counts no more.
    noi_vu
        .send(naming_upload(
            &server,
            directive(NOI_VU, &["xa-van-nham"], 1),
            "a.pdf",
            &first,
        ))
        .await
        .expect("send");
    assert!(
        upload(&mut noi_vu, &sha(&second), second.len() as u64, 0, &second)
            .await
            .expect("now it fits")
            .complete
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_vanishes_leaves_its_bytes_and_another_stream_takes_over() {
    let server = TestServer::start().await;
    let data = content(2 * MIB, 8);
    let (digest, size) = (sha(&data), data.len() as u64);
    let partial = partial_file(&server, &digest, size);

    // A client sends half a megabyte, then its connection is gone.
    {
        let mut vanishing = Client::new(server.channel(NOI_VU, None).await);
        let (tx, rx) = mpsc::channel(8);
        for chunk in chunks(&digest, size, 0, &data[..512 * KIB], 128 * KIB) {
            tx.send(chunk).await.expect("queued");
        }
        let call =
            tokio::spawn(async move { vanishing.upload_attachment(ReceiverStream::new(rx)).await });
        let on_disk = partial.clone();
        until("the first half megabyte on disk", || {
            std::fs::metadata(&on_disk).is_ok_and(|m| m.len() == 512 * KIB as u64)
        })
        .await;
        call.abort();
        let _ = call.await;
        drop(tx);
    }
    let mut noi_vu = server.client(NOI_VU).await;
    let resumed = begin(&mut noi_vu, &digest, size).await;
    assert_eq!(
        (resumed.offset, resumed.complete),
        (512 * KIB as u64, false)
    );

    // A stream still open when the client resumes on another: the old one
    // is stopped with ABORTED, the new one goes on from what it held.
    let mut first = server.client(NOI_VU).await;
    let (tx, rx) = mpsc::channel(8);
    for chunk in chunks(
        &digest,
        size,
        512 * KIB as u64,
        &data[512 * KIB..MIB],
        128 * KIB,
    ) {
        tx.send(chunk).await.expect("queued");
    }
    let old = tokio::spawn(async move { first.upload_attachment(ReceiverStream::new(rx)).await });
    let on_disk = partial.clone();
    until("the first megabyte on disk", || {
        std::fs::metadata(&on_disk).is_ok_and(|m| m.len() == MIB as u64)
    })
    .await;
    let taken = begin(&mut noi_vu, &digest, size).await;
    assert_eq!(taken.offset, MIB as u64);
    let stopped = old.await.expect("joined").expect_err("taken over");
    assert_eq!(stopped.code(), Code::Aborted);
    drop(tx);
    let done = upload(&mut noi_vu, &digest, size, MIB as u64, &data[MIB..])
        .await
        .expect("the rest");
    assert!(done.complete);
    assert_eq!(
        std::fs::read(attachment_file(&server, &digest)).expect("stored"),
        data
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_left_unfinished_or_unsent_is_removed_after_the_upload_ttl() {
    let server = TestServer::with_config(|c| c.uploads.ttl = Duration::from_millis(500)).await;
    let mut noi_vu = server.client(NOI_VU).await;
    let unfinished = content(300 * KIB, 9);
    let unsent = content(200 * KIB, 10);
    let sent = content(100 * KIB, 11);
    upload(
        &mut noi_vu,
        &sha(&unfinished),
        unfinished.len() as u64,
        0,
        &unfinished[..100 * KIB],
    )
    .await
    .expect("part");
    for data in [&unsent, &sent] {
        assert!(
            upload(&mut noi_vu, &sha(data), data.len() as u64, 0, data)
                .await
                .expect("upload")
                .complete
        );
    }
    let document = noi_vu
        .send(naming_upload(
            &server,
            directive(NOI_VU, &["xa-van-nham"], 1),
            "kept.pdf",
            &sent,
        ))
        .await
        .expect("send")
        .into_inner();

    let uploads = uploads_dir(&server);
    let unsent_file = attachment_file(&server, &sha(&unsent));
    until("the clean-up", || {
        files_under(&uploads).is_empty() && !unsent_file.exists()
    })
    .await;
    // What a document carries stays, and reads back.
    assert!(attachment_file(&server, &sha(&sent)).exists());
    let mut commune = server.client("xa-van-nham").await;
    assert_eq!(
        download(&mut commune, &document.id, 0, 0, 0)
            .await
            .expect("kept"),
        sent
    );
    // The others are gone: asking starts over, naming them is refused.
    assert_eq!(
        begin(&mut noi_vu, &sha(&unfinished), unfinished.len() as u64)
            .await
            .offset,
        0
    );
    assert!(
        !begin(&mut noi_vu, &sha(&unsent), unsent.len() as u64)
            .await
            .complete
    );
    let late = noi_vu
        .send(naming_upload(
            &server,
            directive(NOI_VU, &["xa-van-nham"], 2),
            "late.pdf",
            &unsent,
        ))
        .await
        .expect_err("expired");
    assert_eq!(late.code(), Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_send_leaves_no_attachment_file_and_a_restart_sweeps_strays() {
    let mut server = TestServer::start().await;
    let mut noi_vu = server.client(NOI_VU).await;
    server
        .send(&mut noi_vu, directive(NOI_VU, &["xa-van-nham"], 7))
        .await;

    // Number 7 is taken: the send fails after writing its attachment file.
    let carried = content(100 * KIB, 12);
    let taken = noi_vu
        .send(server.signed(
            directive(NOI_VU, &["xa-van-nham"], 7),
            vec![pdf("a.pdf", &carried)],
            None,
        ))
        .await
        .expect_err("number taken");
    assert_eq!(taken.code(), Code::AlreadyExists);
    assert!(
        !attachment_file(&server, &sha(&carried)).exists(),
        "removed at once"
    );

    // An uploaded attachment of a failed send stays uploaded.
    let uploaded = content(100 * KIB, 13);
    upload(
        &mut noi_vu,
        &sha(&uploaded),
        uploaded.len() as u64,
        0,
        &uploaded,
    )
    .await
    .expect("upload");
    let taken = noi_vu
        .send(naming_upload(
            &server,
            directive(NOI_VU, &["xa-van-nham"], 7),
            "b.pdf",
            &uploaded,
        ))
        .await
        .expect_err("number taken");
    assert_eq!(taken.code(), Code::AlreadyExists);
    assert!(attachment_file(&server, &sha(&uploaded)).exists());
    noi_vu
        .send(naming_upload(
            &server,
            directive(NOI_VU, &["xa-van-nham"], 8),
            "b.pdf",
            &uploaded,
        ))
        .await
        .expect("sent with the next number");

    // A file a crash left between writing and committing: swept at start.
    let stray = content(50 * KIB, 14);
    let path = attachment_file(&server, &sha(&stray));
    std::fs::create_dir_all(path.parent().expect("folder")).expect("folder");
    std::fs::write(&path, &stray).expect("stray");
    let in_tmp = server
        .dir
        .path()
        .join("attachments")
        .join("tmp")
        .join("half-written");
    std::fs::write(&in_tmp, b"half").expect("tmp");
    server.restart().await;
    assert!(!in_tmp.exists(), "tmp/ is emptied when the store opens");
    until("the sweep after start", || !path.exists()).await;
    assert!(
        attachment_file(&server, &sha(&uploaded)).exists(),
        "a document's file stays"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_gives_each_document_its_own_result() {
    let server = TestServer::with_config(|c| {
        c.network.org_sends_per_minute = 1;
        c.network.org_send_burst = 4;
    })
    .await;
    let mut noi_vu = server.client(NOI_VU).await;
    let mut forged = server.request(directive(NOI_VU, &["xa-van-nham"], 3));
    forged.signature.as_mut().expect("signed").signature[0] ^= 1;
    let requests = vec![
        server.request(directive(NOI_VU, &["xa-van-nham"], 1)),
        server.request(directive(NOI_VU, &["all-communes"], 2)),
        forged,
        // The same number again: refused on its own.
        server.request(directive(NOI_VU, &["xa-van-nham"], 1)),
        // The fifth is over the send rate (a burst of 4).
        server.request(directive(NOI_VU, &["xa-van-nham"], 5)),
    ];
    let mut results = noi_vu
        .send_batch(tokio_stream::iter(requests))
        .await
        .expect("batch")
        .into_inner();
    let mut outcomes = Vec::new();
    while let Some(result) = results.message().await.expect("result") {
        outcomes.push(result);
    }
    let indexes: Vec<u64> = outcomes.iter().map(|r| r.index).collect();
    assert_eq!(indexes, [0, 1, 2, 3, 4], "one result each, in order");
    use pb::send_batch_result::Outcome;
    let code = |i: usize| match &outcomes[i].outcome {
        Some(Outcome::Sent(_)) => Code::Ok,
        Some(Outcome::Error(e)) => Code::from(e.code),
        None => panic!("no outcome"),
    };
    assert_eq!(
        (0..5).map(code).collect::<Vec<_>>(),
        [
            Code::Ok,
            Code::Ok,
            Code::InvalidArgument,
            Code::AlreadyExists,
            Code::ResourceExhausted
        ]
    );
    if let Some(Outcome::Error(e)) = &outcomes[2].outcome {
        assert!(e.message.starts_with("signature: "), "{}", e.message);
    }
    if let Some(Outcome::Sent(r)) = &outcomes[1].outcome {
        assert_eq!(r.deliveries.len(), 23);
    }
    // Stored as each result says: two documents, each numbered and received.
    let outbox = client::outbox_pages(&noi_vu, String::new(), 0, true)
        .await
        .expect("outbox")
        .0;
    assert_eq!(outbox.len(), 2);
    let mut commune = server.client("xa-van-nham").await;
    let inbox = inbox_all(&mut commune).await;
    assert_eq!(
        inbox.iter().map(|e| e.arrival_number).collect::<Vec<_>>(),
        [2, 1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_stops_uploads_in_progress_and_they_resume_after_the_restart() {
    let mut server = TestServer::start().await;
    let data = content(2 * MIB, 15);
    let (digest, size) = (sha(&data), data.len() as u64);
    let partial = partial_file(&server, &digest, size);
    let mut uploading = server.client(NOI_VU).await;
    let (tx, rx) = mpsc::channel(8);
    for chunk in chunks(&digest, size, 0, &data[..512 * KIB], 128 * KIB) {
        tx.send(chunk).await.expect("queued");
    }
    // The stream stays open: the client would go on sending.
    let call =
        tokio::spawn(async move { uploading.upload_attachment(ReceiverStream::new(rx)).await });
    let on_disk = partial.clone();
    until("half a megabyte on disk", || {
        std::fs::metadata(&on_disk).is_ok_and(|m| m.len() == 512 * KIB as u64)
    })
    .await;
    server.stop().await; // returns: the upload does not hold the shutdown
    let stopped = call.await.expect("joined").expect_err("stopped");
    assert_eq!(stopped.code(), Code::Unavailable, "{}", stopped.message());
    drop(tx);

    server.restart().await;
    let mut noi_vu = server.client(NOI_VU).await;
    assert_eq!(
        begin(&mut noi_vu, &digest, size).await.offset,
        512 * KIB as u64
    );
    let done = upload(
        &mut noi_vu,
        &digest,
        size,
        512 * KIB as u64,
        &data[512 * KIB..],
    )
    .await
    .expect("the rest");
    assert!(done.complete);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_holds_only_what_is_in_memory_against_the_request_budgets() {
    // Budgets of 6 MiB: a stream charged for all it sent would be refused
    // a third of the way through each of these.
    let server = TestServer::with_config(|c| {
        c.limits.max_document_bytes = MIB;
        c.network.org_request_budget = 6 * MIB;
        c.network.request_budget = 6 * MIB;
    })
    .await;
    let mut noi_vu = server.client(NOI_VU).await;
    let data = content(20 * MIB, 16);
    let stream = tokio_stream::iter(chunks(&sha(&data), data.len() as u64, 0, &data, MIB));
    let done = noi_vu
        .upload_attachment(stream)
        .await
        .expect("20 MiB through a 6 MiB budget")
        .into_inner();
    assert!(done.complete);

    let requests: Vec<pb::SendRequest> = (1..=20)
        .map(|n| {
            server.signed(
                directive(NOI_VU, &["xa-van-nham"], n),
                vec![pdf("a.pdf", &content(600 * KIB, n as u32))],
                None,
            )
        })
        .collect();
    let mut results = noi_vu
        .send_batch(tokio_stream::iter(requests))
        .await
        .expect("batch")
        .into_inner();
    let mut sent = 0;
    while let Some(result) = results.message().await.expect("result") {
        match result.outcome {
            Some(pb::send_batch_result::Outcome::Sent(_)) => sent += 1,
            other => panic!("document {}: {other:?}", result.index),
        }
    }
    assert_eq!(sent, 20, "12 MiB of documents through a 6 MiB budget");
}
