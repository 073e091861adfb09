//! The snapshot's load path as the target server decides it: with `local_infile` OFF (MySQL's
//! default) the rows go in by multi-row INSERT, and Passerelle never turns the setting on.

use mysql_async::prelude::Queryable;
use passerelle_testkit::{on_both_targets, unique_name, with_credentials, SourceDb, Stack, Target, TargetDb};

use crate::support::passerelle;

const FIXTURE: &str = "
create table accounts (id bigint primary key, name text not null, balance numeric(12,2), opened timestamptz);
insert into accounts select i, 'a' || i, i * 1.5, timestamptz '2020-01-01' + i * interval '1 h'
from generate_series(1, 5000) i;
create table events (account_id bigint, what text);
insert into events select i % 100, repeat('e', i % 40) from generate_series(1, 3000) i;
";

/// `@@GLOBAL.local_infile`, and where the server keeps it (MySQL's performance_schema), when it was
/// last set at run time.
async fn local_infile(conn: &mut mysql_async::Conn, performance_schema: bool) -> (String, Option<String>) {
    let value: String = conn.query_first("SELECT @@GLOBAL.local_infile").await.unwrap().unwrap();
    let set_time = if performance_schema {
        conn.query_first(
            "SELECT CAST(SET_TIME AS CHAR) FROM performance_schema.variables_info WHERE VARIABLE_NAME = 'local_infile'",
        )
        .await
        .unwrap()
        .flatten()
    } else {
        None
    };
    (value, set_time)
}

async fn the_load_path_follows_the_servers_local_infile(server: Target) {
    let stack = Stack::for_target(server);
    let source = SourceDb::create(&stack).await;
    source.client().await.batch_execute(FIXTURE).await.expect("the source fixture loads");
    let target = TargetDb::create(&stack).await;
    // A user of its own, whose statements performance_schema counts apart from other tests'.
    let user = unique_name("loadpath");
    let password = format!("Pa55-{user}");
    let mut admin = target.conn().await;
    admin.query_drop(format!("CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}'")).await.unwrap();
    for database in [target.name.as_str(), "passerelle"] {
        admin.query_drop(format!("GRANT ALL PRIVILEGES ON `{database}`.* TO '{user}'@'127.0.0.1'")).await.unwrap();
    }
    let performance_schema: bool = admin.query_first("SELECT @@performance_schema").await.unwrap().unwrap();
    assert_eq!(performance_schema, server == Target::MySql, "performance_schema on {server:?}");
    let before = local_infile(&mut admin, performance_schema).await;

    let prefix = unique_name("loadpath");
    let url = with_credentials(&target.url, &user, &password);
    let env =
        [("PASSERELLE_SOURCE", source.url.as_str()), ("PASSERELLE_KAFKA", &stack.kafka), ("PASSERELLE_TARGET", &url)];
    let run = passerelle(&["migrate", "--json", "--jobs", "2", "--partitions", "3", "--topic-prefix", &prefix], &env);
    let after = local_infile(&mut admin, performance_schema).await;
    let statements: Vec<(String, u64)> = if performance_schema {
        admin
            .exec(
                "SELECT EVENT_NAME, COUNT_STAR FROM performance_schema.events_statements_summary_by_user_by_event_name
                 WHERE USER = ? AND EVENT_NAME IN ('statement/sql/load', 'statement/com/Execute')",
                (&user,),
            )
            .await
            .unwrap()
    } else {
        Vec::new()
    };
    let cleanup = passerelle(&["cleanup", "--topic-prefix", &prefix], &env);
    admin.query_drop(format!("DROP USER '{user}'@'127.0.0.1'")).await.unwrap();

    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let summary: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(summary["verified"], true, "{}", run.stdout);
    assert_eq!(summary["rows"], 8000);
    let allowed = before.0 == "1";
    assert_eq!(allowed, server == Target::MariaDb, "the stack's {server:?} has local_infile {}", before.0);
    assert_eq!(summary["load_path"], if allowed { "load-data" } else { "insert" });
    assert_eq!(after, before, "local_infile was not set while the migration ran");
    if performance_schema {
        let count = |event: &str| statements.iter().find(|(name, _)| name == event).map_or(0, |(_, n)| *n);
        // The INSERTs are prepared statements, counted as executions.
        assert!(count("statement/com/Execute") > 0, "performance_schema counts this user's statements: {statements:?}");
        assert_eq!(count("statement/sql/load") > 0, allowed, "LOAD DATA statements: {statements:?}");
    }
    assert_eq!(cleanup.code, 0, "{}\n{}", cleanup.stdout, cleanup.stderr);
}
on_both_targets!(the_load_path_follows_the_servers_local_infile, flavor = "multi_thread");
