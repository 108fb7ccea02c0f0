//! `serve --holidays FILE` through the real binary: a good file serves, a
//! bad one stops the start with a message naming the file and the key.

use std::path::Path;

use lienthong::process::ServeProcess;

const BIN: &str = env!("CARGO_BIN_EXE_lienthong");

#[test]
fn serve_refuses_a_bad_holidays_file_at_start_naming_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bad = tmp.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[year]]\nyear = 2026\nholidays = [\"2026-01-01\"]\nworking_saturday = [\"2026-01-10\"]\n",
    )
    .expect("write");
    let holidays = bad.to_str().expect("a UTF-8 path");
    let data = tmp.path().join("data");
    let error = match ServeProcess::start(Path::new(BIN), &data, &["--holidays", holidays]) {
        Ok(_) => panic!("serve started with {holidays}"),
        Err(error) => error,
    };
    assert!(error.contains("exited before ready"), "{error}");
    let expected = format!("the holidays file {holidays}, line 4: ");
    assert!(error.contains(&expected), "{error}");
    assert!(
        error.contains("unknown field `working_saturday`"),
        "{error}"
    );
    // Refused before anything was created.
    assert!(!data.exists(), "{} was created", data.display());
}

#[test]
fn serve_starts_with_the_example_holidays_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/holidays.toml");
    let server = crate::common::serve_process(tmp.path(), &["--holidays", example]);
    assert!(server.ready.ready);
}
