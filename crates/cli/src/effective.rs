//! `passerelle config [COMMAND [FLAGS...]]`: the effective configuration of a command, each value with
//! where it came from: `flag --jobs`, `env PASSERELLE_SOURCE`, `passerelle.toml:4` or `default`.
//!
//! The command line is parsed as the command itself would parse it (the same definition, with the
//! configuration file's defaults, see `config_file`), only with nothing required, so that what is
//! missing shows as not set instead of stopping the listing. Without a command, every command's.
//! The text output is itself a configuration file (the global options, then one table per command).
//! Secrets never show: a URL's password and secret parameters, and secret Kafka properties, are `***`.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};
use passerelle_model::endpoint::{is_secret_property, masked_url};
use serde::Serialize;

use crate::args::Cli;

#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// Print the configuration as JSON on stdout
    #[arg(long)]
    pub json: bool,
    /// The command whose configuration to print, then any of its flags, as it would be run
    /// [default: every command]
    #[arg(value_name = "COMMAND", trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub command: Vec<OsString>,
}

/// One option's effective value.
#[derive(Serialize)]
struct Setting {
    key: String,
    /// Its values as the command line would give them, secrets masked; empty when not set.
    values: Vec<String>,
    list: bool,
    /// `flag --key`, `env VAR`, `FILE:LINE` or `default`; `not set` when nothing gives it.
    source: String,
}

#[derive(Serialize)]
struct Effective {
    file: Option<String>,
    global: Vec<Setting>,
    commands: Vec<CommandSettings>,
}

#[derive(Serialize)]
struct CommandSettings {
    command: String,
    settings: Vec<Setting>,
}

pub fn run(args: ConfigArgs, cli: &Cli) -> anyhow::Result<ExitCode> {
    let mut command = relaxed(cli.command.clone());
    command.build();
    let names: Vec<String> = match args.command.first() {
        Some(name) => vec![name.to_string_lossy().into_owned()],
        None => command
            .get_subcommands()
            .map(|sub| sub.get_name().to_string())
            .filter(|n| n != "config" && n != "help")
            .collect(),
    };
    let mut effective = Effective {
        file: cli.origins.file.as_ref().map(|path| path.display().to_string()),
        global: Vec::new(),
        commands: Vec::new(),
    };
    let mut json = args.json;
    for name in names {
        let Some(sub) = command.find_subcommand(&name) else {
            let known: Vec<&str> = command.get_subcommands().map(Command::get_name).collect();
            anyhow::bail!("{name:?} is not a command; the commands are {}", known.join(", "));
        };
        let mut words = vec![OsString::from("passerelle"), OsString::from(&name)];
        words.extend(args.command.iter().skip(1).cloned());
        let matches = command.clone().try_get_matches_from(words).unwrap_or_else(|error| error.exit());
        let Some((_, sub_matches)) = matches.subcommand() else { continue };
        json |= sub_matches.try_get_one::<bool>("json").ok().flatten() == Some(&true)
            && sub_matches.value_source("json") == Some(ValueSource::CommandLine);
        let mut settings = Vec::new();
        let mut global = Vec::new();
        for arg in sub.get_arguments() {
            let Some(setting) = setting(arg, sub_matches, &name, cli) else { continue };
            if arg.is_global_set() {
                global.push(setting);
            } else {
                settings.push(setting);
            }
        }
        if effective.global.is_empty() {
            effective.global = global;
        }
        effective.commands.push(CommandSettings { command: name, settings });
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&effective)?);
    } else {
        print!("{}", render(&effective));
    }
    Ok(ExitCode::SUCCESS)
}

/// The same definition with nothing required.
fn relaxed(command: Command) -> Command {
    command.mut_subcommands(|sub| sub.mut_args(|arg| arg.required(false)))
}

fn setting(arg: &Arg, matches: &ArgMatches, command: &str, cli: &Cli) -> Option<Setting> {
    let key = arg.get_long()?;
    if matches!(arg.get_action(), ArgAction::Help | ArgAction::HelpLong | ArgAction::HelpShort | ArgAction::Version)
        || key == "config"
    {
        return None;
    }
    let id = arg.get_id().as_str();
    let values: Vec<String> = match arg.get_action() {
        ArgAction::Count => vec![matches.get_count(id).to_string()],
        _ => matches
            .get_raw(id)
            .map(|raw| raw.map(|value| mask(key, &value.to_string_lossy())).collect())
            .unwrap_or_default(),
    };
    let source = match matches.value_source(id) {
        Some(ValueSource::CommandLine) => format!("flag --{key}"),
        Some(ValueSource::EnvVariable) => {
            format!("env {}", arg.get_env().map(|var| var.to_string_lossy()).unwrap_or_default())
        }
        Some(ValueSource::DefaultValue) => match cli.origins.of(command, id) {
            Some(origin) => origin.to_string(),
            None => "default".to_string(),
        },
        _ if values.is_empty() => "not set".to_string(),
        _ => "default".to_string(),
    };
    Some(Setting { key: key.to_string(), values, list: matches!(arg.get_action(), ArgAction::Append), source })
}

/// A value as it may be printed.
fn mask(key: &str, value: &str) -> String {
    match key {
        "source" | "target" => masked_url(value),
        "kafka-option" => match value.split_once('=') {
            Some((property, _)) if is_secret_property(property) => format!("{property}=***"),
            _ => value.to_string(),
        },
        _ => value.to_string(),
    }
}

fn render(effective: &Effective) -> String {
    let mut out = String::new();
    match &effective.file {
        Some(file) => out.push_str(&format!("# the effective configuration; configuration file: {file}\n")),
        None => out.push_str("# the effective configuration; no configuration file\n"),
    }
    out.push_str("# each value's source: a flag, an environment variable, the file (FILE:LINE) or the default\n");
    render_settings(&mut out, &effective.global);
    for command in &effective.commands {
        out.push_str(&format!("\n[{}]\n", command.command));
        render_settings(&mut out, &command.settings);
    }
    if std::env::var_os("PASSERELLE_KAFKA_SASL_PASSWORD").is_some() {
        out.push_str("\n# Kafka's sasl.password = \"***\"  # env PASSERELLE_KAFKA_SASL_PASSWORD\n");
    }
    out
}

fn render_settings(out: &mut String, settings: &[Setting]) {
    let lines: Vec<(String, &str)> = settings
        .iter()
        .map(|setting| {
            let line = match (setting.values.as_slice(), setting.list) {
                ([], _) => format!("# {} =", setting.key),
                (values, true) => {
                    let items: Vec<String> = values.iter().map(|value| toml_value(value)).collect();
                    format!("{} = [{}]", setting.key, items.join(", "))
                }
                ([value, ..], false) => format!("{} = {}", setting.key, toml_value(value)),
            };
            (line, setting.source.as_str())
        })
        .collect();
    let width = lines.iter().map(|(line, _)| line.len()).max().unwrap_or_default();
    for (line, source) in lines {
        out.push_str(&format!("{line:width$}  # {source}\n"));
    }
}

/// Numbers and booleans bare, the rest a TOML string.
fn toml_value(value: &str) -> String {
    if value.parse::<i64>().is_ok() || value == "true" || value == "false" {
        return value.to_string();
    }
    toml::Value::String(value.to_string()).to_string()
}
