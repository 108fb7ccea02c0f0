//! The command line: one binary that is both the server (`serve`) and its
//! client. Names and flags here are a contract that scripts rely on.
//!
//! Conventions: results on stdout (one JSON document with `--json`, else a
//! readable table), errors on stderr with a non-zero exit code: 1 when the
//! server or the system refused, 2 for a usage error.
//!
//! Each command group has its own file holding its arguments and its `run`;
//! this file only parses and dispatches. [`connection`] is how client
//! commands reach the server, [`output`] the one way anything is printed.

mod archive;
mod backup;
mod batch;
mod bench;
mod completions;
mod config;
mod connection;
mod demo;
mod directory;
mod error;
mod explain;
mod files;
mod fill;
mod layers;
mod lifecycle;
mod login;
mod mailbox;
mod migrate;
mod output;
mod overdue;
mod paper;
mod pki;
mod register;
mod reload;
mod report;
mod send;
mod serve;
mod settings;
mod transfers;
mod types;
mod verify;
mod watch;

use std::process::ExitCode;

use clap::{FromArgMatches, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "lienthong",
    version,
    about = "Send, route and keep official documents between a district's departments and communes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service. Every option may also come from the environment
    /// (LIENTHONG_ and the option's name) or a configuration file
    /// (--config); a flag wins over the environment, which wins over the
    /// file.
    Serve(Box<serve::ServeArgs>),
    /// The configuration of `serve`: what it would run with and why, and a
    /// file checked without starting.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Send a document as the organisation of --as; --batch: many, one
    /// result each.
    Send(Box<batch::SendCommand>),
    /// List the documents received, newest first; --unread: those not yet
    /// acted on, most urgent first.
    Inbox(mailbox::InboxArgs),
    /// List the documents sent, newest first, with their recipients.
    Outbox(mailbox::ListArgs),
    /// Show one document; --save writes its attachments.
    Show(mailbox::ShowArgs),
    /// Change your status of a document you received (02 rejected,
    /// 03 registered, 04 assigned, 05 in-progress, 06 completed), signed.
    Status(lifecycle::StatusArgs),
    /// Answer a revocation, update or replacement: agree (15) or refuse (16).
    Answer(lifecycle::AnswerArgs),
    /// Revoke a document you sent, with a reason, signed.
    Revoke(lifecycle::RevokeArgs),
    /// Send a new version that updates a document you sent (takes the
    /// options of `send`).
    Update(Box<lifecycle::SupersedeArgs>),
    /// Send a new document that replaces one you sent (takes the options of
    /// `send`).
    Replace(Box<lifecycle::SupersedeArgs>),
    /// A document's life: every recipient's status changes (for its sender),
    /// or your own (for a recipient).
    History(lifecycle::HistoryArgs),
    /// List the documents to register or handle that are late or due soon,
    /// late first (--district: the whole district's).
    Overdue(overdue::OverdueArgs),
    /// Record a document that came (--in) or went (--out) on paper, for
    /// your own organisation: it counts and is numbered like any other.
    Paper(Box<paper::PaperArgs>),
    /// The electronic-exchange report of a period: per organisation, sent
    /// and received (electronic and paper), the rate against the target,
    /// registrations and completions on time or late, what is overdue;
    /// --explain ORG lists the documents behind each number of a row.
    Report(report::ReportArgs),
    /// The incoming register (sổ đăng ký văn bản đến) of a year, or with
    /// --outgoing the outgoing one (sổ văn bản đi); --csv for a spreadsheet.
    Register(register::RegisterArgs),
    /// Print mailbox events as they happen, one line each, until interrupted.
    Watch(watch::WatchArgs),
    /// Check a document saved with `show --save`, offline: the sender's
    /// signature, the service's receipt, and every attachment.
    Verify(verify::VerifyArgs),
    /// List the organisations and groups documents can be sent to.
    Directory(directory::DirectoryArgs),
    /// Measure: a load over mutual TLS, the machine's ceiling, the archive's
    /// costs, or the comparison with NATS JetStream.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Fill a stopped server's data directory with signed documents, for
    /// measuring at scale.
    Fill(fill::FillArgs),
    /// Fill a new data directory with a year of Hữu Lũng's exchange
    /// through the real API, for showing the service.
    Demo(demo::DemoArgs),
    /// The archive: proofs that documents are in the log and that the log
    /// only grows, and an offline audit.
    #[command(subcommand)]
    Archive(archive::ArchiveCommand),
    /// Certificates for a deployment.
    #[command(subcommand)]
    Pki(pki::PkiCommand),
    /// Take a backup of a running server, as an operator (--as admin),
    /// while it goes on serving: a new file, checked, and its SHA-256.
    Backup(Box<backup::BackupArgs>),
    /// Rebuild a data directory from a backup file, offline, then audit
    /// its archive.
    Restore(backup::RestoreArgs),
    /// Make a running server read its certificates, client CA and signing
    /// keys again, as an operator (--as admin); SIGHUP does the same.
    Reload(reload::ReloadArgs),
    /// Copy a stopped server's embedded store into PostgreSQL and verify
    /// the copy (entries, documents, receipts, the archive's root); run
    /// again, it completes or repeats the copy.
    Migrate(migrate::MigrateArgs),
    /// List the 29 document types: code, abbreviation and Vietnamese name.
    Types(types::TypesArgs),
    /// Remember the PKI folder, organisation and server for later commands
    /// (in the per-user configuration), so they work from any folder.
    Login(login::LoginArgs),
    /// Show which organisation, server and PKI folder a command would use,
    /// and why.
    Whoami(login::WhoamiArgs),
    /// Print the completion script for a shell.
    Completions(completions::CompletionsArgs),
    /// Print the man page (roff).
    Man,
}

/// The command tree, for completions, the man page and tests: as declared,
/// with the environment variable of each option of `serve`.
pub fn command() -> clap::Command {
    layers::with_variables(<Cli as clap::CommandFactory>::command())
}

pub fn main() -> ExitCode {
    let (cli, parsed) = match parse() {
        Ok(parsed) => parsed,
        Err(e) => {
            output::error(&e);
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            output::error(&error::CliError::io("cannot start the async runtime", &e));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(*args).await,
            Command::Config(command) => config::run(command, &parsed),
            Command::Send(args) => batch::run(*args).await,
            Command::Inbox(args) => mailbox::inbox(args).await,
            Command::Outbox(args) => mailbox::outbox(args).await,
            Command::Show(args) => mailbox::show(args).await,
            Command::Status(args) => lifecycle::status(args).await,
            Command::Answer(args) => lifecycle::answer(args).await,
            Command::Revoke(args) => lifecycle::revoke(args).await,
            Command::Update(args) => {
                lifecycle::supersede(*args, crate::pb::Operation::Update).await
            }
            Command::Replace(args) => {
                lifecycle::supersede(*args, crate::pb::Operation::Replace).await
            }
            Command::History(args) => lifecycle::history(args).await,
            Command::Overdue(args) => overdue::run(args).await,
            Command::Paper(args) => paper::run(*args).await,
            Command::Report(args) => report::run(args).await,
            Command::Register(args) => register::run(args).await,
            Command::Watch(args) => watch::run(args).await,
            Command::Verify(args) => verify::run(args),
            Command::Directory(args) => directory::run(args).await,
            Command::Bench(command) => bench::run(command).await,
            Command::Fill(args) => fill::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Archive(command) => archive::run(command).await,
            Command::Pki(command) => pki::run(command),
            Command::Backup(args) => backup::backup(*args).await,
            Command::Restore(args) => backup::restore(args).await,
            Command::Reload(args) => reload::run(args).await,
            Command::Migrate(args) => migrate::run(args).await,
            Command::Types(args) => types::run(args),
            Command::Login(args) => login::login(args),
            Command::Whoami(args) => login::whoami(args),
            Command::Completions(args) => completions::completions(args, command()),
            Command::Man => completions::man(command()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::error(&e);
            ExitCode::FAILURE
        }
    }
}

/// The command line, with the environment and configuration file of
/// `serve` (see [`layers`]).
fn parse() -> Result<(Cli, layers::Parsed), error::CliError> {
    let parsed = layers::parse(command())?;
    match Cli::from_arg_matches(&parsed.matches) {
        Ok(cli) => Ok((cli, parsed)),
        Err(e) => e.exit(),
    }
}
