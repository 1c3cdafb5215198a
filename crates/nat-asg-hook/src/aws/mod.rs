//! AWS glue: the SDK clients, and the calls that observe, act and complete lifecycle actions.
//! Every function here turns SDK types into the plain views of `model` and back.

pub mod act;
pub mod capacity;
pub mod lifecycle;
pub mod observe;
pub mod tags;

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

/// The two SDK clients, built once at start-up and shared by every invocation.
#[derive(Debug, Clone)]
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
}

impl Clients {
    /// Loads region and credentials the standard way (environment, profile, container/instance
    /// role) with the hook's retry and timeout settings. `AWS_ENDPOINT_URL` points it at an emulator.
    pub async fn load() -> Self {
        Self::from_sdk(&sdk_config().await)
    }

    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> Self {
        Self { ec2: aws_sdk_ec2::Client::new(sdk), autoscaling: aws_sdk_autoscaling::Client::new(sdk) }
    }
}

/// The shared SDK configuration with the hook's retry and timeout settings: the operator's tool
/// checks its region and credentials before it builds the clients from it.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config())
        .timeout_config(timeout_config())
        .load()
        .await
}

/// The SDK's standard retry (throttling, 5xx, network errors, with jitter), with a short first
/// backoff: the outage lasts until the routes move, so the usual one-second start is too slow.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(5)
        .with_initial_backoff(Duration::from_millis(50))
        .with_max_backoff(Duration::from_secs(1))
}

/// There are no SDK timeouts by default: a hung connection would eat the whole Lambda budget.
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .read_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(4))
        .operation_timeout(Duration::from_secs(12))
        .build()
}
