//! The snapshot's load path as the target server decides it: with `local_infile` OFF (MySQL's
//! default) the rows go in by multi-row INSERT, and Passerelle never turns the setting on, nor sets
//! any other global variable.

use std::collections::BTreeMap;

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

/// Global variables that change by themselves, left out of the comparison: `gtid_executed` grows with
/// every transaction MySQL commits (the migration's and other tests'), `gtid_owned` lists the GTIDs of
/// the transactions in flight, `gtid_purged` moves when binary logs expire, and MariaDB's
/// `gtid_binlog_pos`, `gtid_binlog_state` and `gtid_current_pos` likewise when it writes a binary log.
/// Measured across migrations: `gtid_executed` and `gtid_owned` were the only ones that moved.
const SELF_CHANGING: &[&str] =
    &["gtid_executed", "gtid_owned", "gtid_purged", "gtid_binlog_pos", "gtid_binlog_state", "gtid_current_pos"];

/// What a `SET GLOBAL` or `SET PERSIST` would leave behind: every global variable's value (but
/// [`SELF_CHANGING`]), and on MySQL the persisted ones (`mysqld-auto.cnf`) and the global-only
/// variables that `user` set, whatever the value (performance_schema's `variables_info` names the
/// last user to set each variable; for a variable with a session scope, which `variables_by_thread`
/// lists, that may be a session's `SET`, so only global-only ones count, whose sole setters are
/// `SET GLOBAL` and `SET PERSIST`).
async fn globals(conn: &mut mysql_async::Conn, mysql: bool, user: &str) -> BTreeMap<String, Option<String>> {
    let rows: Vec<(String, Option<String>)> = conn.query("SHOW GLOBAL VARIABLES").await.unwrap();
    let mut globals: BTreeMap<String, Option<String>> =
        rows.into_iter().filter(|(name, _)| !SELF_CHANGING.contains(&name.as_str())).collect();
    if mysql {
        let persisted: Vec<(String, Option<String>)> = conn
            .query("SELECT VARIABLE_NAME, VARIABLE_VALUE FROM performance_schema.persisted_variables")
            .await
            .unwrap();
        globals.extend(persisted.into_iter().map(|(name, value)| (format!("persisted {name}"), value)));
        let set_by_user: Vec<String> = conn
            .exec(
                "SELECT VARIABLE_NAME FROM performance_schema.variables_info WHERE SET_USER = ?
                 AND VARIABLE_NAME NOT IN (SELECT VARIABLE_NAME FROM performance_schema.variables_by_thread
                                           WHERE THREAD_ID = PS_CURRENT_THREAD_ID())",
                (user,),
            )
            .await
            .unwrap();
        globals.extend(set_by_user.into_iter().map(|name| (format!("set by {user}: {name}"), None)));
    }
    globals
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
    // The privilege SET GLOBAL and SET PERSIST need, so that one would succeed and show, rather than
    // fail with an error Passerelle might swallow.
    let set_global = if server == Target::MySql { "SYSTEM_VARIABLES_ADMIN" } else { "SUPER" };
    admin.query_drop(format!("GRANT {set_global} ON *.* TO '{user}'@'127.0.0.1'")).await.unwrap();
    let performance_schema: bool = admin.query_first("SELECT @@performance_schema").await.unwrap().unwrap();
    assert_eq!(performance_schema, server == Target::MySql, "performance_schema on {server:?}");
    let local_infile: Option<String> = admin.query_first("SELECT @@GLOBAL.local_infile").await.unwrap();
    let before = globals(&mut admin, performance_schema, &user).await;

    let prefix = unique_name("loadpath");
    let url = with_credentials(&target.url, &user, &password);
    let env =
        [("PASSERELLE_SOURCE", source.url.as_str()), ("PASSERELLE_KAFKA", &stack.kafka), ("PASSERELLE_TARGET", &url)];
    let run = passerelle(&["migrate", "--json", "--jobs", "2", "--partitions", "3", "--topic-prefix", &prefix], &env);
    let after = globals(&mut admin, performance_schema, &user).await;
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
    let allowed = local_infile.as_deref() == Some("1");
    assert_eq!(allowed, server == Target::MariaDb, "the stack's {server:?} has local_infile {local_infile:?}");
    assert_eq!(summary["load_path"], if allowed { "load-data" } else { "insert" });
    let version: String = admin.query_first("SELECT VERSION()").await.unwrap().unwrap();
    let written_for = passerelle_ddl::Server::from_version(&version).unwrap().to_string();
    assert_eq!(summary["ddl"]["written_for"], written_for.as_str(), "{}", run.stdout);
    let changed: Vec<_> = after.iter().filter(|(name, value)| before.get(*name) != Some(value)).collect();
    assert!(changed.is_empty() && after.len() == before.len(), "global variables changed: {changed:?}");
    if performance_schema {
        let count = |event: &str| statements.iter().find(|(name, _)| name == event).map_or(0, |(_, n)| *n);
        // The INSERTs are prepared statements, counted as executions.
        assert!(count("statement/com/Execute") > 0, "performance_schema counts this user's statements: {statements:?}");
        assert_eq!(count("statement/sql/load") > 0, allowed, "LOAD DATA statements: {statements:?}");
    }
    assert_eq!(cleanup.code, 0, "{}\n{}", cleanup.stdout, cleanup.stderr);
}
on_both_targets!(the_load_path_follows_the_servers_local_infile, flavor = "multi_thread");
