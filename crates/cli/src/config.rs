//! The command line, second stage: validated endpoints built from the raw flags. Stages receive these,
//! never the flags or the environment.

use passerelle_model::endpoint::{DbEndpoint, KafkaEndpoint};

use crate::args::EndpointArgs;

pub struct Endpoints {
    pub source: DbEndpoint,
    pub kafka: KafkaEndpoint,
    pub target: DbEndpoint,
}

impl Endpoints {
    pub fn from_args(args: &EndpointArgs) -> anyhow::Result<Endpoints> {
        Ok(Endpoints {
            source: DbEndpoint::parse_postgres(&args.databases.source)?,
            kafka: KafkaEndpoint::parse(&args.kafka)?,
            target: DbEndpoint::parse_mysql(&args.databases.target)?,
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct NamingArgs {
    /// Names the migration: its topics are PREFIX.<schema>.<table>, its slot and publication derive
    /// from it [default: passerelle_<source database>]
    #[arg(long, value_name = "PREFIX")]
    pub topic_prefix: Option<String>,
}

/// A migration's identity across processes and restarts, derived from its topic prefix.
pub struct Names {
    pub migration: String,
    /// Replication slot and publication: lowercase letters, digits and underscores only.
    pub slot: String,
}

impl Names {
    pub fn new(args: &NamingArgs, source: &DbEndpoint) -> Names {
        let prefix = args
            .topic_prefix
            .clone()
            .unwrap_or_else(|| format!("passerelle_{}", source.database.as_deref().unwrap_or(&source.user)));
        let mut slot: String =
            prefix.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
        if !slot.starts_with("passerelle") {
            slot = format!("passerelle_{slot}");
        }
        slot.truncate(63);
        Names { migration: prefix, slot }
    }
}
