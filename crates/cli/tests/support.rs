//! Running the built binary with a controlled environment.

use std::process::Command;

/// What one run of `passerelle` printed, and how it ended.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Both streams, for asserting that something appears nowhere.
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs `passerelle ARGS` with `env` as its only `PASSERELLE_*` variables.
pub fn passerelle(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_passerelle"));
    command.args(args).env_remove("RUST_LOG");
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("PASSERELLE_")) {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    let output = command.output().expect("the passerelle binary runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
