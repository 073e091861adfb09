//! The findings of `passerelle check`: one line per check, with the fix when it fails.

use serde::Serialize;

use crate::endpoint::DbEndpoint;

/// How a check came out. `Warn` does not block a migration; `Fail` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Warn,
    Fail,
}

/// Which system a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum System {
    Source,
    Kafka,
    Target,
}

/// One preflight finding. `detail` says what was seen; `fix` says what to do when it did not pass.
/// Neither ever holds a secret: they are built from server answers, never from the connection URL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub system: System,
    pub check: &'static str,
    pub outcome: Outcome,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    pub fn pass(system: System, check: &'static str, detail: impl Into<String>) -> Finding {
        Finding { system, check, outcome: Outcome::Pass, detail: detail.into(), fix: None }
    }

    pub fn warn(system: System, check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding { system, check, outcome: Outcome::Warn, detail: detail.into(), fix: Some(fix.into()) }
    }

    pub fn fail(system: System, check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding { system, check, outcome: Outcome::Fail, detail: detail.into(), fix: Some(fix.into()) }
    }
}

/// The warning of a database session whose password crossed the network to another machine
/// unencrypted ([`DbEndpoint::password_in_clear`]): `setting` is the URL's TLS mode as the user wrote
/// it, `fix` the parameters that encrypt it.
pub fn clear_text_password(
    system: System,
    endpoint: &DbEndpoint,
    encrypted: bool,
    setting: &str,
    fix: &str,
) -> Option<Finding> {
    endpoint.password_in_clear(encrypted).then(|| {
        let detail = format!(
            "the password of {} and every row cross the network to {}, which is not this machine, unencrypted ({setting})",
            endpoint.user, endpoint.host
        );
        Finding::warn(system, "clear-text password", detail, fix)
    })
}
