//! Running the built binary with a controlled environment.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use passerelle_testkit::unique_name;

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

/// `passerelle ARGS` with `env` as its only `PASSERELLE_*` variables.
fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_passerelle"));
    command.args(args).env_remove("RUST_LOG");
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("PASSERELLE_")) {
        command.env_remove(name);
    }
    // Reports to hand over go to a directory of their own, not into the source tree; a test may name another.
    command.env("PASSERELLE_REPORT_DIR", std::env::temp_dir().join(unique_name("report")));
    command.envs(env.iter().copied());
    // A test that fails leaves no passerelle behind: Linux kills the child when the thread that
    // started it (its test's) ends, however it ends.
    // SAFETY: prctl is async-signal-safe, and the closure touches nothing else between fork and exec.
    unsafe {
        command.pre_exec(|| match libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) {
            -1 => Err(std::io::Error::last_os_error()),
            _ => Ok(()),
        });
    }
    command
}

/// Starts `passerelle ARGS` and returns at once, its output discarded: for killing it midway.
pub fn passerelle_child(args: &[&str], env: &[(&str, &str)]) -> Child {
    command(args, env).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("the passerelle binary starts")
}

/// Starts `passerelle ARGS` with its output captured, for `wait_with_output` once something else is done.
pub fn passerelle_spawn(args: &[&str], env: &[(&str, &str)]) -> Child {
    command(args, env).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("the passerelle binary starts")
}

/// Starts `passerelle ARGS` with its stdout and stderr written to the files `stdout` and `stderr` in
/// `dir`: a process that logs much while a test holds it at a pause point must not block on a pipe.
pub fn passerelle_logged(args: &[&str], env: &[(&str, &str)], dir: &Path) -> Child {
    let file = |name: &str| std::fs::File::create(dir.join(name)).expect("the test writes its directory");
    command(args, env).stdout(file("stdout")).stderr(file("stderr")).spawn().expect("the passerelle binary starts")
}

/// The longest one `passerelle` process of a test may run: a hang fails its test with what the
/// process printed, instead of holding the suite until CI gives up.
const RUN_DEADLINE: Duration = Duration::from_secs(600);

/// What a spawned `passerelle` printed, once it ended; killed, and the test failed, past `RUN_DEADLINE`.
pub fn finished(mut child: Child) -> Run {
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(child.stdout.take().map(|pipe| Box::new(pipe) as Box<dyn Read + Send>));
    let stderr = drain(child.stderr.take().map(|pipe| Box::new(pipe) as Box<dyn Read + Send>));
    let deadline = Instant::now() + RUN_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("the passerelle process can be waited for") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let run = Run {
        code: status.and_then(|status| status.code()).unwrap_or(-1),
        stdout: stdout.join().expect("stdout is read"),
        stderr: stderr.join().expect("stderr is read"),
    };
    assert!(status.is_some(), "passerelle still ran after {RUN_DEADLINE:?}, killed:\n{}\n{}", run.stdout, run.stderr);
    run
}

/// Runs `passerelle ARGS` to the end.
pub fn passerelle(args: &[&str], env: &[(&str, &str)]) -> Run {
    finished(passerelle_spawn(args, env))
}

/// Runs `passerelle ARGS` to the end in the working directory `dir` (where it looks for passerelle.toml).
pub fn passerelle_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    finished(command(args, env).current_dir(dir).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("starts"))
}

/// A pause point to stop a process at, and the file that holds it there.
pub struct Pause {
    point: String,
    file: PathBuf,
    file_text: String,
}

impl Pause {
    pub fn at(point: &str) -> Pause {
        let file = std::env::temp_dir().join(unique_name("pause"));
        Pause { point: point.to_string(), file_text: file.display().to_string(), file }
    }

    /// `env` with the variables that pause a process here.
    pub fn env<'a>(&'a self, env: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut env = env.to_vec();
        env.extend([("PASSERELLE_PAUSE_AT", self.point.as_str()), ("PASSERELLE_PAUSE_FILE", self.file_text.as_str())]);
        env
    }

    /// Waits until `child` pauses here.
    pub async fn reached(&self, child: &mut Child) {
        let deadline = Instant::now() + Duration::from_secs(300);
        while !self.file.exists() {
            assert!(Instant::now() < deadline, "passerelle never reached {}", self.point);
            assert!(child.try_wait().unwrap().is_none(), "passerelle ended before it reached {}", self.point);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Lets the paused process go on.
    pub fn release(&self) {
        std::fs::remove_file(&self.file).unwrap();
    }
}
