//! The integration tests, in one binary: each module starts real servers
//! (real TLS, an ephemeral port, a temporary directory) or runs the real
//! command. One binary links once instead of once per file.
//!
//! Run one group with `cargo test --test it archive::`; the long crash run
//! is `LIENTHONG_CRASH_CYCLES=25 cargo test --release --test it crash::`.

// A panic is how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod archive;
mod backup;
mod calendar;
mod cli;
mod config;
mod crash;
mod dashboard;
mod deadlines;
mod demo;
mod deploy;
mod exchange;
mod explain;
mod fronts;
mod health;
mod hostile;
mod identity;
mod large;
mod layout;
mod lifecycle;
mod limits;
mod logs;
mod metrics;
mod migrate;
mod notifications;
mod numbering;
mod outside;
mod paper;
mod postgres;
mod registers;
mod reload;
mod report;
mod saving;
mod signatures;
mod store;
mod transfer;
mod validation;
mod verify;
