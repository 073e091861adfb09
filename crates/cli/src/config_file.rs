//! The configuration file: TOML whose keys are the commands' long flags (`topic-prefix = "shop"`,
//! `jobs = 4`, `map = ["bookings=demo"]`), at the top level for every command that takes the flag
//! and in a `[command]` table for that command alone (`[sink] jobs = 8`).
//!
//! It is read before the command line is parsed, and each value it gives becomes that flag's default
//! in the clap definition, so one mechanism serves every command and the precedence is clap's own:
//! a flag, then its environment variable, then the file, then the built-in default. Which one gave a
//! value is clap's `value_source`; a default that came from the file is told apart by [`Origins`].
//!
//! The file is `--config FILE`, else `PASSERELLE_CONFIG`, else `passerelle.toml` in the working
//! directory when there is one. A key no command knows is refused (a misspelt `jbos` would otherwise
//! be silently ignored), and so is a value the flag would refuse, both by file and line.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Arg, ArgAction, Command};
use toml::de::{DeTable, DeValue};

/// The file's name looked for in the working directory when neither `--config` nor
/// `PASSERELLE_CONFIG` names one.
pub const DEFAULT_NAME: &str = "passerelle.toml";

/// Where the defaults that came from the file came from, per command and argument id.
#[derive(Debug, Default)]
pub struct Origins {
    pub file: Option<PathBuf>,
    /// (subcommand, argument id) → `file:line`. The root's own arguments have the subcommand "".
    by_arg: BTreeMap<(String, String), String>,
}

impl Origins {
    /// `passerelle.toml:4` when the file gave this argument of this command its value.
    pub fn of(&self, command: &str, id: &str) -> Option<&str> {
        self.by_arg
            .get(&(command.to_string(), id.to_string()))
            .or_else(|| self.by_arg.get(&(String::new(), id.to_string())))
            .map(String::as_str)
    }
}

/// One value of the file: the flag's long name, its values as the command line would give them,
/// and the line it is on.
struct Entry {
    key: String,
    values: Vec<String>,
    line: usize,
}

/// The file's entries: the top level's, and each `[command]` table's.
struct ConfigFile {
    top: Vec<Entry>,
    sections: BTreeMap<String, (usize, Vec<Entry>)>,
}

/// The configuration file this command line names, if any: `--config FILE` (or `--config=FILE`)
/// before a `--`, else `PASSERELLE_CONFIG`, else `passerelle.toml` in the working directory.
pub fn locate(argv: &[OsString]) -> Option<(PathBuf, bool)> {
    let mut args = argv.iter().skip(1);
    while let Some(arg) = args.next() {
        let Some(arg) = arg.to_str() else { continue };
        if arg == "--" {
            break;
        }
        if arg == "--config" {
            return args.next().map(|path| (PathBuf::from(path), true));
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some((PathBuf::from(path), true));
        }
    }
    if let Some(path) = std::env::var_os("PASSERELLE_CONFIG") {
        return Some((PathBuf::from(path), true));
    }
    let default = PathBuf::from(DEFAULT_NAME);
    default.is_file().then_some((default, false))
}

/// Reads the file and makes its values the defaults of `command`'s flags.
pub fn apply(command: Command, path: &Path) -> anyhow::Result<(Command, Origins)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file = parse(&text).with_context(|| format!("{} is not a configuration file", path.display()))?;
    let name = path.display().to_string();
    let mut origins = Origins { file: Some(path.to_path_buf()), by_arg: BTreeMap::new() };
    let mut command = command;
    let mut used = BTreeSet::new();

    // The root's own flags (--verbose, --retry-for), which every command takes.
    let root: Vec<Arg> = command.get_arguments().cloned().collect();
    for entry in &file.top {
        if let Some(arg) = root.iter().find(|arg| arg.get_long() == Some(&entry.key)) {
            refuse_config_key(&name, entry)?;
            validate(&name, "", arg, entry)?;
            let id = arg.get_id().clone();
            command = command.mut_args(|arg| if *arg.get_id() == id { with_file_value(arg, entry) } else { arg });
            origins.by_arg.insert((String::new(), arg.get_id().to_string()), format!("{name}:{}", entry.line));
            used.insert(entry.key.clone());
        }
    }

    let subcommands: Vec<Command> = command.get_subcommands().cloned().collect();
    for (section, (line, entries)) in &file.sections {
        let Some(sub) = subcommands.iter().find(|sub| sub.get_name() == section) else {
            let known: Vec<&str> = subcommands.iter().map(Command::get_name).collect();
            anyhow::bail!("{name}:{line}: [{section}] is not a command; the commands are {}", known.join(", "));
        };
        for entry in entries {
            if root.iter().any(|arg| arg.get_long() == Some(&entry.key)) {
                anyhow::bail!(
                    "{name}:{}: {} applies to every command: put it at the top of the file, not in [{section}]",
                    entry.line,
                    entry.key
                );
            }
            if find(sub, &entry.key).is_none() {
                anyhow::bail!(
                    "{name}:{}: passerelle {section} has no --{}; its options are {}",
                    entry.line,
                    entry.key,
                    longs(sub).join(", ")
                );
            }
        }
    }
    for sub in &subcommands {
        let section = file.sections.get(sub.get_name()).map(|(_, entries)| entries.as_slice()).unwrap_or_default();
        let mut changes = Vec::new();
        for arg in sub.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            let entry = section.iter().find(|entry| entry.key == long).or_else(|| {
                let top = file.top.iter().find(|entry| entry.key == long);
                if top.is_some() {
                    used.insert(long.to_string());
                }
                top
            });
            let Some(entry) = entry else { continue };
            validate(&name, sub.get_name(), arg, entry)?;
            origins
                .by_arg
                .insert((sub.get_name().to_string(), arg.get_id().to_string()), format!("{name}:{}", entry.line));
            changes.push((arg.get_id().clone(), entry));
        }
        // In place, so that --help keeps the options' order.
        command = command.mut_subcommand(sub.get_name(), |sub| {
            sub.mut_args(|arg| match changes.iter().find(|(id, _)| id == arg.get_id()) {
                Some((_, entry)) => with_file_value(arg, entry),
                None => arg,
            })
        });
    }
    if let Some(entry) = file.top.iter().find(|entry| !used.contains(&entry.key)) {
        let mut known: BTreeSet<&str> = subcommands.iter().flat_map(longs).collect();
        known.extend(root.iter().filter_map(Arg::get_long).filter(|long| *long != "config"));
        let known: Vec<&str> = known.into_iter().collect();
        anyhow::bail!(
            "{name}:{}: no command has --{}; the keys are the commands' long options: {}",
            entry.line,
            entry.key,
            known.join(", ")
        );
    }
    Ok((command, origins))
}

/// The file names itself only on the command line or in the environment.
fn refuse_config_key(name: &str, entry: &Entry) -> anyhow::Result<()> {
    if entry.key == "config" {
        anyhow::bail!("{name}:{}: config names the file itself: give it as --config or PASSERELLE_CONFIG", entry.line);
    }
    Ok(())
}

fn find<'a>(sub: &'a Command, long: &str) -> Option<&'a Arg> {
    sub.get_arguments().find(|arg| arg.get_long() == Some(long))
}

fn longs(sub: &Command) -> Vec<&str> {
    sub.get_arguments().filter_map(Arg::get_long).filter(|long| !matches!(*long, "help" | "version")).collect()
}

/// The file's value becomes the flag's default: below the command line and the environment, and it
/// satisfies a flag that is otherwise required.
fn with_file_value(arg: Arg, entry: &Entry) -> Arg {
    arg.default_values(entry.values.clone()).required(false)
}

/// Parses the file's value as the flag itself would, so that a bad one is named by file and line
/// rather than as if it had been typed.
fn validate(name: &str, command: &str, arg: &Arg, entry: &Entry) -> anyhow::Result<()> {
    let line = entry.line;
    let key = &entry.key;
    if matches!(arg.get_action(), ArgAction::Help | ArgAction::Version | ArgAction::HelpShort | ArgAction::HelpLong) {
        anyhow::bail!("{name}:{line}: --{key} is not an option to configure");
    }
    if entry.values.len() != 1 && !matches!(arg.get_action(), ArgAction::Append) {
        anyhow::bail!("{name}:{line}: --{key} takes one value, not a list");
    }
    // The flag alone: its parser and action, none of its relations to the command's other flags.
    let probe = Arg::new(arg.get_id().clone())
        .long(key.clone())
        .value_parser(arg.get_value_parser().clone())
        .action(arg.get_action().clone());
    let mut words = vec![OsString::from("passerelle")];
    for value in &entry.values {
        match arg.get_action() {
            // A flag's value is whether it is given.
            ArgAction::SetTrue | ArgAction::SetFalse if value == "true" || value == "false" => {}
            ArgAction::SetTrue | ArgAction::SetFalse => {
                anyhow::bail!("{name}:{line}: --{key} is true or false, not {value:?}")
            }
            ArgAction::Count if value.parse::<u8>().is_ok() => {}
            ArgAction::Count => anyhow::bail!("{name}:{line}: --{key} is a count (0, 1, 2), not {value:?}"),
            _ => words.push(OsString::from(format!("--{key}={value}"))),
        }
    }
    if let Err(error) = Command::new("passerelle").no_binary_name(false).arg(probe).try_get_matches_from(words) {
        let text = error.to_string();
        let first = text.lines().next().unwrap_or_default().trim_start_matches("error: ");
        let command = if command.is_empty() { String::new() } else { format!(" (passerelle {command})") };
        anyhow::bail!("{name}:{line}: {first}{command}");
    }
    Ok(())
}

fn parse(text: &str) -> anyhow::Result<ConfigFile> {
    let document = DeTable::parse(text).map_err(|error| anyhow::anyhow!("{error}"))?;
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let mut file = ConfigFile { top: Vec::new(), sections: BTreeMap::new() };
    for (key, value) in document.get_ref() {
        let line = line_of(key.span().start);
        match value.get_ref() {
            DeValue::Table(table) => {
                let mut entries = Vec::new();
                for (key, value) in table {
                    entries.push(entry(key.get_ref(), value.get_ref(), line_of(key.span().start))?);
                }
                file.sections.insert(key.get_ref().to_string(), (line, entries));
            }
            value => file.top.push(entry(key.get_ref(), value, line)?),
        }
    }
    Ok(file)
}

fn entry(key: &str, value: &DeValue, line: usize) -> anyhow::Result<Entry> {
    let values = match value {
        DeValue::Array(items) => {
            items.iter().map(|item| scalar(key, item.get_ref(), line)).collect::<anyhow::Result<Vec<_>>>()?
        }
        value => vec![scalar(key, value, line)?],
    };
    Ok(Entry { key: key.to_string(), values, line })
}

/// A value as the command line would spell it.
fn scalar(key: &str, value: &DeValue, line: usize) -> anyhow::Result<String> {
    Ok(match value {
        DeValue::String(text) => text.to_string(),
        DeValue::Integer(integer) => integer.to_string(),
        DeValue::Float(float) => float.to_string(),
        DeValue::Boolean(flag) => flag.to_string(),
        DeValue::Datetime(time) => time.to_string(),
        DeValue::Array(_) | DeValue::Table(_) => {
            anyhow::bail!("line {line}: {key} holds a {}, where a value or a list of values goes", value.type_str())
        }
    })
}
