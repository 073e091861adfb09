//! What every command that reads the source schema shares: which schemas go where, how lossy types
//! are held, and the plan built from them. `plan` writes the plan out; `migrate` and `verify` follow it.

use std::collections::BTreeMap;

use clap::ValueEnum;
use passerelle_ddl::{Config, IntervalAs, Plan, Server, TypeOptions, UuidAs};
use passerelle_kafka::control::TypeMapping;
use passerelle_model::endpoint::DbEndpoint;
use passerelle_model::schema::Schema;

use crate::selection::Patterns;

/// Which schemas to migrate and how they land in the target.
#[derive(Debug, clap::Args)]
pub struct MappingArgs {
    #[command(flatten)]
    pub selection: SelectionArgs,
    #[command(flatten)]
    pub target: TargetMappingArgs,
}

/// The source's side of the mapping: what to migrate.
#[derive(Debug, clap::Args)]
pub struct SelectionArgs {
    /// A PostgreSQL schema to migrate; repeat for several [default: public]
    #[arg(long = "schema", value_name = "SCHEMA")]
    pub schemas: Vec<String>,
    /// Migrate only the tables and views matching this pattern: schema.table with * and ?
    /// (bookings.*); one starting with ! leaves those out (!bookings.boarding_passes); repeatable
    /// [default: the run's, else every table of the schemas]
    #[arg(long = "include", value_name = "PATTERN")]
    pub include: Vec<String>,
    /// Leave out the tables and views matching this pattern (bookings.boarding_passes, *_log);
    /// repeatable [default: the run's]
    #[arg(long = "exclude", value_name = "PATTERN")]
    pub exclude: Vec<String>,
    /// Leave out this column, schema.table.column (not one of the primary key's); its indexes, keys
    /// and checks go with it; repeatable [default: the run's]
    #[arg(long = "exclude-column", value_name = "COLUMN")]
    pub exclude_columns: Vec<String>,
}

impl SelectionArgs {
    pub fn patterns(&self) -> Patterns {
        Patterns::new(&self.include, &self.exclude, &self.exclude_columns)
    }

    pub fn schemas(&self) -> Vec<String> {
        if self.schemas.is_empty() {
            vec!["public".to_string()]
        } else {
            self.schemas.clone()
        }
    }
}

/// The target's side of the mapping: where each schema goes and how lossy types are held.
#[derive(Clone, Debug, clap::Args)]
pub struct TargetMappingArgs {
    /// Put a schema into a target database other than the target URL's
    #[arg(long = "map", value_name = "SCHEMA=DATABASE")]
    pub maps: Vec<String>,
    /// How uuid columns are held (native is MariaDB's UUID type, 10.7 and later; elsewhere it means
    /// char36) [default: the run's, else native]
    #[arg(long, value_enum)]
    pub uuid: Option<UuidArg>,
    /// How interval columns are held: ISO 8601 text or a count of microseconds [default: the run's,
    /// else text]
    #[arg(long, value_enum)]
    pub interval: Option<IntervalArg>,
    /// The collation of text columns [default: the run's, else the dialect's binary NO PAD collation,
    /// as PostgreSQL compares]
    #[arg(long, value_name = "COLLATION")]
    pub collation: Option<String>,
}

impl TargetMappingArgs {
    /// The type mapping these flags ask for, the defaults where they name none: what a new run fixes.
    pub fn type_mapping(&self) -> TypeMapping {
        let name = |value: Option<clap::builder::PossibleValue>| value.map(|v| v.get_name().to_string());
        TypeMapping {
            uuid: name(self.uuid.unwrap_or(UuidArg::Native).to_possible_value()).unwrap_or_default(),
            interval: name(self.interval.unwrap_or(IntervalArg::Text).to_possible_value()).unwrap_or_default(),
            collation: self.collation.clone(),
        }
    }

    /// These flags with a run's type mapping where they name none. A flag that names another than the
    /// run's is the caller's to refuse ([`TargetMappingArgs::differs`]).
    pub fn with_run(&self, fixed: &TypeMapping) -> anyhow::Result<TargetMappingArgs> {
        let uuid = UuidArg::from_str(&fixed.uuid, false)
            .map_err(|_| anyhow::anyhow!("the run holds uuid columns as {:?}, unknown here: upgrade", fixed.uuid))?;
        let interval = IntervalArg::from_str(&fixed.interval, false).map_err(|_| {
            anyhow::anyhow!("the run holds interval columns as {:?}, unknown here: upgrade", fixed.interval)
        })?;
        Ok(TargetMappingArgs {
            maps: self.maps.clone(),
            uuid: Some(uuid),
            interval: Some(interval),
            collation: fixed.collation.clone(),
        })
    }

    /// The flags that name another type mapping than `fixed`: `(flag, fixed, asked)`.
    pub fn differs(&self, fixed: &TypeMapping) -> Option<(&'static str, String, String)> {
        let asked = self.type_mapping();
        let shown = |collation: &Option<String>| collation.clone().unwrap_or_else(|| "(the default)".to_string());
        if self.uuid.is_some() && asked.uuid != fixed.uuid {
            return Some(("--uuid", fixed.uuid.clone(), asked.uuid));
        }
        if self.interval.is_some() && asked.interval != fixed.interval {
            return Some(("--interval", fixed.interval.clone(), asked.interval));
        }
        if self.collation.is_some() && asked.collation != fixed.collation {
            return Some(("--collation", shown(&fixed.collation), shown(&asked.collation)));
        }
        None
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum UuidArg {
    Native,
    Char36,
    Binary16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum IntervalArg {
    Text,
    Microseconds,
}

/// Each schema's target database: from `--map`, else the target URL's database.
pub fn databases(
    schemas: &[String],
    args: &TargetMappingArgs,
    target: &DbEndpoint,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut maps = BTreeMap::new();
    for map in &args.maps {
        let Some((schema, database)) = map.split_once('=').filter(|(s, d)| !s.is_empty() && !d.is_empty()) else {
            anyhow::bail!("--map {map:?} is not SCHEMA=DATABASE; write it like --map bookings=demo");
        };
        maps.insert(schema.to_string(), database.to_string());
    }
    let mut databases = BTreeMap::new();
    for schema in schemas {
        let database = match (maps.remove(schema), target.database.clone()) {
            (Some(database), _) | (None, Some(database)) => database,
            (None, None) => anyhow::bail!(
                "no target database for schema {schema:?}; name one in the target URL or pass --map {schema}=DATABASE"
            ),
        };
        databases.insert(schema.clone(), database);
    }
    if let Some(schema) = maps.keys().next() {
        anyhow::bail!("--map names schema {schema:?}, which is not migrated; add --schema {schema}");
    }
    Ok(databases)
}

/// The source schema, the translation settings and the plan.
pub struct Mapping {
    pub schema: Schema,
    pub config: Config,
    pub plan: Plan,
}

/// Reads the source catalog and plans the target, for `server` when given, else for the target's own.
pub async fn prepare(
    args: &MappingArgs,
    source: &DbEndpoint,
    target: &DbEndpoint,
    server: Option<Server>,
) -> anyhow::Result<Mapping> {
    let schemas = args.selection.schemas();
    // Checked before reading the catalog: a bad --map is the user's to fix at once.
    databases(&schemas, &args.target, target)?;
    let mut client = passerelle_pg::connect(source).await?;
    let mut schema = passerelle_pg::catalog::read(&mut client, source, &schemas).await?;
    args.selection.patterns().apply(&mut schema)?;
    plan_for(schema, &schemas, &args.target, target, server).await
}

/// Plans the target for a source schema read earlier (by this process or, through Kafka, another):
/// for `server` when given (`plan --target-version`), else for the server the target runs.
pub async fn plan_for(
    schema: Schema,
    schemas: &[String],
    args: &TargetMappingArgs,
    target: &DbEndpoint,
    server: Option<Server>,
) -> anyhow::Result<Mapping> {
    let databases = databases(schemas, args, target)?;
    // A version given by hand plans without asking the target, so it cannot know its settings either.
    let (server, require_primary_key, trigger_refusal) = match server {
        Some(server) => (server, false, None),
        None => {
            let mut conn = passerelle_mysql::connect(target).await?;
            let server = passerelle_mysql::schema_apply::server_version(&mut conn, target).await?;
            if !server.supported() {
                anyhow::bail!(
                    "the target {target} runs {server}, older than Passerelle writes DDL for: use {}",
                    Server::oldest_supported()
                );
            }
            let require_primary_key = passerelle_mysql::schema_apply::requires_primary_key(&mut conn, target).await?;
            let targets: Vec<String> = databases.values().cloned().collect();
            let trigger_refusal = passerelle_mysql::privileges::trigger_refusal(&mut conn, target, &targets)
                .await?
                .map(|(cause, fix)| format!("{cause} ({fix})"));
            let _ = conn.disconnect().await;
            (server, require_primary_key, trigger_refusal)
        }
    };
    let config = Config {
        server,
        databases,
        types: TypeOptions {
            uuid: match args.uuid.unwrap_or(UuidArg::Native) {
                UuidArg::Native => UuidAs::Native,
                UuidArg::Char36 => UuidAs::Char36,
                UuidArg::Binary16 => UuidAs::Binary16,
            },
            interval: match args.interval.unwrap_or(IntervalArg::Text) {
                IntervalArg::Text => IntervalAs::Text,
                IntervalArg::Microseconds => IntervalAs::Microseconds,
            },
            text_collation: args.collation.clone(),
        },
        require_primary_key,
        trigger_refusal,
    };
    let plan = passerelle_ddl::plan(&schema, &config);
    Ok(Mapping { schema, config, plan })
}
