//! The change stream, source to Kafka: after the snapshot of an online run, every change the slot
//! delivers becomes a Debezium `c`, `u` or `d` event on its table's topic, and every `TRUNCATE` a `t`
//! event in each partition of each table it emptied, until a cutover.
//!
//! The slot advances only past transactions Kafka has acknowledged, so a crash repeats changes
//! rather than losing them; replayed in order, upserts and deletes by key end in the same state.
//! The cutover (`passerelle cutover`) names an LSN once the source's writes have stopped, on the
//! control topic and as a marker it writes at that LSN in the source's WAL: when the stream has
//! passed it, everything committed before is in Kafka, and the source says where each partition
//! ended and what the sequences hold.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use passerelle_kafka::control::{self, StreamDone, TableAltered};
use passerelle_kafka::envelope::{try_encode, try_encode_change, Encoding, Origin, TableLayout};
use passerelle_kafka::producer::Producer;
use passerelle_kafka::topic::{end_offsets, PartitionEnd};
use passerelle_model::endpoint::{DbEndpoint, KafkaEndpoint};
use passerelle_model::event::{ChangeEvent, Lsn, Op, Row};
use passerelle_model::schema::{QualifiedName, Schema, Table};
use passerelle_pg::stream::{ChangeStream, StreamItem, Truncate};

use crate::altered;
use crate::config::{table_layouts, topic_root};
use crate::failure::{self, Holder, StartOver};
use crate::pause;
use crate::retry::{self, Backoff};
use crate::selection::Patterns;
use crate::shutdown;
use crate::snapshot::now_ms;

/// How often produced changes are flushed and the slot told how far Kafka has them.
const CONFIRM_EVERY: Duration = Duration::from_secs(1);
/// How often the control topic is read for a cutover.
const CUTOVER_POLL: Duration = Duration::from_secs(1);

/// What streaming needs to know.
pub struct Streaming<'a> {
    pub endpoint: &'a DbEndpoint,
    pub kafka: &'a KafkaEndpoint,
    /// The slot, and the publication of the same name.
    pub slot: &'a str,
    pub control_topic: &'a str,
    pub run_id: &'a str,
    /// Where the snapshot ended: the stream starts there (or where the slot was last confirmed).
    pub from: Lsn,
    /// The run's schema as it began (tables that change during the run are on the control topic).
    pub schema: &'a Schema,
    pub encoding: Encoding,
    /// The run's selection, which a changed table's new columns go through too.
    pub patterns: &'a Patterns,
    /// Debezium's logical server name, the topic prefix.
    pub server: &'a str,
    pub database: &'a str,
    pub schemas: &'a [String],
    /// Set to the run once its stream starts: this process is then the run's source.
    pub holder: &'a Holder,
    /// Every partition of the run's topics (the run's `starts`): a truncate marker goes to each.
    pub starts: &'a [PartitionEnd],
}

/// Streams changes into Kafka until the cutover LSN is passed, then announces where the stream ended.
/// Returns how many changes it produced.
pub async fn until_cutover(streaming: &Streaming<'_>, producer: &Producer) -> anyhow::Result<u64> {
    let s = streaming;
    // Only tables whose rows the stream tells apart are published (see `source`).
    let published: Vec<Table> = s.schema.tables.iter().filter(|table| table.identifies_rows()).cloned().collect();
    let state = retry::retry("reading the control topic", || control::read(s.kafka, s.control_topic)).await?;
    // Tables changed earlier in the run: every version announced, and each at its last one.
    let mut altered: Vec<TableAltered> = state.altered.clone();
    // The tables as the stream carries them: columns dropped during the run still in place.
    let mut current: Schema = state.stream_schema().unwrap_or_else(|| s.schema.clone());
    let mut layouts = table_layouts(s.server, &current, s.encoding);
    let start = |altered: &[TableAltered]| {
        let altered: Vec<Table> = altered.iter().map(|altered| altered.table.clone()).collect();
        let published = &published;
        async move {
            retry::retry("starting the change stream", || {
                ChangeStream::start(s.endpoint, s.slot, s.slot, s.from, published, &altered)
            })
            .await
        }
    };
    let mut stream = start(&altered).await?;
    // The slot streams to this process: the run is its own, and no longer failed if it had.
    failure::take_up(s.holder, s.kafka, &state, s.control_topic, s.run_id).await?;
    // A terminated session or a restarted server: a new stream resumes from the slot's confirmed
    // position, repeating what Kafka may already hold (keyed upserts converge, see ARCHITECTURE.md).
    let mut backoff = Backoff::new("streaming changes");
    let positions: HashMap<QualifiedName, usize> =
        s.schema.tables.iter().enumerate().map(|(i, table)| (table.name.clone(), i)).collect();
    let mut cutover: Option<Lsn> = None;
    let mut unconfirmed: Option<Lsn> = None;
    // Inside a transaction: a change of it was handed over, its commit not yet.
    let mut in_transaction = false;
    let (mut last_confirm, mut last_poll) = (Instant::now(), None::<Instant>);
    let (mut n_changes, mut n_truncates) = (0, 0);
    loop {
        if shutdown::requested() {
            // Asked to stop: what was handed over goes to Kafka, and the slot passes only that.
            producer.flush().await.context("the stream's events did not reach Kafka")?;
            if let Some(lsn) = unconfirmed.take() {
                stream.confirm(lsn);
            }
            stream.close().await?;
            return Err(shutdown::Stopped.into());
        }
        if last_poll.is_none_or(|at| at.elapsed() >= CUTOVER_POLL) {
            let state = retry::retry("reading the control topic", || control::read(s.kafka, s.control_topic)).await?;
            cutover = state.cutover.map(|cutover| Lsn(cutover.lsn));
            last_poll = Some(Instant::now());
        }
        let item = match stream.next(Duration::from_millis(200)).await {
            Ok(item) => {
                backoff.reset();
                item
            }
            Err(error) => {
                backoff.wait(error).await?;
                // The old stream is over; closing it only collects its task.
                let _ = stream.close().await;
                unconfirmed = None;
                in_transaction = false;
                stream = start(&altered).await?;
                continue;
            }
        };
        let passed = match item {
            Some(StreamItem::Change(change)) => {
                in_transaction = true;
                let i = positions[&change.table];
                let history =
                    History { original: &s.schema.tables[i], dropped: control::dropped(&altered, &change.table) };
                produce(&current.tables[i], &history, &layouts[i], &change, s, producer).await?;
                n_changes += 1;
                crate::metrics::get().changes_produced(1);
                pause::point(pause::CHANGES_PRODUCED, n_changes).await;
                false
            }
            Some(StreamItem::Commit { end_lsn, .. }) => {
                in_transaction = false;
                unconfirmed = Some(end_lsn);
                cutover.is_some_and(|cutover| end_lsn >= cutover)
            }
            Some(StreamItem::Truncate(truncate)) => {
                in_transaction = true;
                for table in &truncate.tables {
                    let i = positions[table];
                    produce_truncate(&layouts[i], &truncate, s, producer).await?;
                }
                n_truncates += 1;
                pause::point(pause::TRUNCATE_PRODUCED, n_truncates).await;
                false
            }
            Some(StreamItem::Idle { wal_end }) => {
                // Every transaction of ours that ended before `wal_end` was handed over before this
                // keepalive and is produced, so once the flush below has them in Kafka, nothing of ours
                // lies before it: confirming it lets the slot release the WAL of other tables' writes
                // (a quiet table's slot must not pin a busy database's WAL). Not inside a transaction,
                // whose commit is yet to come.
                if !in_transaction {
                    unconfirmed = unconfirmed.max(Some(wal_end));
                }
                cutover.is_some_and(|cutover| wal_end >= cutover)
            }
            // The cutover's own marker: every transaction committed before its LSN came before it,
            // whether or not the control topic has been read since the cutover was asked for.
            Some(StreamItem::Marker { lsn, content }) if content == cutover_marker(s.run_id) => {
                cutover = cutover.or(Some(lsn));
                true
            }
            Some(StreamItem::Altered { table, sent }) => {
                // Announced before the first event that uses it, which a sink cannot decode without.
                let i = positions[&table];
                let was = version_of(&current.tables[i], &altered);
                let new = altered::read_new_version(s.endpoint, &was, &sent, s.patterns, s.encoding).await?;
                // Nothing new where the catalog was ahead already when an earlier version was read.
                if !new.same_columns(&was) {
                    current = altered::with_table(&current, &new.table);
                    layouts = table_layouts(s.server, &current, s.encoding);
                    announce_version(&mut altered, new, s, producer).await?;
                }
                false
            }
            Some(StreamItem::Marker { .. }) | None => false,
        };
        if passed || last_confirm.elapsed() >= CONFIRM_EVERY {
            let started = Instant::now();
            producer.flush().await.context("the stream's events did not reach Kafka")?;
            crate::metrics::get().batch("flush", started.elapsed());
            if let Some(lsn) = unconfirmed.take() {
                stream.confirm(lsn);
            }
            last_confirm = Instant::now();
        }
        if passed {
            break;
        }
    }
    stream.close().await?;

    let schema = retry::retry("reading the sequences", || async {
        let mut client = passerelle_pg::connect(s.endpoint).await?;
        passerelle_pg::catalog::read(&mut client, s.endpoint, s.schemas).await
    })
    .await?;
    refuse_new_tables(&schema, &s.schema.tables, &s.schema.left_out)?;
    // Columns added, widened or dropped with no change of the table after them: the stream never
    // described them, but the target follows them all the same.
    let mut selected = schema.clone();
    s.patterns.apply(&mut selected)?;
    let versions: Vec<altered::Version> = current.tables.iter().map(|table| version_of(table, &altered)).collect();
    for version in altered::unseen_versions(s.endpoint, &versions, &selected, s.encoding).await? {
        announce_version(&mut altered, version, s, producer).await?;
    }
    // A partition's layout names its root's topic.
    let mut topics: Vec<String> = layouts.iter().map(|layout| layout.topic.clone()).collect();
    topics.sort();
    topics.dedup();
    let done = StreamDone {
        run_id: s.run_id.to_string(),
        lsn: cutover.expect("the loop ends only past a cutover").0,
        ends: retry::retry("reading where the topics end", || end_offsets(s.kafka, &topics)).await?,
        sequences: schema.sequences.into_iter().map(|sequence| (sequence.name, sequence.last_value)).collect(),
    };
    control::announce_stream_done(producer, s.control_topic, &done).await?;
    Ok(n_changes)
}

/// `table` as the stream carries it, with the columns `altered` says were dropped.
fn version_of(table: &Table, altered: &[TableAltered]) -> altered::Version {
    altered::Version { table: table.clone(), dropped: control::dropped(altered, &table.name).to_vec() }
}

/// Announces a table's next version to the sinks, and adds it to `altered`, the versions so far.
async fn announce_version(
    altered: &mut Vec<TableAltered>,
    next: altered::Version,
    s: &Streaming<'_>,
    producer: &Producer,
) -> anyhow::Result<()> {
    let altered::Version { table, dropped } = next;
    let version = altered.iter().filter(|known| known.table.name == table.name).count() as u32 + 1;
    tracing::info!("table {} changed on the source: version {version} announced to the sinks", table.name);
    let announcement = TableAltered { run_id: s.run_id.to_string(), version, table, dropped };
    control::announce_altered(producer, s.control_topic, &announcement).await?;
    altered.push(announcement);
    pause::point(pause::TABLE_ALTERED, altered.len() as u64).await;
    Ok(())
}

/// What `cutover` writes in the source's WAL (`pg::stream::emit_marker`) where it cuts `run_id` over:
/// the stream stops there at once, without waiting for the control topic or the server's keepalive.
pub fn cutover_marker(run_id: &str) -> String {
    format!("cutover {run_id}")
}

/// A table created in a migrated schema during the run was never published, copied or streamed, and
/// verify, which checks the run's tables, would not see it: the run does not end as if it had.
/// A partition created under a migrated partitioned table is no such table: it streams through its root.
fn refuse_new_tables(now: &Schema, copied: &[Table], left_out: &[QualifiedName]) -> anyhow::Result<()> {
    let run = |name: &QualifiedName| copied.iter().any(|table| &table.name == name) || left_out.contains(name);
    let new: Vec<String> = now
        .tables
        .iter()
        .filter(|table| !run(&table.name) && !run(&topic_root(now, table).name))
        .map(|table| table.name.to_string())
        .collect();
    if new.is_empty() {
        return Ok(());
    }
    Err(StartOver(format!(
        "{} created in a migrated schema during the run, which copies only the tables it began with; start the \
         migration over to include {}",
        if new.len() == 1 { format!("table {} was", new[0]) } else { format!("tables {} were", new.join(", ")) },
        if new.len() == 1 { "it" } else { "them" },
    ))
    .into())
}

/// Produces a truncate marker (Debezium's `t` event) into every partition of the table's topic: rows
/// of the table are spread over the partitions by key, and each partition must hold the marker
/// before its later events, so that the sink empties the table once, at the same point of every
/// partition (see `mysql::sink::truncate`). `RESTART IDENTITY` needs nothing here: the cutover sets
/// AUTO_INCREMENT from the sequences as they are then.
async fn produce_truncate(
    layout: &TableLayout,
    truncate: &Truncate,
    s: &Streaming<'_>,
    producer: &Producer,
) -> anyhow::Result<()> {
    let origin = Origin {
        server: s.server,
        database: s.database,
        lsn: truncate.commit_lsn,
        change_lsn: truncate.lsn,
        position: None,
        snapshot: false,
        ts_ms: now_ms(),
    };
    let event = try_encode(layout, Op::Truncate, None, None, &origin).map_err(|cause| anyhow::anyhow!("{cause}"))?;
    let partitions = s.starts.iter().filter(|start| start.topic == layout.topic);
    let mut n_partitions = 0;
    for start in partitions {
        producer.send(&layout.topic, Some(start.partition), None, &event.value).await?;
        n_partitions += 1;
    }
    if n_partitions == 0 {
        anyhow::bail!(
            "the run does not say which partitions topic {} has, so its TRUNCATE cannot be carried",
            layout.topic
        );
    }
    Ok(())
}

/// A table's columns at either end of the run: as it began, and those dropped since.
struct History<'a> {
    original: &'a Table,
    dropped: &'a [String],
}

/// Produces one change. An update that moved its row to another key becomes a delete of the old key
/// and a create of the new one, as Debezium does: each key's events stay in its own partition, in order.
async fn produce(
    table: &Table,
    history: &History<'_>,
    layout: &TableLayout,
    change: &ChangeEvent,
    s: &Streaming<'_>,
    producer: &Producer,
) -> anyhow::Result<()> {
    let column = |i: usize| &table.columns[i];
    // Generated columns are not sent, but the target computes them: only TOASTed values stay unchanged.
    let unchanged: Vec<usize> = change.unchanged.iter().copied().filter(|&i| column(i).generated.is_none()).collect();
    // Nor are columns dropped, or added after the change, which the new row's insert leaves to the
    // target's default as PostgreSQL did: only TOASTed values keep a moved row from being written whole.
    let toasted = unchanged.iter().any(|&i| {
        !history.dropped.contains(&column(i).name) && history.original.columns.iter().any(|c| c.name == column(i).name)
    });
    let origin = Origin {
        server: s.server,
        database: s.database,
        lsn: change.commit_lsn,
        change_lsn: change.lsn,
        position: None,
        snapshot: false,
        ts_ms: now_ms(),
    };
    fn values(row: &Row) -> Vec<Option<&str>> {
        row.iter().map(Option::as_deref).collect()
    }
    let key_of = |row: &Row| layout.key.iter().map(|&i| row[i].clone()).collect::<Vec<_>>();
    let before = change.before.as_ref().map(values);
    let after = change.after.as_ref().map(values);
    let moved = match (&change.before, &change.after) {
        (Some(before), Some(after)) if change.op == Op::Update => key_of(before) != key_of(after),
        _ => false,
    };
    let events = if moved {
        if toasted {
            return Err(StartOver(format!(
                "{}: an update changed a row's key and left a TOASTed value unsent, so the new row cannot be \
                 written whole; ALTER TABLE {} REPLICA IDENTITY FULL",
                change.table, change.table
            ))
            .into());
        }
        vec![(Op::Delete, before.as_deref(), None), (Op::Create, None, after.as_deref())]
    } else {
        vec![(change.op, before.as_deref(), after.as_deref())]
    };
    // Each event's position in its transaction: twice the change's, plus one for the second event of
    // a key change, so that both halves stay apart where they share a partition.
    for (part, (op, before, after)) in (0..).zip(events) {
        // An insert, as an update, leaves out the columns its table gained after it or dropped before it.
        let unchanged = if op == Op::Delete { &[] } else { unchanged.as_slice() };
        let origin = Origin { position: change.position.map(|position| 2 * position + part), ..origin };
        let event = try_encode_change(layout, op, before, after, unchanged, &origin)
            .map_err(|cause| anyhow::anyhow!("{cause}"))?;
        producer.send(&layout.topic, layout.fixed_partition(), event.key.as_deref(), &event.value).await?;
    }
    Ok(())
}
