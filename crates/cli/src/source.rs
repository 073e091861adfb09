//! The source side of a migration, PostgreSQL to Kafka, and `passerelle source`, which runs it alone:
//! read the catalog, announce the run on the control topic, create the slot with its exported
//! snapshot, copy every table through Kafka, then say where every partition ended.
//!
//! Resumable: a run whose snapshot is complete in Kafka, and whose slot still exists, is not copied
//! again. An interrupted one starts over with a new run id, slot, snapshot and topics: the old
//! snapshot died with its connection, so nothing copied under it can be continued consistently.

use std::collections::BTreeMap;
use std::future::Future;
use std::process::ExitCode;

use anyhow::Context;
use passerelle_kafka::control::{self, ControlState, RunAnnouncement, SnapshotDone, TargetServer, TypeMapping};
use passerelle_kafka::envelope::copy_batch::SnapshotEncoding;
use passerelle_kafka::envelope::{Encoding, FORMAT_VERSION};
use passerelle_kafka::producer::Producer;
use passerelle_kafka::topic::{create_control_topic, end_offsets, recreate_topics, require_topics, TopicLayout};
use passerelle_model::endpoint::{DbEndpoint, KafkaEndpoint};
use passerelle_model::event::Lsn;
use passerelle_model::schema::{QualifiedName, Schema, Table};
use passerelle_pg::PgError;
use tokio::sync::oneshot;

use crate::args::{DurabilityArgs, KafkaBrokers, SourceUrl};
use crate::check::refuse_failures;
use crate::config::{run_encoding, run_topics, snapshot_encoding, table_layouts, topic_root, Names, NamingArgs};
use crate::failure::{self, Holder};
use crate::mapping::SelectionArgs;
use crate::progress::{Progress, Track};
use crate::report::{PhaseClock, RunSummary, TableSummary};
use crate::retry::{self, Backoff};
use crate::selection::Patterns;
use crate::snapshot::{self, SnapshotSource};
use crate::stream::{self, Streaming};

#[derive(Debug, clap::Args)]
pub struct SourceArgs {
    #[command(flatten)]
    pub source: SourceUrl,
    #[command(flatten)]
    pub kafka: KafkaBrokers,
    #[command(flatten)]
    pub selection: SelectionArgs,
    #[command(flatten)]
    pub naming: NamingArgs,
    #[command(flatten)]
    pub topics: TopicArgs,
    /// After the snapshot, stream every change until `passerelle cutover`
    #[arg(long)]
    pub online: bool,
    /// Copy workers on the source
    #[arg(long, default_value_t = crate::args::machine_parallelism(), value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    #[command(flatten)]
    pub rate: crate::args::SourceRateArg,
    /// Print the summary as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// How the topics of a migration are made and what their events look like.
#[derive(Debug, clap::Args)]
pub struct TopicArgs {
    #[command(flatten)]
    pub shape: TopicShape,
    /// Use the topics created beforehand (the commands `passerelle plan` writes to kafka-topics.sh),
    /// for a principal that may not create or delete topics: Passerelle then creates and deletes none
    #[arg(long)]
    pub existing_topics: bool,
    /// How events are encoded: json-compact (schemas once, on the control topic) or json (Kafka
    /// Connect JSON with every message's schema, what a Debezium JDBC sink reads)
    #[arg(long, default_value_t = Encoding::JsonCompact)]
    pub encoding: Encoding,
    /// How the snapshot's rows travel: copy-text (batches of PostgreSQL COPY text, one record each,
    /// partitioned by range; the default for offline json-compact runs) or envelope (one event per
    /// row, partitioned by key)
    #[arg(long)]
    pub snapshot_encoding: Option<SnapshotEncoding>,
}

impl TopicArgs {
    pub fn layout(&self, prefix: &str) -> TopicLayout {
        self.shape.layout(prefix)
    }
}

/// How each topic is created: what `migrate` and `source` create, and `plan` writes the commands for.
#[derive(Debug, clap::Args)]
pub struct TopicShape {
    /// Partitions of each topic (a table without a primary key always uses one)
    #[arg(long, default_value_t = i32::from(crate::args::machine_parallelism()), value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub partitions: i32,
    #[command(flatten)]
    pub durability: DurabilityArgs,
}

impl TopicShape {
    pub fn layout(&self, prefix: &str) -> TopicLayout {
        TopicLayout {
            prefix: prefix.to_string(),
            partitions: self.partitions,
            replication: self.durability.replication_factor,
            retention_ms: self.durability.retention_ms,
        }
    }
}

/// What the source side needs to know.
pub struct SourceSide<'a> {
    pub endpoint: &'a DbEndpoint,
    pub kafka: &'a KafkaEndpoint,
    pub schemas: Vec<String>,
    pub names: &'a Names,
    pub layout: TopicLayout,
    /// The topics were created beforehand: none is created or deleted (`--existing-topics`).
    pub existing_topics: bool,
    pub encoding: Encoding,
    pub snapshot_encoding: SnapshotEncoding,
    pub jobs: usize,
    /// The most COPY bytes a second the snapshot reads (`--max-source-rate`).
    pub max_source_rate: Option<u64>,
    pub online: bool,
    /// Each schema's target database, announced with the run (empty when the target is not known).
    pub target_databases: BTreeMap<String, String>,
    /// The run this process is the source of, once it announced it or streams it.
    pub holder: &'a Holder,
    /// The target server, announced with the run (`None` when the target is not known).
    pub target_server: Option<TargetServer>,
    /// How lossy types are held in the target, announced with the run (`None` when the target is not
    /// known: the first sink fixes it).
    pub type_mapping: Option<TypeMapping>,
    /// The tables and views selected within the schemas, announced with the run.
    pub patterns: crate::selection::Patterns,
}

/// The run whose snapshot is now complete in Kafka.
pub struct Copied {
    pub run_id: String,
    /// Display names of the tables, in the run's order.
    pub tables: Vec<String>,
    /// Rows and COPY bytes per table that this call copied: zeros when the run was already complete.
    pub rows: Vec<u64>,
    pub bytes: Vec<u64>,
}

pub async fn run(args: SourceArgs) -> anyhow::Result<ExitCode> {
    let endpoint = args.source.endpoint()?;
    let kafka = args.kafka.endpoint()?;
    let names = Names::new(args.naming.prefix_or_default(&endpoint));
    crate::metrics::watch_slot(&endpoint, &names.slot);
    let settled = crate::settings::settle(&kafka, &names.migration, &args.selection, None).await?;
    let holder = Holder::default();
    let side = SourceSide {
        holder: &holder,
        endpoint: &endpoint,
        kafka: &kafka,
        schemas: settled.schemas,
        target_databases: settled.databases,
        target_server: None,
        type_mapping: None,
        patterns: settled.patterns,
        names: &names,
        layout: args.topics.layout(&names.migration),
        existing_topics: args.topics.existing_topics,
        encoding: args.topics.encoding,
        snapshot_encoding: snapshot_encoding(args.topics.encoding, args.online, args.topics.snapshot_encoding)?,
        jobs: usize::from(args.jobs),
        online: args.online,
        max_source_rate: args.rate.max_source_rate,
    };
    let durability = args.topics.shape.durability.durability();
    let kafka_findings =
        retry::retry("checking the topics' replication", || passerelle_kafka::preflight::topics(&kafka, durability))
            .await?;
    refuse_failures(&[passerelle_pg::preflight::run(&endpoint, &side.schemas).await, kafka_findings].concat())?;
    let clock = PhaseClock::new();
    let progress = Progress::new(Track::Copied);
    // A snapshot whose PostgreSQL session ended cannot go on under its exported snapshot: it starts
    // over as a new run, which the sinks follow, within --retry-for (as `migrate` does).
    let mut restarts = Backoff::new("copying the snapshot");
    let copying = async {
        loop {
            match copy_snapshot(&side, &progress, None).await {
                Ok(copied) => break Ok(copied),
                Err(error) if retry::waits_for(&error) == Some("PostgreSQL") => {
                    restarts.wait(error).await?;
                    progress.restart();
                }
                Err(error) => break Err(error),
            }
        }
    };
    let copied = failure::recorded(&kafka, &names.migration, &holder, copying.await).await?;
    progress.finish();
    clock.lap("snapshot");
    let changes = failure::recorded(&kafka, &names.migration, &holder, stream_changes(&side).await).await?;
    if changes.is_some() {
        clock.lap("stream");
    }
    let tables = copied
        .tables
        .iter()
        .zip(copied.rows.iter().zip(&copied.bytes))
        .map(|(table, (rows, bytes))| TableSummary {
            table: table.clone(),
            target: None,
            rows: *rows,
            copy_bytes: *bytes,
        })
        .collect();
    let mut summary = RunSummary::new(names.migration.clone(), copied.run_id, clock, tables);
    summary.changes = changes.unwrap_or(0);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", summary.render("copied"));
        println!(
            "the snapshot is in Kafka; the replication slot {} stays for the online mode: drop it with passerelle cleanup",
            names.slot
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Copies the snapshot into Kafka unless the current run already did; sends the run id on
/// `announced` as soon as it is known, so that a sink in the same process follows this run.
pub async fn copy_snapshot(
    side: &SourceSide<'_>,
    progress: &Progress,
    announced: Option<oneshot::Sender<String>>,
) -> anyhow::Result<Copied> {
    let source = side.endpoint;
    let control_topic = side.layout.control_topic();
    let state = retry::retry("reading the control topic", || control::read(side.kafka, &control_topic)).await?;
    let client = retry::retry("connecting to the source", || passerelle_pg::connect(source)).await?;
    if let ControlState { run: Some(run), snapshot_done: Some(done), stream_done, .. } = &state {
        // An offline run, or an online one past its cutover, streams no more: its slot may be gone
        // (migrate drops it once verified).
        let streams = run.online && stream_done.is_none();
        if !streams || passerelle_pg::slot::slot_info(&client, source, &side.names.slot).await?.is_some() {
            let tables: Vec<String> = run.schema.tables.iter().map(|table| table.name.to_string()).collect();
            progress.tables(&tables, &done.rows.iter().map(|rows| Some(*rows)).collect::<Vec<_>>());
            // A run that streams is taken up once its slot streams here (`stream`): a process that
            // finds another holding the slot must not take it, nor record its failure.
            if !streams {
                failure::take_up(side.holder, side.kafka, &state, &control_topic, &run.run_id).await?;
            }
            if let Some(announced) = announced {
                let _ = announced.send(run.run_id.clone());
            }
            let zeros = vec![0; tables.len()];
            return Ok(Copied { run_id: run.run_id.clone(), tables, rows: zeros.clone(), bytes: zeros });
        }
        eprintln!(
            "passerelle: the replication slot {} of run {} is gone, so changes since its snapshot are lost; starting over",
            side.names.slot, run.run_id
        );
    } else if let Some(run) = &state.run {
        eprintln!("passerelle: the snapshot of run {} was interrupted; starting it over", run.run_id);
    }

    let mut schema = on_source(side, "reading the catalog", || async {
        let mut client = passerelle_pg::connect(source).await?;
        passerelle_pg::catalog::read(&mut client, source, &side.schemas).await
    })
    .await?;
    side.patterns.apply(&mut schema)?;
    // A partition's changes stream under its root, whose rows the stream must tell apart.
    let mut unidentified: Vec<&QualifiedName> = schema
        .tables
        .iter()
        .map(|table| topic_root(&schema, table))
        .filter(|root| !root.identifies_rows())
        .map(|root| &root.name)
        .collect();
    unidentified.dedup();
    if let Some(first) = unidentified.first().filter(|_| side.online) {
        anyhow::bail!(
            "{} {} no primary key and no replica identity that tells its rows apart, so its changes cannot be \
             streamed; ALTER TABLE {first} REPLICA IDENTITY FULL (or USING INDEX a unique index), add a primary key, \
             or migrate offline (without --online) while the application is stopped",
            unidentified.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            if unidentified.len() == 1 { "has" } else { "have" }
        );
    }
    let tables = schema.tables.clone();
    let layouts = table_layouts(&side.layout.prefix, &schema, side.encoding);
    let topics = run_topics(&side.layout.prefix, &schema);

    // What an earlier run left: its slot, publication and topics (its tables may have differed).
    passerelle_pg::slot::drop_slot(&client, source, &side.names.slot).await?;
    passerelle_pg::slot::drop_publication(&client, source, &side.names.slot).await?;
    let mut stale = topics.clone();
    if let Some(run) = &state.run {
        let prefix = &side.layout.prefix;
        stale.extend(run_topics(prefix, &run.schema));
    }
    stale.sort();
    stale.dedup();
    // Topics created beforehand stay as they are: the run's records begin at their current ends
    // (`starts`), and a sink reads from there, so an earlier run's records are never applied.
    let topics_ready = async {
        if side.existing_topics {
            let mut wanted = topics.clone();
            wanted.push(control_topic.clone());
            retry::retry("finding the topics created beforehand", || require_topics(side.kafka, &wanted)).await
        } else {
            retry::retry("recreating the run's topics", || recreate_topics(side.kafka, &side.layout, &stale, &topics))
                .await?;
            retry::retry("creating the topics", || create_control_topic(side.kafka, &side.layout)).await
        }
    };
    // Kafka's work and PostgreSQL's, at once.
    let estimated_rows = on_source(side, "measuring the tables", || async {
        passerelle_pg::snapshot::estimate_rows(&passerelle_pg::connect(source).await?, source, &tables).await
    });
    let ((), estimated_rows) = tokio::try_join!(topics_ready, estimated_rows)?;
    let run_id = snapshot::now_ms().to_string();
    let starts = retry::retry("reading where the topics begin", || end_offsets(side.kafka, &topics)).await?;
    let producer =
        retry::retry("reading the topics' message limits", || Producer::chunking(side.kafka, retry::bound(), &topics))
            .await?
            .for_run(&run_id);
    let announcement = RunAnnouncement {
        run_id: run_id.clone(),
        format: control::CONTROL_FORMAT,
        target_databases: side.target_databases.clone(),
        target_server: side.target_server.clone(),
        type_mapping: side.type_mapping.clone(),
        include: side.patterns.include.clone(),
        exclude: side.patterns.exclude.clone(),
        exclude_columns: side.patterns.columns.clone(),
        version: FORMAT_VERSION.to_string(),
        encoding: side.encoding.to_string(),
        snapshot_encoding: side.snapshot_encoding.to_string(),
        database: source.database.clone().unwrap_or_default(),
        schemas: side.schemas.clone(),
        schema,
        estimated_rows,
        online: side.online,
        starts,
    };
    let control = Producer::for_control(side.kafka, retry::bound())?.for_run(&run_id);
    control::announce_run(&control, &control_topic, &announcement).await?;
    side.holder.hold(&run_id);
    let names: Vec<String> = tables.iter().map(|table| table.name.to_string()).collect();
    progress.tables(&names, &announcement.estimated_rows);
    if let Some(announced) = announced {
        let _ = announced.send(run_id.clone());
    }

    // Publishing a table whose replica identity tells no rows apart would make its updates and
    // deletes fail on the live source; such tables (offline runs only) are copied but not streamed.
    let published: Vec<_> =
        tables.iter().filter(|table| table.identifies_rows()).map(|table| table.name.clone()).collect();
    on_source(side, "creating the publication", || async {
        let client = passerelle_pg::connect(source).await?;
        passerelle_pg::slot::create_publication(&client, source, &side.names.slot, &published).await?;
        // Columns left out are not published either (PostgreSQL 15's column lists).
        let restricted = side.patterns.published_columns(&announcement.schema);
        for (table, columns) in restricted.iter().filter(|(table, _)| published.contains(table)) {
            passerelle_pg::slot::publish_columns(&client, source, &side.names.slot, table, columns).await?;
        }
        Ok(())
    })
    .await?;
    let exported = passerelle_pg::slot::create_slot(source, &side.names.slot).await?;
    let units = on_source(side, "measuring the tables", || async {
        passerelle_pg::snapshot::plan_units(&passerelle_pg::connect(source).await?, source, &tables, 64 << 20).await
    })
    .await?;
    let snapshot_source = SnapshotSource {
        endpoint: source,
        snapshot_name: exported.snapshot_name(),
        consistent_point: exported.consistent_point(),
        server: &side.layout.prefix,
        database: &announcement.database,
        encoding: side.snapshot_encoding,
        rate: side.max_source_rate.map(passerelle_pg::snapshot::SourceRate::new),
        // As the topics have them: topics created beforehand may have other partitions than asked.
        partitions: layouts
            .iter()
            .map(|layout| announcement.starts.iter().filter(|start| start.topic == layout.topic).count().max(1) as i32)
            .collect(),
    };
    let copied_tables: Vec<Table> = match side.snapshot_encoding {
        SnapshotEncoding::CopyText => tables.iter().map(|table| in_root_order(&announcement.schema, table)).collect(),
        SnapshotEncoding::Envelope => tables.clone(),
    };
    let stats =
        snapshot::run(&snapshot_source, &copied_tables, &layouts, units, &producer, side.jobs, progress).await?;
    producer.flush().await.context("the snapshot's last events did not reach Kafka")?;
    let done = SnapshotDone {
        run_id: run_id.clone(),
        consistent_point: exported.consistent_point().0,
        ends: retry::retry("reading where the topics end", || end_offsets(side.kafka, &topics)).await?,
        rows: stats.rows.clone(),
    };
    control::announce_snapshot_done(&producer, &control_topic, &done).await?;
    exported.close().await;
    Ok(Copied { run_id, tables: names, rows: stats.rows, bytes: stats.bytes })
}

/// `table` with its columns in its topic's order: COPY text carries values by position, and a sink
/// reads a topic by its root's columns, which a partition attached with its own may list otherwise.
fn in_root_order(schema: &Schema, table: &Table) -> Table {
    let root = topic_root(schema, table);
    let mut ordered = table.clone();
    if root.name != table.name {
        let by_name = |name: &str| table.columns.iter().find(|column| column.name == name).cloned();
        ordered.columns = root.columns.iter().filter_map(|column| by_name(&column.name)).collect();
    }
    ordered
}

/// A step on the source's catalog or tables, on a session of its own, tried again while it fails
/// transiently: a long transaction's lock on a source table makes it time out
/// (`passerelle_pg::LOCK_TIMEOUT`) rather than queue the application behind it, and the wait names
/// the lock's holder.
async fn on_source<T, F, Fut>(side: &SourceSide<'_>, what: &'static str, step: F) -> anyhow::Result<T>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, PgError>>,
{
    retry::retry(what, || async {
        match step().await {
            Ok(value) => Ok(value),
            Err(error) => Err(passerelle_pg::locks::explain(error, side.endpoint, &side.schemas).await),
        }
    })
    .await
}

/// Streams an online run's changes into Kafka until its cutover; returns how many, or `None` for an
/// offline run or one whose stream already ended.
pub async fn stream_changes(side: &SourceSide<'_>) -> anyhow::Result<Option<u64>> {
    let control_topic = side.layout.control_topic();
    let state = retry::retry("reading the control topic", || control::read(side.kafka, &control_topic)).await?;
    let (Some(run), Some(snapshot)) = (state.run, state.snapshot_done) else {
        anyhow::bail!(
            "the control topic {control_topic} holds no complete snapshot to stream from; run the source again"
        )
    };
    if run.online != side.online {
        eprintln!(
            "passerelle: run {} was started {}; it goes on that way (passerelle cleanup starts a new one)",
            run.run_id,
            if run.online { "online" } else { "offline" }
        );
    }
    if !run.online || state.stream_done.is_some() {
        return Ok(None);
    }
    let topics = run_topics(&side.layout.prefix, &run.schema);
    let producer =
        retry::retry("reading the topics' message limits", || Producer::chunking(side.kafka, retry::bound(), &topics))
            .await?
            .for_run(&run.run_id);
    let streaming = Streaming {
        endpoint: side.endpoint,
        kafka: side.kafka,
        slot: &side.names.slot,
        control_topic: &control_topic,
        run_id: &run.run_id,
        from: Lsn(snapshot.consistent_point),
        schema: &run.schema,
        encoding: run_encoding(&run)?,
        patterns: &Patterns::from_run(&run.include, &run.exclude, &run.exclude_columns),
        server: &side.layout.prefix,
        database: &run.database,
        schemas: &run.schemas,
        holder: side.holder,
        starts: &run.starts,
    };
    Ok(Some(stream::until_cutover(&streaming, &producer).await?))
}
