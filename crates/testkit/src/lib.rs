//! Test support: where the real stack is, and throwaway databases so that tests run in parallel.
//!
//! Every integration test talks to the real PostgreSQL, Kafka, MySQL and MariaDB that `stack/stack.sh up`
//! starts. A missing stack is a loud failure that says how to start it, never a silent skip.
//! Databases are dropped when the test passes and kept when it fails, for a post-mortem.
//! A test that talks to a target runs on both with [`on_both_targets!`].

use url::Url;

pub mod services;

/// The addresses `stack/stack.sh env` exports.
#[derive(Clone, Debug)]
pub struct Stack {
    /// The non-superuser with REPLICATION, on database `demo`.
    pub source: String,
    /// A superuser on the same cluster, for creating databases and roles.
    pub source_admin: String,
    /// A superuser on the second cluster, whose wal_level is `replica`.
    pub source_plain_admin: String,
    pub kafka: String,
    /// The target server's URL (MariaDB unless made by [`Stack::for_target`]), on database `demo`.
    pub target: String,
}

impl Stack {
    pub fn from_env() -> Stack {
        Stack {
            source: env_var("PASSERELLE_SOURCE"),
            source_admin: env_var("PASSERELLE_SOURCE_ADMIN"),
            source_plain_admin: env_var("PASSERELLE_SOURCE_PLAIN_ADMIN"),
            kafka: env_var("PASSERELLE_KAFKA"),
            target: env_var("PASSERELLE_TARGET"),
        }
    }

    /// The stack with `target` as its target server.
    pub fn for_target(target: Target) -> Stack {
        Stack { target: target.url(), ..Stack::from_env() }
    }
}

fn env_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the stack with stack/stack.sh up && eval \"$(stack/stack.sh env)\"")
    })
}

/// The target servers of the stack: every test that talks to a target runs on both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// MySQL 9.7 with MySQL's defaults (`local_infile` OFF).
    MySql,
    /// MariaDB 10.11 with `local_infile` ON.
    MariaDb,
}

impl Target {
    /// The server's URL, on database `demo`; panics with the stack's reason when MySQL could not be installed.
    pub fn url(self) -> String {
        match self {
            Target::MySql => {
                if let Ok(reason) = std::env::var("PASSERELLE_MYSQL_UNAVAILABLE") {
                    panic!("the stack has no MySQL: {reason}");
                }
                env_var("PASSERELLE_TARGET_MYSQL")
            }
            Target::MariaDb => env_var("PASSERELLE_TARGET_MARIADB"),
        }
    }

    /// Asserts that the server is the one this target names (MySQL 9.x, MariaDB 10.11); returns `VERSION()`.
    pub async fn assert_version(self) -> String {
        let mut conn = mysql_conn(&with_database(&self.url(), "")).await;
        let version: String =
            mysql_async::prelude::Queryable::query_first(&mut conn, "SELECT VERSION()").await.unwrap().unwrap();
        let expected = match self {
            Target::MySql => version.starts_with("9.") && !version.contains("MariaDB"),
            Target::MariaDb => version.starts_with("10.11.") && version.contains("MariaDB"),
        };
        assert!(expected, "the {self:?} target runs {version}");
        version
    }
}

/// Runs the async test body `name(target: Target)` on both targets, as the tests `name::mysql` and
/// `name::mariadb`, each asserting first that its server is the one it names. Arguments after the
/// name go to `#[tokio::test(...)]`. The body stays an ordinary function, so rustfmt formats it.
///
/// ```ignore
/// async fn round_trip(target: Target) {
///     let stack = Stack::for_target(target);
///     // ...
/// }
/// passerelle_testkit::on_both_targets!(round_trip);
/// passerelle_testkit::on_both_targets!(bigger_round_trip, flavor = "multi_thread");
/// ```
#[macro_export]
macro_rules! on_both_targets {
    ($(#[$attr:meta])* $name:ident $(, $($tokio_arg:tt)*)?) => {
        mod $name {
            $(#[$attr])*
            #[tokio::test $(($($tokio_arg)*))?]
            async fn mysql() {
                $crate::Target::MySql.assert_version().await;
                super::$name($crate::Target::MySql).await
            }

            $(#[$attr])*
            #[tokio::test $(($($tokio_arg)*))?]
            async fn mariadb() {
                $crate::Target::MariaDb.assert_version().await;
                super::$name($crate::Target::MariaDb).await
            }
        }
    };
}

/// The stack's client key (`PASSERELLE_TLS_CLIENT_KEY`), encrypted with `passphrase` (AES-256) into a
/// file of its own under the temporary directory: for the paths that take a key passphrase.
pub fn encrypted_client_key(passphrase: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(unique_name("client-key"));
    let output = std::process::Command::new("openssl")
        .args(["pkey", "-aes256", "-passout", "env:PASSPHRASE", "-in", &env_var("PASSERELLE_TLS_CLIENT_KEY"), "-out"])
        .arg(&path)
        .env("PASSPHRASE", passphrase)
        .output()
        .expect("openssl runs");
    assert!(output.status.success(), "openssl pkey: {}", String::from_utf8_lossy(&output.stderr));
    path
}

/// `prefix_` and 12 random hex digits: a name no other test run uses.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// `url` with its path (the database) replaced.
pub fn with_database(url: &str, database: &str) -> String {
    let mut url = Url::parse(url).expect("stack URLs parse");
    url.set_path(database);
    url.to_string()
}

/// `url` with its user and password replaced.
pub fn with_credentials(url: &str, user: &str, password: &str) -> String {
    let mut url = Url::parse(url).expect("stack URLs parse");
    url.set_username(user).expect("URL takes a user");
    url.set_password(Some(password)).expect("URL takes a password");
    url.to_string()
}

/// `pg_recvlogical` streaming from `slot` (and its publication of the same name) at `source_url`
/// under `application_name`, holding the slot: a stand-in for a walsender whose client is a live
/// stranger, or a Passerelle process that died without the server noticing (a lost network, a hung
/// host), which a kill -9 on this host does not always reproduce.
pub fn hold_slot(source_url: &str, slot: &str, application_name: &str) -> std::process::Child {
    let url = Url::parse(source_url).expect("stack URLs parse");
    let connection = format!(
        "host={} port={} user={} password={} dbname={} replication=database application_name='{application_name}'",
        url.host_str().expect("the source URL names a host"),
        url.port().expect("the source URL names a port"),
        url.username(),
        url.password().unwrap_or_default(),
        url.path().trim_start_matches('/'),
    );
    std::process::Command::new("/usr/lib/postgresql/15/bin/pg_recvlogical")
        .args(["--no-loop", "-d", &connection, "--slot", slot, "--start", "-f", "/dev/null"])
        .args(["-o", "proto_version=1", "-o", &format!("publication_names={slot}")])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("pg_recvlogical starts")
}

/// Connects with tokio-postgres to a `postgres://` URL.
pub async fn pg_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to the test PostgreSQL: {error}; is the stack up?"));
    tokio::spawn(connection);
    client
}

/// Connects with mysql_async to a `mysql://` URL.
pub async fn mysql_conn(url: &str) -> mysql_async::Conn {
    let opts = mysql_async::Opts::from_url(url).expect("stack URLs parse");
    mysql_async::Conn::new(opts.clone()).await.unwrap_or_else(|error| {
        panic!(
            "cannot connect to the test target at {}:{}: {error}; is the stack up?",
            opts.ip_or_hostname(),
            opts.tcp_port()
        )
    })
}

/// A source database of its own, owned by the stack's replication user.
pub struct SourceDb {
    pub name: String,
    /// As the replication user, the way Passerelle connects.
    pub url: String,
    /// As the superuser.
    pub admin_url: String,
    server_admin_url: String,
}

impl SourceDb {
    pub async fn create(stack: &Stack) -> SourceDb {
        let name = unique_name("test");
        let owner = Url::parse(&stack.source).expect("stack URLs parse").username().to_string();
        pg_client(&stack.source_admin)
            .await
            .batch_execute(&format!("CREATE DATABASE {name} OWNER {owner}"))
            .await
            .unwrap();
        SourceDb {
            url: with_database(&stack.source, &name),
            admin_url: with_database(&stack.source_admin, &name),
            server_admin_url: stack.source_admin.clone(),
            name,
        }
    }

    /// A client connected as the owner.
    pub async fn client(&self) -> tokio_postgres::Client {
        pg_client(&self.url).await
    }
}

impl Drop for SourceDb {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept source database {} for inspection", self.name);
            return;
        }
        let name = self.name.clone();
        let url = self.server_admin_url.clone();
        run_detached(async move { drop_source_database(&url, &name).await.map_err(|e| e.to_string()) });
    }
}

/// Drops a test's source database after its replication slots: PostgreSQL refuses to drop a database
/// that holds a slot, and a slot left behind pins WAL for as long as it exists.
async fn drop_source_database(admin_url: &str, name: &str) -> Result<(), tokio_postgres::Error> {
    let client = pg_client(admin_url).await;
    client
        .execute(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL",
            &[&name],
        )
        .await?;
    // A terminated walsender releases its slot a moment later.
    for _ in 0..50 {
        let left =
            client.query("SELECT slot_name, active FROM pg_replication_slots WHERE database = $1", &[&name]).await?;
        if left.is_empty() {
            break;
        }
        for slot in left.iter().filter(|slot| !slot.get::<_, bool>(1)) {
            client.execute("SELECT pg_drop_replication_slot($1)", &[&slot.get::<_, String>(0)]).await?;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await
}

/// A target database name of its own (created by the code under test or by [`TargetDb::create`]).
pub struct TargetDb {
    pub name: String,
    /// The stack's target URL with this database.
    pub url: String,
}

impl TargetDb {
    /// Names a database that does not exist yet.
    pub fn reserve(stack: &Stack) -> TargetDb {
        let name = unique_name("test");
        TargetDb { url: with_database(&stack.target, &name), name }
    }

    /// Creates the database.
    pub async fn create(stack: &Stack) -> TargetDb {
        let db = TargetDb::reserve(stack);
        let mut conn = db.conn().await;
        mysql_async::prelude::Queryable::query_drop(&mut conn, format!("CREATE DATABASE `{}`", db.name)).await.unwrap();
        db
    }

    /// A connection with this database selected, if it exists.
    pub async fn conn(&self) -> mysql_async::Conn {
        mysql_conn(&with_database(&self.url, "")).await
    }
}

impl Drop for TargetDb {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept target database {} for inspection", self.name);
            return;
        }
        let sql = format!("DROP DATABASE IF EXISTS `{}`", self.name);
        let url = with_database(&self.url, "");
        run_detached(async move {
            let mut conn = mysql_conn(&url).await;
            mysql_async::prelude::Queryable::query_drop(&mut conn, sql).await.map_err(|e| e.to_string())
        });
    }
}

/// Runs clean-up from `Drop`, which may be inside a runtime that cannot block: on a thread of its own.
fn run_detached(task: impl std::future::Future<Output = Result<(), String>> + Send + 'static) {
    let outcome = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime").block_on(task)
    })
    .join();
    if let Ok(Err(error)) = outcome {
        eprintln!("test clean-up failed: {error}");
    }
}
