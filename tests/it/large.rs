//! Large attachments and batches from the command line: `send` uploads
//! what is large, `show --save` downloads and resumes a save that was cut
//! off, `send --batch` sends a folder or a manifest with one result each.

use std::path::Path;
use std::process::{Command, Output};

use crate::cli::{cli, ok_json, stderr_of, Serve};

const BIN: &str = env!("CARGO_BIN_EXE_lienthong");
const MIB: usize = 1024 * 1024;

fn content(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 11) as u8)
        .collect()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Asserts that the uploads folder of the organisation `code` holds one
/// completed upload, of `size` bytes.
fn assert_one_upload_of(data: &Path, code: &str, size: usize) {
    let uploads = data.join("attachments/uploads").join(code);
    let markers: Vec<_> = std::fs::read_dir(&uploads)
        .expect("uploads")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(markers.len(), 1, "{markers:?}");
    assert!(
        markers[0].ends_with(&format!("-{size}.done")),
        "{markers:?}"
    );
}

/// `verify --json` of the folder `dir`, against the PKI of `data`.
fn verify(data: &Path, dir: &Path) -> Output {
    Command::new(BIN)
        .args([
            "verify",
            "--json",
            "--pki",
            path(&data.join("pki")),
            path(dir),
        ])
        .output()
        .expect("verify")
}

/// `show --save` of document `id`, as Vân Nham, into `dir`.
fn save_as_van_nham(server: &Serve, data: &Path, id: &str, dir: &Path) -> Output {
    cli(
        server,
        data,
        &[
            "show",
            "--as",
            "xa-van-nham",
            id,
            "--save",
            path(dir),
            "--json",
        ],
    )
}

#[test]
fn a_large_attachment_goes_up_in_chunks_and_a_cut_save_resumes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let server = crate::common::serve_process(&data, &[]);
    let big = tmp.path().join("ban-do.bin");
    let big_content = content(5 * MIB + 3, 1);
    std::fs::write(&big, &big_content).expect("write");
    let small = tmp.path().join("to-trinh.pdf");
    std::fs::write(&small, content(10_000, 2)).expect("write");

    let sent = ok_json(cli(
        &server,
        &data,
        &[
            "send",
            "--as",
            "phong-noi-vu",
            "--to",
            "xa-van-nham",
            "--type",
            "cong-van",
            "--number",
            "auto",
            "--notation",
            "PNV-VP",
            "--subject",
            "V/v bản đồ quy hoạch",
            "--attach",
            path(&big),
            "--attach",
            path(&small),
            "--json",
        ],
    ));
    let id = sent["id"].as_str().expect("id").to_owned();
    // Only the large one was uploaded: the uploads folder of the sender
    // held it, and the send completed it.
    assert_one_upload_of(&data, "000.02.09.H37", big_content.len());

    let save = |dir: &Path| save_as_van_nham(&server, &data, &id, dir);
    let whole = tmp.path().join("whole");
    ok_json(save(&whole));
    assert_eq!(
        std::fs::read(whole.join("ban-do.bin")).expect("saved"),
        big_content
    );
    assert_eq!(ok_json(verify(&data, &whole))["ok"], true);

    // A save cut off after 2 MiB: run again, it resumes from there.
    let cut = tmp.path().join("cut");
    std::fs::create_dir_all(&cut).expect("mkdir");
    let partial = cut.join(".ban-do.bin.lienthong-partial");
    std::fs::write(&partial, &big_content[..2 * MIB]).expect("partial");
    let resumed = save(&cut);
    assert!(
        stderr_of(&resumed).contains(&format!(
            "resuming at byte {} of {}",
            2 * MIB,
            big_content.len()
        )),
        "{}",
        stderr_of(&resumed)
    );
    ok_json(resumed);
    assert_eq!(
        std::fs::read(cut.join("ban-do.bin")).expect("saved"),
        big_content
    );
    assert!(
        !partial.exists(),
        "the partial file took the attachment's name"
    );

    // A partial file that does not hold the attachment's first bytes: the
    // check at the end refuses it, and it is removed.
    let wrong = tmp.path().join("wrong");
    std::fs::create_dir_all(&wrong).expect("mkdir");
    let partial = wrong.join(".ban-do.bin.lienthong-partial");
    std::fs::write(&partial, vec![0u8; MIB]).expect("partial");
    let refused = save(&wrong);
    assert!(!refused.status.success());
    assert!(
        stderr_of(&refused).contains("\nerror: DATA_LOSS: "),
        "{}",
        stderr_of(&refused)
    );
    assert!(!partial.exists() && !wrong.join("ban-do.bin").exists());

    // A partial "file" that is a symbolic link is never written through.
    #[cfg(unix)]
    {
        let linked = tmp.path().join("linked");
        std::fs::create_dir_all(&linked).expect("mkdir");
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, b"victim").expect("victim");
        std::os::unix::fs::symlink(&victim, linked.join(".ban-do.bin.lienthong-partial"))
            .expect("link");
        let refused = save(&linked);
        assert!(
            stderr_of(&refused).contains("symbolic link"),
            "{}",
            stderr_of(&refused)
        );
        assert_eq!(std::fs::read(&victim).expect("victim"), b"victim");
    }
}

#[test]
fn a_batch_from_a_folder_or_a_manifest_gives_each_document_its_result() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let server = crate::common::serve_process(&data, &[]);
    let batch = tmp.path().join("batch");
    std::fs::create_dir_all(&batch).expect("mkdir");
    std::fs::write(batch.join("to-trinh.pdf"), content(20_000, 3)).expect("write");
    std::fs::write(batch.join("ban-do.bin"), content(5 * MIB, 4)).expect("write");
    let write = |name: &str, json: serde_json::Value| {
        std::fs::write(batch.join(name), json.to_string()).expect("write");
    };
    write(
        "01.json",
        serde_json::json!({"to": ["xa-van-nham"], "type": "cong-van", "number": "auto",
            "notation": "PNV-VP", "subject": "V/v tờ trình", "attach": ["to-trinh.pdf"]}),
    );
    write(
        "02.json",
        serde_json::json!({"to": ["xa-van-nham"], "type": "khong-co", "number": "auto",
            "notation": "PNV-VP", "subject": "V/v loại sai"}),
    );
    write(
        "03.json",
        serde_json::json!({"to": ["all-communes"], "type": "cong-van", "number": "auto",
            "notation": "PNV-VP", "subject": "V/v bản đồ", "attach": ["ban-do.bin"]}),
    );
    let folder = cli(
        &server,
        &data,
        &[
            "send",
            "--as",
            "phong-noi-vu",
            "--batch",
            path(&batch),
            "--json",
        ],
    );
    assert!(!folder.status.success(), "one document was refused");
    let report: serde_json::Value =
        serde_json::from_slice(&folder.stdout).expect("one JSON document");
    assert_eq!(
        (report["sent"].as_u64(), report["refused"].as_u64()),
        (Some(2), Some(1))
    );
    let results = report["results"].as_array().expect("results");
    assert_eq!(results[0]["number"], 1);
    assert_eq!(results[1]["error"]["code"], "INVALID_ARGUMENT");
    assert!(results[1]["error"]["message"]
        .as_str()
        .expect("message")
        .contains("02.json"));
    // Numbers follow the batch.
    assert_eq!(results[2]["number"], 2);
    assert_eq!(results[2]["deliveries"].as_array().map(Vec::len), Some(23));

    // A manifest, the command line standing for what each leaves out.
    let manifest = tmp.path().join("manifest.json");
    std::fs::write(
        &manifest,
        serde_json::json!({"documents": [
            {"subject": "V/v lịch họp tháng 12"},
            {"subject": "V/v lịch trực Tết", "to": ["xa-yen-vuong"]},
        ]})
        .to_string(),
    )
    .expect("manifest");
    let sent = ok_json(cli(
        &server,
        &data,
        &[
            "send",
            "--as",
            "phong-noi-vu",
            "--to",
            "xa-van-nham",
            "--type",
            "cong-van",
            "--number",
            "auto",
            "--notation",
            "PNV-VP",
            "--batch",
            path(&manifest),
            "--json",
        ],
    ));
    let numbers: Vec<u64> = sent["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["number"].as_u64().expect("number"))
        .collect();
    assert_eq!(numbers, [3, 4]);
    // An update is one document: --batch is refused there.
    let update = cli(
        &server,
        &data,
        &[
            "update",
            "--as",
            "phong-noi-vu",
            "0123",
            "--reason",
            "x",
            "--batch",
            path(&manifest),
        ],
    );
    assert!(
        stderr_of(&update).contains("--batch sends many new documents"),
        "{}",
        stderr_of(&update)
    );
}

/// A scan of a paper document goes up the way a large attachment does:
/// `paper --scan` uploads it in chunks first, as the recording
/// organisation's, even when the record names a directory organisation as
/// where the paper came from; the recipient saves it whole.
#[test]
fn a_large_paper_scan_goes_up_in_chunks_and_is_saved_whole() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let server = crate::common::serve_process(&data, &[]);
    let scan = tmp.path().join("ban-chup.pdf");
    let scan_content = content(5 * MIB + 7, 3);
    std::fs::write(&scan, &scan_content).expect("write");

    let recorded = ok_json(cli(
        &server,
        &data,
        &[
            "paper",
            "--as",
            "xa-van-nham",
            "--in",
            "--counterpart",
            "phong-noi-vu",
            "--number",
            "41",
            "--notation",
            "KH-PNV",
            "--type",
            "ke-hoach",
            "--subject",
            "Kế hoạch kiểm tra công tác văn thư, bản giấy",
            "--scan",
            path(&scan),
            "--json",
        ],
    ));
    let id = recorded["id"].as_str().expect("id").to_owned();
    // It went up as an upload of the commune that recorded it.
    assert_one_upload_of(&data, "000.32.09.H37", scan_content.len());

    let saved = tmp.path().join("saved");
    ok_json(save_as_van_nham(&server, &data, &id, &saved));
    assert_eq!(
        std::fs::read(saved.join("ban-chup.pdf")).expect("saved"),
        scan_content
    );
    // The saved record proves itself offline, scan included.
    let verified = ok_json(verify(&data, &saved));
    assert_eq!(verified["ok"], true, "{verified}");

    // Its signature was made in the paper record context: the same bytes
    // saved as a document's do not pass; and a changed scan is named.
    let failed = || {
        let out = verify(&data, &saved);
        assert!(!out.status.success());
        let said: serde_json::Value = serde_json::from_slice(&out.stdout).expect("verify --json");
        let checks = said["checks"].as_array().expect("checks").clone();
        checks
            .iter()
            .filter(|c| c["ok"] == false)
            .map(|c| c["subject"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    let proof = saved.join("lienthong-proof");
    let rename = |from: &str, to: &str| {
        for ext in ["pb", "sig"] {
            std::fs::rename(
                proof.join(format!("{from}.{ext}")),
                proof.join(format!("{to}.{ext}")),
            )
            .expect("rename");
        }
    };
    rename("record", "document");
    assert!(failed().contains(&"signature".to_owned()));
    // Both at once: which one the folder proves cannot be told.
    std::fs::copy(proof.join("document.pb"), proof.join("record.pb")).expect("copy");
    let both = verify(&data, &saved);
    assert!(!both.status.success());
    assert!(
        stderr_of(&both).contains("holds both document.pb and record.pb"),
        "{}",
        stderr_of(&both)
    );
    std::fs::remove_file(proof.join("record.pb")).expect("remove");
    rename("document", "record");
    let mut changed = scan_content.clone();
    changed[0] ^= 1;
    std::fs::write(saved.join("ban-chup.pdf"), &changed).expect("write");
    assert_eq!(failed(), ["attachment \"ban-chup.pdf\""]);
}
