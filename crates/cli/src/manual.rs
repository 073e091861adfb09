//! `passerelle completions SHELL` and `passerelle man`: shell completions and man pages generated from
//! the command line's own definition (clap_complete, clap_mangen), so they never drift from it. Both
//! use the built-in defaults, not a configuration file's.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;

use crate::args::Args;

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell: source the output from its startup file, e.g. `passerelle completions bash >
    /// ~/.local/share/bash-completion/completions/passerelle`
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write passerelle.1 and a passerelle-COMMAND.1 for each command into DIR, instead of printing
    /// passerelle(1) on stdout
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn completions(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut command = Args::command();
    clap_complete::generate(args.shell, &mut command, "passerelle", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

pub fn man(args: ManArgs) -> anyhow::Result<ExitCode> {
    let mut command = Args::command();
    command.build();
    let Some(dir) = args.dir else {
        let mut out = std::io::stdout().lock();
        clap_mangen::Man::new(command).render(&mut out)?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut pages = vec![("passerelle.1".to_string(), command.clone())];
    for sub in command.get_subcommands().filter(|sub| sub.get_name() != "help") {
        let name = format!("passerelle-{}", sub.get_name());
        pages.push((format!("{name}.1"), sub.clone().name(name)));
    }
    for (file, page) in pages {
        let path = dir.join(&file);
        let mut text = Vec::new();
        clap_mangen::Man::new(page).render(&mut text)?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!("passerelle: man pages written into {}: man -l {}/passerelle.1", dir.display(), dir.display());
    Ok(ExitCode::SUCCESS)
}
