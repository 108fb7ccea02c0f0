//! `lienthong completions SHELL` and `lienthong man`: shell completions and
//! a man page, generated from the same command tree as `--help`.

use clap::{Args, ValueEnum};

use super::error::{CliError, Result};
use super::output;

#[derive(Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell to complete for; e.g. `lienthong completions bash >
    /// ~/.local/share/bash-completion/completions/lienthong`.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn completions(args: CompletionsArgs, mut command: clap::Command) -> Result {
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "lienthong", &mut script);
    output::write_bytes(&script);
    Ok(())
}

/// The man page of `lienthong` (roff), e.g. `lienthong man >
/// ~/.local/share/man/man1/lienthong.1`.
pub fn man(command: clap::Command) -> Result {
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut page)
        .map_err(|e| CliError::io("cannot render the man page", &e))?;
    output::write_bytes(&page);
    Ok(())
}
