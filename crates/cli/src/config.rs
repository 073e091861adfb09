//! The command line, second stage: validated endpoints built from the raw flags. Stages receive these,
//! never the flags or the environment.

use passerelle_kafka::control::{RunAnnouncement, CONTROL_FORMAT};
use passerelle_kafka::envelope::{Encoding, TableLayout};
use passerelle_kafka::topic::table_topic;
use passerelle_model::endpoint::{DbEndpoint, KafkaEndpoint};
use passerelle_model::schema::Schema;

use crate::args::EndpointArgs;

pub struct Endpoints {
    pub source: DbEndpoint,
    pub kafka: KafkaEndpoint,
    pub target: DbEndpoint,
}

impl Endpoints {
    pub fn from_args(args: &EndpointArgs) -> anyhow::Result<Endpoints> {
        Ok(Endpoints {
            source: args.databases.source.endpoint()?,
            kafka: args.kafka.endpoint()?,
            target: args.databases.target.endpoint()?,
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

impl NamingArgs {
    pub fn prefix_or_default(&self, source: &DbEndpoint) -> String {
        self.topic_prefix
            .clone()
            .unwrap_or_else(|| format!("passerelle_{}", source.database.as_deref().unwrap_or(&source.user)))
    }

    /// A process without the source URL cannot derive the default prefix.
    pub fn required_prefix(&self) -> anyhow::Result<String> {
        self.topic_prefix.clone().ok_or_else(|| {
            anyhow::anyhow!("name the migration with --topic-prefix: the prefix its source writes under")
        })
    }
}

/// A migration's identity across processes and restarts, derived from its topic prefix.
pub struct Names {
    pub migration: String,
    /// Replication slot and publication: lowercase letters, digits and underscores only.
    pub slot: String,
}

impl Names {
    pub fn new(prefix: String) -> Names {
        let mut slot: String =
            prefix.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
        if !slot.starts_with("passerelle") {
            slot = format!("passerelle_{slot}");
        }
        slot.truncate(63);
        Names { migration: prefix, slot }
    }
}

/// How each table's events look on its topic `<prefix>.<schema>.<table>`: the source encodes by
/// these and every sink decodes by them, from the same schema.
pub fn table_layouts(prefix: &str, schema: &Schema, encoding: Encoding) -> Vec<TableLayout> {
    schema
        .tables
        .iter()
        .map(|table| {
            let columns = table.columns.iter().map(|column| column.name.clone()).collect();
            let types = table.columns.iter().map(|column| column.data_type.clone()).collect();
            TableLayout::new(
                table.name.schema.clone(),
                table.name.name.clone(),
                table_topic(prefix, &table.name.schema, &table.name.name),
                columns,
                table.key_positions(),
            )
            .with_encoding(encoding, types)
            .with_enum_labels(&schema.enums)
        })
        .collect()
}

/// How the run's events are encoded, as its announcement says; an error for a run whose control
/// records are of a format this Passerelle cannot read.
pub fn run_encoding(run: &RunAnnouncement) -> anyhow::Result<Encoding> {
    if run.format > CONTROL_FORMAT {
        anyhow::bail!(
            "run {} was announced in control format {} by {}; this Passerelle reads formats up to {CONTROL_FORMAT}: \
             upgrade it",
            run.run_id,
            run.format,
            run.version
        );
    }
    run.encoding.parse().map_err(|_| {
        anyhow::anyhow!(
            "the run's events are encoded as {:?}, which this Passerelle cannot read; upgrade it",
            run.encoding
        )
    })
}
