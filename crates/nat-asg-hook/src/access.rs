//! "Could not look": the operator's tool could not observe AWS at all (no region, no credentials, an
//! endpoint that does not answer, throttling beyond every retry, a refusal by IAM). That says
//! nothing about the zones, so it must never read like "a zone is unhealthy": the CLI gives it its
//! own exit status and one sentence per cause that says what to set or check.

use std::fmt;

use aws_config::SdkConfig;
use aws_sdk_ec2::config::ProvideCredentials;

use crate::config::Config;
use crate::error::{AwsError, HookError, innermost, is_throttling};

/// Why the tool could not look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blind {
    /// The SDK found no region anywhere (environment, profile).
    NoRegion { config_region: Option<String> },
    /// The client talks to another region than the one the configured zones are in.
    RegionMismatch { client: String, config: String },
    /// No credentials could be loaded.
    NoCredentials { cause: String },
    /// AWS rejected the credentials themselves (unknown key, bad signature, expired token).
    CredentialsRejected { operation: &'static str, code: String },
    /// IAM refused a call: the identity may not make it.
    AccessDenied { operation: &'static str, code: String },
    /// The endpoint did not answer (connection refused, DNS, timeout).
    Unreachable { operation: &'static str, endpoint: String, cause: String },
    /// AWS throttled every attempt the SDK made.
    Throttled { operation: &'static str },
    /// The service failed (5xx) or sent what the SDK could not read, on every attempt.
    ServiceTrouble { operation: &'static str, code: String, cause: String },
    /// Not one configured Auto Scaling group exists where the client looked.
    NothingThere { groups: usize, region: String, config_region: Option<String> },
}

impl fmt::Display for Blind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoRegion { config_region } => match config_region {
                Some(r) => write!(
                    f,
                    "no AWS region is set: set AWS_REGION={r} (the configured zones' region), or use a profile that has it (AWS_PROFILE)"
                ),
                None => write!(f, "no AWS region is set: set AWS_REGION, or use a profile that has one (AWS_PROFILE)"),
            },
            Self::RegionMismatch { client, config } => write!(
                f,
                "the AWS region is {client}, but the configured zones are in {config}: set AWS_REGION={config} (the hook only sees its own region)"
            ),
            Self::NoCredentials { cause } => write!(
                f,
                "no AWS credentials ({cause}): set AWS_PROFILE (after `aws sso login` if it uses SSO) or the AWS_ACCESS_KEY_ID pair, then check with `aws sts get-caller-identity`"
            ),
            Self::CredentialsRejected { operation, code } => write!(
                f,
                "AWS rejected the credentials ({operation}: {code}): they are wrong or expired; renew them (`aws sso login`, or new keys) and check with `aws sts get-caller-identity`"
            ),
            Self::AccessDenied { operation, code } => write!(
                f,
                "access denied ({operation}: {code}): the identity in use may not make this call; use a role that may (see the runbook's permissions), check which one this is with `aws sts get-caller-identity`"
            ),
            Self::Unreachable { operation, endpoint, cause } => write!(
                f,
                "could not reach {endpoint} ({operation}: {cause}): check the network, VPN or proxy{}",
                if endpoint.starts_with("http") { ", and AWS_ENDPOINT_URL" } else { "" }
            ),
            Self::Throttled { operation } => write!(
                f,
                "AWS throttled every attempt ({operation}): the account's API rate is used up by something else; try again in a minute"
            ),
            Self::ServiceTrouble { operation, code, cause } => write!(
                f,
                "AWS failed to answer ({operation}: {code}: {cause}) on every attempt: try again shortly; check the AWS Health Dashboard if it persists"
            ),
            Self::NothingThere { groups, region, config_region } => {
                let what = if *groups == 1 {
                    "the configured Auto Scaling group does not exist".to_owned()
                } else {
                    format!("none of the {groups} configured Auto Scaling groups exists")
                };
                match config_region {
                    Some(c) if c != region => write!(
                        f,
                        "{what} in {region}: the region may be wrong (the configured zones are in {c}: set AWS_REGION={c})"
                    ),
                    _ => write!(
                        f,
                        "{what} in {region}: the region or the account may be wrong (check AWS_REGION and `aws sts get-caller-identity`), or the configuration is not this stack's (terraform output -raw hook_config)"
                    ),
                }
            }
        }
    }
}

/// Codes with which AWS rejects the credentials themselves (not the permission to make a call).
const CREDENTIALS_REJECTED: &[&str] = &[
    "AuthFailure",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
    "UnrecognizedClientException",
    "InvalidToken",
    "MissingAuthenticationToken",
];

/// Whether a failed call means the tool could not look, and why. None for an error about the
/// zones themselves (a resource that does not exist, an instance in the wrong state).
pub fn classify(e: &AwsError, endpoint: &str) -> Option<Blind> {
    let operation = e.operation;
    let cause = || one_line(e.cause.as_deref().unwrap_or(&e.message));
    if CREDENTIALS_REJECTED.contains(&e.code.as_str()) {
        return Some(Blind::CredentialsRejected { operation, code: e.code.clone() });
    }
    if e.is_authorization() {
        return Some(Blind::AccessDenied { operation, code: e.code.clone() });
    }
    if is_throttling(&e.code) {
        return Some(Blind::Throttled { operation });
    }
    match e.code.as_str() {
        "Unreachable" | "Timeout" => {
            Some(Blind::Unreachable { operation, endpoint: endpoint.to_owned(), cause: cause() })
        }
        // The request never left: most often the credentials (their chain failed) or the region.
        "DispatchFailure" | "ConstructionFailure" => {
            let cause = cause();
            if cause.contains("credential") || cause.contains("identity") || cause.contains("auth scheme") {
                Some(Blind::NoCredentials { cause })
            } else {
                Some(Blind::Unreachable { operation, endpoint: endpoint.to_owned(), cause })
            }
        }
        "ResponseError" | "Unknown" => Some(Blind::ServiceTrouble { operation, code: e.code.clone(), cause: cause() }),
        code if e.retryable && !crate::error::EVENTUALLY_CONSISTENT.contains(&code) => {
            Some(Blind::ServiceTrouble { operation, code: e.code.clone(), cause: cause() })
        }
        _ => None,
    }
}

/// The same for a handler's error (`replay`, `reconcile`): a failed observation, or every failed
/// action refused by IAM.
pub fn classify_hook(e: &HookError, endpoint: &str) -> Option<Blind> {
    match e {
        HookError::Aws(e) => classify(e, endpoint),
        HookError::Lifecycle { source, .. } if source.is_authorization() => classify(source, endpoint),
        HookError::Act { failed, .. } => {
            failed.iter().find(|(_, e)| e.is_authorization()).and_then(|(_, e)| classify(e, endpoint))
        }
        _ => None,
    }
}

/// The first line of an SDK message, without the list of what it tried ("no credentials found in
/// chain. Attempted: ..." becomes "no credentials found in chain").
fn one_line(text: &str) -> String {
    let first = text.lines().next().unwrap_or_default();
    first.split(". Attempted").next().unwrap_or(first).trim_end_matches([':', '.', ' ']).to_owned()
}

/// Where the clients send their calls, for messages: the emulator's URL, or the region's endpoint.
pub fn endpoint(sdk: &SdkConfig) -> String {
    match (sdk.endpoint_url(), sdk.region()) {
        (Some(url), _) => url.to_owned(),
        (None, Some(region)) => format!("the EC2 and Auto Scaling endpoints of {region}"),
        (None, None) => "AWS".to_owned(),
    }
}

/// What can be known before any call: a region, the configured zones' region, credentials.
pub async fn preflight(sdk: &SdkConfig, config: &Config) -> Result<(), Blind> {
    let config_region = config.region();
    let Some(region) = sdk.region().map(ToString::to_string) else {
        return Err(Blind::NoRegion { config_region });
    };
    if let Some(config_region) = config_region
        && config_region != region
    {
        return Err(Blind::RegionMismatch { client: region, config: config_region });
    }
    let Some(provider) = sdk.credentials_provider() else {
        return Err(Blind::NoCredentials { cause: "no credentials provider is configured".into() });
    };
    provider.provide_credentials().await.map_err(|e| Blind::NoCredentials { cause: one_line(&innermost(&e)) })?;
    Ok(())
}

/// An event's own region against the client's: a replay in another region would look for the
/// event's instance and groups where they are not.
pub fn event_region_mismatch(event: &serde_json::Value, client: Option<&str>) -> Option<String> {
    let event_region = event.get("region")?.as_str()?;
    match client {
        Some(client) if client != event_region => Some(format!(
            "the event is from {event_region}, the AWS region is {client}: replay it with AWS_REGION={event_region} and that region's configuration"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(code: &str, retryable: bool, cause: Option<&str>) -> AwsError {
        AwsError {
            operation: "DescribeAddresses",
            code: code.into(),
            // A service error carries the service's own short message; the others an SDK chain.
            message: if cause.is_some() { "long SDK chain" } else { "the service's message" }.into(),
            retryable,
            cause: cause.map(str::to_owned),
        }
    }

    #[test]
    fn each_cause_is_one_sentence_that_says_what_to_do() {
        let endpoint = "http://127.0.0.1:1";
        let cases = [
            (aws("Unreachable", true, Some("Connection refused (os error 111)")), "could not reach http://127.0.0.1:1"),
            (aws("AuthFailure", false, None), "AWS rejected the credentials"),
            (aws("UnauthorizedOperation", false, None), "access denied (DescribeAddresses: UnauthorizedOperation)"),
            (aws("RequestLimitExceeded", true, None), "throttled every attempt"),
            (aws("InternalError", true, None), "AWS failed to answer"),
            (aws("DispatchFailure", true, Some("no providers in chain provided credentials")), "no AWS credentials"),
        ];
        for (error, want) in cases {
            let blind = classify(&error, endpoint).unwrap_or_else(|| panic!("{error:?} is a failure to look"));
            let text = blind.to_string();
            assert!(text.contains(want), "{text}\n want: {want}");
            assert!(!text.contains('\n') && !text.contains("long SDK chain"), "{text}");
        }
    }

    #[test]
    fn errors_about_the_zones_are_not_failures_to_look() {
        for code in ["InvalidRouteTableID.NotFound", "IncorrectInstanceState", "InvalidInstanceID.NotFound"] {
            assert_eq!(classify(&aws(code, code != "InvalidRouteTableID.NotFound", None), "x"), None, "{code}");
        }
    }

    #[test]
    fn a_wrong_region_names_the_right_one() {
        let text =
            Blind::NothingThere { groups: 3, region: "us-west-2".into(), config_region: Some("us-east-1".into()) }
                .to_string();
        assert_eq!(
            text,
            "none of the 3 configured Auto Scaling groups exists in us-west-2: the region may be wrong (the configured zones are in us-east-1: set AWS_REGION=us-east-1)"
        );
        let one =
            Blind::NothingThere { groups: 1, region: "us-east-1".into(), config_region: Some("us-east-1".into()) };
        assert!(
            one.to_string().starts_with(
                "the configured Auto Scaling group does not exist in us-east-1: the region or the account"
            ),
            "{one}"
        );
        let mismatch = Blind::RegionMismatch { client: "eu-west-1".into(), config: "us-east-1".into() };
        assert!(mismatch.to_string().contains("set AWS_REGION=us-east-1"));
        let none = Blind::NoRegion { config_region: Some("us-east-1".into()) };
        assert!(
            none.to_string().starts_with("no AWS region is set: set AWS_REGION=us-east-1 (the configured"),
            "{none}"
        );
        assert_eq!(
            one_line("no credentials found in chain. Attempted:\n  Environment: not set"),
            "no credentials found in chain"
        );
    }

    #[test]
    fn an_event_of_another_region_is_named() {
        let event = serde_json::json!({"region": "us-west-2"});
        assert!(event_region_mismatch(&event, Some("us-east-1")).unwrap().contains("AWS_REGION=us-west-2"));
        assert_eq!(event_region_mismatch(&event, Some("us-west-2")), None);
        assert_eq!(event_region_mismatch(&serde_json::json!({}), Some("us-east-1")), None);
    }
}
