//! `passerelle cleanup`: removes what a migration keeps outside the target's tables: the replication
//! slot (which retains WAL on the source for as long as it exists), the publication, the topics and
//! the bookkeeping rows. The migrated data stays.

use std::process::ExitCode;

use passerelle_kafka::topic::{delete_topics, list_topics};
use passerelle_mysql::bookkeeping;
use serde::Serialize;

use crate::args::{BookkeepingDb, EndpointArgs};
use crate::config::{Endpoints, Names, NamingArgs};
use crate::retry;

#[derive(Debug, clap::Args)]
pub struct CleanupArgs {
    #[command(flatten)]
    pub endpoints: EndpointArgs,
    #[command(flatten)]
    pub naming: NamingArgs,
    #[command(flatten)]
    pub bookkeeping: BookkeepingDb,
    /// Print what was removed as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Removed {
    migration: String,
    slot: Option<String>,
    publication: Option<String>,
    topics: Vec<String>,
}

pub async fn run(args: CleanupArgs) -> anyhow::Result<ExitCode> {
    let endpoints = Endpoints::from_args(&args.endpoints)?;
    let names = Names::new(args.naming.prefix_or_default(&endpoints.source));
    let source = &endpoints.source;
    // Every step is safe to repeat, so each rides through an outage (a broker restarting, say).
    let client = retry::retry("connecting to the source", || passerelle_pg::connect(source)).await?;
    let dropped = retry::retry("dropping the slot", || passerelle_pg::slot::drop_slot(&client, source, &names.slot));
    let slot = dropped.await?.then(|| names.slot.clone());
    let dropped = retry::retry("dropping the publication", || {
        passerelle_pg::slot::drop_publication(&client, source, &names.slot)
    });
    let publication = dropped.await?.then(|| names.slot.clone());
    let prefix = format!("{}.", names.migration);
    let topics = retry::retry("listing the topics", || list_topics(&endpoints.kafka, &prefix)).await?;
    retry::retry("deleting the topics", || delete_topics(&endpoints.kafka, &topics)).await?;
    let target = &endpoints.target;
    let database = &args.bookkeeping.name;
    retry::retry("forgetting the migration's bookkeeping", || async {
        let mut conn = passerelle_mysql::connect(target).await?;
        bookkeeping::ensure_tables(&mut conn, target, database).await?;
        bookkeeping::forget(&mut conn, target, database, &names.migration, &topics).await?;
        let _ = conn.disconnect().await;
        Ok::<_, passerelle_mysql::MysqlError>(())
    })
    .await?;
    let removed = Removed { migration: names.migration, slot, publication, topics };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&removed)?);
    } else {
        let or_none = |name: &Option<String>| name.clone().unwrap_or_else(|| "none".to_string());
        println!("replication slot dropped: {}", or_none(&removed.slot));
        println!("publication dropped: {}", or_none(&removed.publication));
        println!("topics deleted: {}", removed.topics.len());
        println!("bookkeeping of {} forgotten; the migrated data stays", removed.migration);
    }
    Ok(ExitCode::SUCCESS)
}
