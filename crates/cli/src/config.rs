//! The command line, second stage: validated endpoints built from the raw flags. Stages receive these,
//! never the flags or the environment.

use passerelle_kafka::control::{RunAnnouncement, CONTROL_FORMAT};
use passerelle_kafka::envelope::copy_batch::SnapshotEncoding;
use passerelle_kafka::envelope::{Encoding, TableLayout};
use passerelle_kafka::topic::table_topic;
use passerelle_model::endpoint::{DbEndpoint, KafkaEndpoint};
use passerelle_model::schema::{Schema, Table, TableKind};

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
/// these and every sink decodes by them, from the same schema. A partition's rows go to its root's
/// topic, keyed by the root's key (see [`topic_root`]).
pub fn table_layouts(prefix: &str, schema: &Schema, encoding: Encoding) -> Vec<TableLayout> {
    schema
        .tables
        .iter()
        .map(|table| {
            let root = topic_root(schema, table);
            let columns = table.columns.iter().map(|column| column.name.clone()).collect();
            let types = table.columns.iter().map(|column| column.data_type.clone()).collect();
            // The root's key (its primary key, or its replica identity's index), by name: a
            // partition's own primary key is the root's, cloned.
            let key = root
                .key_positions()
                .iter()
                .filter_map(|&i| table.columns.iter().position(|c| c.name == root.columns[i].name))
                .collect();
            TableLayout::new(
                root.name.schema.clone(),
                root.name.name.clone(),
                table_topic(prefix, &root.name.schema, &root.name.name),
                columns,
                key,
            )
            .with_encoding(encoding, types)
            .with_enum_labels(&schema.enums)
        })
        .collect()
}

/// The table whose topic carries `table`'s rows: its own, or for a partition the partitioned table at
/// the top of its tree. The stream publishes a partition's changes under that root
/// (`publish_via_partition_root`), so a row's snapshot record and its changes share the root topic's
/// partition for its key, in order; and a partition attached or created during the run needs nothing.
pub fn topic_root<'a>(schema: &'a Schema, table: &'a Table) -> &'a Table {
    let mut table = table;
    while let TableKind::Partition { parent, .. } = &table.kind {
        let Some(found) = schema.tables.iter().find(|t| &t.name == parent) else { break };
        table = found;
    }
    table
}

/// Whether `table` has a topic of its own: partitions have none.
pub fn has_topic(schema: &Schema, table: &Table) -> bool {
    topic_root(schema, table).name == table.name
}

/// The run's table topics, each once, in the schema's table order.
pub fn run_topics(prefix: &str, schema: &Schema) -> Vec<String> {
    schema
        .tables
        .iter()
        .filter(|table| has_topic(schema, table))
        .map(|table| table_topic(prefix, &table.name.schema, &table.name.name))
        .collect()
}

/// How a new run's snapshot travels: as asked, else COPY text where nothing but Passerelle's sinks
/// need read it (`json-compact`, offline). The change stream of an online run is partitioned by key,
/// so its snapshot keeps per-row envelopes in the same partitions, which keeps each key's order.
pub fn snapshot_encoding(
    encoding: Encoding,
    online: bool,
    asked: Option<SnapshotEncoding>,
) -> anyhow::Result<SnapshotEncoding> {
    match asked {
        Some(SnapshotEncoding::CopyText) if encoding == Encoding::Json => anyhow::bail!(
            "--snapshot-encoding copy-text is read by Passerelle's sinks only, --encoding json by Debezium's: \
             choose --snapshot-encoding envelope, or --encoding json-compact"
        ),
        Some(SnapshotEncoding::CopyText) if online => anyhow::bail!(
            "--snapshot-encoding copy-text is for offline runs (an online run's changes are partitioned by key, and \
             its snapshot with them): choose --snapshot-encoding envelope, or migrate offline"
        ),
        Some(asked) => Ok(asked),
        None if encoding == Encoding::JsonCompact && !online => Ok(SnapshotEncoding::CopyText),
        None => Ok(SnapshotEncoding::Envelope),
    }
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
    run.snapshot_encoding.parse::<SnapshotEncoding>().map_err(|_| {
        anyhow::anyhow!(
            "the run's snapshot travels as {:?}, which this Passerelle cannot read; upgrade it",
            run.snapshot_encoding
        )
    })?;
    run.encoding.parse().map_err(|_| {
        anyhow::anyhow!(
            "the run's events are encoded as {:?}, which this Passerelle cannot read; upgrade it",
            run.encoding
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snapshot_travels_as_copy_text_where_only_passerelle_reads_it() {
        let (compact, json) = (Encoding::JsonCompact, Encoding::Json);
        assert_eq!(snapshot_encoding(compact, false, None).unwrap(), SnapshotEncoding::CopyText);
        assert_eq!(snapshot_encoding(compact, true, None).unwrap(), SnapshotEncoding::Envelope);
        assert_eq!(snapshot_encoding(json, false, None).unwrap(), SnapshotEncoding::Envelope);
        let asked = Some(SnapshotEncoding::Envelope);
        assert_eq!(snapshot_encoding(compact, false, asked).unwrap(), SnapshotEncoding::Envelope);
        let copy_text = Some(SnapshotEncoding::CopyText);
        assert!(snapshot_encoding(json, false, copy_text).unwrap_err().to_string().contains("Debezium"));
        assert!(snapshot_encoding(compact, true, copy_text).unwrap_err().to_string().contains("offline"));
    }
}
