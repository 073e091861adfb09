//! Kafka errors: a one-line cause naming the brokers, topic or partition, then what to do.

use std::fmt;

use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::types::{RDKafkaConfRes, RDKafkaErrorCode};

/// librdkafka's codes for conditions that pass: a broker down or restarting, a leader or coordinator
/// moving, a request that timed out, a group member the restarted coordinator no longer knows (it
/// joins again). Anything else (authorization, configuration, a message too large) stays as it is
/// however often it is tried.
///
/// A broker that restarts answers for a while before it leads its partitions again: metadata with a
/// leaderless partition, `NotLeaderForPartition` (Kafka's `NOT_LEADER_OR_FOLLOWER`), a list-offsets
/// request refused with `OffsetNotAvailable` until the high watermark has caught up, leader epochs
/// not known yet (`UnknownLeaderEpoch`, `FencedLeaderEpoch`). All of them pass.
const TRANSIENT: [RDKafkaErrorCode; 36] = [
    RDKafkaErrorCode::BrokerTransportFailure,
    RDKafkaErrorCode::AllBrokersDown,
    RDKafkaErrorCode::MessageTimedOut,
    RDKafkaErrorCode::OperationTimedOut,
    RDKafkaErrorCode::TimedOutQueue,
    RDKafkaErrorCode::Resolve,
    RDKafkaErrorCode::PurgeQueue,
    RDKafkaErrorCode::PurgeInflight,
    RDKafkaErrorCode::NodeUpdate,
    RDKafkaErrorCode::WaitingForCoordinator,
    RDKafkaErrorCode::WaitCache,
    RDKafkaErrorCode::ISRInsufficient,
    RDKafkaErrorCode::Retry,
    RDKafkaErrorCode::PollExceeded,
    RDKafkaErrorCode::UnknownTopicOrPartition,
    RDKafkaErrorCode::LeaderNotAvailable,
    RDKafkaErrorCode::NotLeaderForPartition,
    RDKafkaErrorCode::RequestTimedOut,
    RDKafkaErrorCode::BrokerNotAvailable,
    RDKafkaErrorCode::ReplicaNotAvailable,
    RDKafkaErrorCode::NetworkException,
    RDKafkaErrorCode::CoordinatorLoadInProgress,
    RDKafkaErrorCode::CoordinatorNotAvailable,
    RDKafkaErrorCode::NotCoordinator,
    RDKafkaErrorCode::NotController,
    RDKafkaErrorCode::NotEnoughReplicas,
    RDKafkaErrorCode::NotEnoughReplicasAfterAppend,
    RDKafkaErrorCode::RebalanceInProgress,
    RDKafkaErrorCode::IllegalGeneration,
    RDKafkaErrorCode::UnknownMemberId,
    RDKafkaErrorCode::KafkaStorageError,
    RDKafkaErrorCode::FencedLeaderEpoch,
    RDKafkaErrorCode::UnknownLeaderEpoch,
    RDKafkaErrorCode::OffsetNotAvailable,
    RDKafkaErrorCode::PreferredLeaderNotAvailable,
    RDKafkaErrorCode::EligibleLeadersNotAvailable,
];

#[derive(Debug)]
pub enum KafkaError {
    /// The client could not be configured or the brokers did not answer.
    Unreachable { brokers: String, cause: String },
    /// A topic could not be created, described or deleted.
    Topic { topic: String, cause: String },
    /// A message was not delivered (after librdkafka's own retries).
    Delivery { topic: String, cause: String },
    /// Reading or committing from the consumer group failed.
    Consume { cause: String },
    /// A message that is not a Passerelle envelope, or does not fit its table.
    Decode { topic: String, partition: i32, offset: i64, cause: String },
    /// librdkafka refused the client properties (an unknown key, a bad value, an unreadable file).
    Configuration { brokers: String, cause: String },
    /// The brokers refused the SASL credentials.
    Credentials { brokers: String, user: String, cause: String },
    /// The TLS handshake failed: most often the brokers' certificate was not verified.
    Tls { brokers: String, cause: String },
}

impl KafkaError {
    pub fn cause(&self) -> String {
        match self {
            KafkaError::Unreachable { brokers, cause } => format!("cannot reach Kafka at {brokers}: {cause}"),
            KafkaError::Topic { topic, cause } => format!("topic {topic}: {cause}"),
            KafkaError::Delivery { topic, cause } => format!("could not deliver to topic {topic}: {cause}"),
            KafkaError::Consume { cause } => format!("consuming from Kafka failed: {cause}"),
            KafkaError::Decode { topic, partition, offset, cause } => {
                format!("message {topic}/{partition}@{offset} cannot be decoded: {cause}")
            }
            KafkaError::Configuration { brokers, cause } => {
                format!("the Kafka client for {brokers} cannot be configured: {cause}")
            }
            KafkaError::Credentials { brokers, user, cause } => {
                format!("Kafka at {brokers} refused the SASL credentials of {user}: {cause}")
            }
            KafkaError::Tls { brokers, cause } => format!("no TLS connection to Kafka at {brokers}: {cause}"),
        }
    }

    pub fn hint(&self) -> &'static str {
        match self {
            KafkaError::Unreachable { .. } => {
                "check --kafka / PASSERELLE_KAFKA, that the brokers are up, and that security.protocol is their \
                 listener's (a TLS listener drops a plaintext client)"
            }
            KafkaError::Topic { .. } => "check the principal's topic ACLs and the broker log",
            KafkaError::Delivery { .. } => "check the broker log and free disk space on the brokers, then run again",
            KafkaError::Consume { .. } => "check the broker log, then run again: the sink resumes where it stopped",
            KafkaError::Decode { .. } => "the topic holds messages Passerelle did not write; use another topic prefix",
            KafkaError::Configuration { .. } => {
                "check the client properties of --kafka-config and --kafka-option (librdkafka's names)"
            }
            KafkaError::Credentials { .. } => {
                "check sasl.username, sasl.mechanism and the password (PASSERELLE_KAFKA_SASL_PASSWORD, or sasl.password in --kafka-config)"
            }
            KafkaError::Tls { .. } => {
                "check ssl.ca.location: the CA certificate (PEM) that signed the brokers' certificate, and security.protocol"
            }
        }
    }

    /// True when trying again may succeed (Vector's `RetryLogic`): the brokers could not be reached,
    /// or a step failed with one of librdkafka's transient codes (a broker down or restarting, a
    /// leader change, a timeout). A message that cannot be decoded, or a refusal (credentials, a
    /// certificate, an ACL), is not.
    pub fn retryable(&self) -> bool {
        match self {
            KafkaError::Unreachable { .. } => true,
            KafkaError::Topic { cause, .. } | KafkaError::Delivery { cause, .. } | KafkaError::Consume { cause } => {
                transient(cause)
            }
            KafkaError::Decode { .. }
            | KafkaError::Configuration { .. }
            | KafkaError::Credentials { .. }
            | KafkaError::Tls { .. } => false,
        }
    }
}

/// librdkafka's code name says more than its prose: `BrokerTransportFailure`, `TopicAuthorizationFailed`.
/// Causes begin with it, which is how [`KafkaError::retryable`] tells a passing condition.
pub(crate) fn describe(error: &RdKafkaError) -> String {
    match (error.rdkafka_error_code(), error) {
        (Some(code), _) => describe_code(code),
        // rdkafka's text of a refused property repeats its value, which may be a secret.
        (None, RdKafkaError::ClientConfig(RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN, _, key, _)) => {
            format!("librdkafka has no property {key}")
        }
        (None, RdKafkaError::ClientConfig(_, _, key, _)) => format!("the value of {key} is not one librdkafka takes"),
        (None, RdKafkaError::ClientCreation(cause)) => cause.clone(),
        (None, _) => error.to_string(),
    }
}

/// The client could not be made from its properties.
pub(crate) fn configuration(brokers: &str, error: &RdKafkaError) -> KafkaError {
    KafkaError::Configuration { brokers: brokers.to_string(), cause: describe(error) }
}

pub(crate) fn describe_code(code: RDKafkaErrorCode) -> String {
    format!("{code:?}: {code}")
}

fn transient(cause: &str) -> bool {
    let name = cause.split(':').next().unwrap_or_default();
    TRANSIENT.iter().any(|code| format!("{code:?}") == name)
}

impl fmt::Display for KafkaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; {}", self.cause(), self.hint())
    }
}

impl std::error::Error for KafkaError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_outages_retry_and_refusals_do_not() {
        let outage = KafkaError::Consume { cause: describe_code(RDKafkaErrorCode::AllBrokersDown) };
        let leader =
            KafkaError::Topic { topic: "t".into(), cause: describe_code(RDKafkaErrorCode::NotLeaderForPartition) };
        let denied =
            KafkaError::Topic { topic: "t".into(), cause: describe_code(RDKafkaErrorCode::TopicAuthorizationFailed) };
        let decode = KafkaError::Decode { topic: "t".into(), partition: 0, offset: 1, cause: "x".into() };
        assert!(outage.retryable() && leader.retryable());
        // What a broker answers while it restarts and elects its partitions' leaders again.
        for code in [
            RDKafkaErrorCode::OffsetNotAvailable,
            RDKafkaErrorCode::UnknownLeaderEpoch,
            RDKafkaErrorCode::FencedLeaderEpoch,
            RDKafkaErrorCode::UnknownMemberId,
        ] {
            assert!(KafkaError::Topic { topic: "t".into(), cause: describe_code(code) }.retryable(), "{code:?}");
        }
        assert!(!denied.retryable() && !decode.retryable());
    }
}
