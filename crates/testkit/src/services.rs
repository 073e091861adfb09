//! Private services for fault tests that kill a service: a Kafka broker (KRaft) on 59192/59193, a
//! MariaDB on 53406 and a MySQL on 53407, each with its data under
//! `/var/tmp/passerelle-stack/faults-<name>`, started and SIGKILLed through `stack/stack.sh` (the
//! same code that runs the shared stack), so that killing one never touches the tests beside it.
//! Tests that use them run serially among themselves (see `crates/cli/tests/faults.rs`).

use std::path::PathBuf;
use std::process::Command;

/// A service a fault test may kill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Private {
    Kafka,
    MariaDb,
    MySql,
}

impl Private {
    fn name(self) -> &'static str {
        match self {
            Private::Kafka => "kafka",
            Private::MariaDb => "mariadb",
            Private::MySql => "mysql",
        }
    }

    fn port(self) -> u16 {
        match self {
            Private::Kafka => 59192,
            Private::MariaDb => 53406,
            Private::MySql => 53407,
        }
    }

    fn stack(self, command: &[&str]) -> String {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../stack/stack.sh");
        let dir = format!("/var/tmp/passerelle-stack/faults-{}", self.name());
        let output = Command::new("bash")
            .arg(&script)
            .args(command)
            .env("PASSERELLE_STACK_DIR", &dir)
            .env("PASSERELLE_KAFKA_PORT", Private::Kafka.port().to_string())
            .env("PASSERELLE_MARIADB_PORT", Private::MariaDb.port().to_string())
            .env("PASSERELLE_MYSQL_PORT", Private::MySql.port().to_string())
            .output()
            .expect("bash runs stack/stack.sh");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "stack/stack.sh {} for the private {} in {dir} failed:\n{text}\n{}",
            command.join(" "),
            self.name(),
            String::from_utf8_lossy(&output.stderr)
        );
        text
    }

    /// Starts the service unless it runs; returns once it answers.
    pub fn up(self) {
        self.stack(&["service-up", self.name()]);
    }

    /// SIGKILLs the service, as a crash would; returns once the process is gone.
    pub fn kill(self) {
        self.stack(&["service-kill", self.name()]);
    }

    /// Kafka's bootstrap address, or a target's URL on database `demo` (the stack's credentials).
    pub fn url(self) -> String {
        if self == Private::Kafka {
            return format!("127.0.0.1:{}", self.port());
        }
        let variable = if self == Private::MySql { "PASSERELLE_TARGET_MYSQL" } else { "PASSERELLE_TARGET_MARIADB" };
        let env = self.stack(&["env"]);
        let line = env
            .lines()
            .find_map(|line| line.strip_prefix(&format!("export {variable}=")))
            .unwrap_or_else(|| panic!("stack/stack.sh env prints no {variable}"));
        line.trim_matches('\'').to_string()
    }
}
