//! The crate's error, keeping each AWS error's code and message, and its stable `error_type`
//! for the Lambda runtime.

use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use lambda_runtime::Diagnostic;

use crate::config::ConfigError;
use crate::decide::Refusal;
use crate::event::MalformedEvent;
use crate::model::Action;
use crate::report::Report;

/// Error codes that mean EC2 has not caught up yet: worth waiting for.
pub const EVENTUALLY_CONSISTENT: &[&str] =
    &["InvalidInstanceID.NotFound", "InvalidNetworkInterfaceID.NotFound", "IncorrectInstanceState"];

/// One failed AWS call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} failed: {code}: {message}")]
pub struct AwsError {
    pub operation: &'static str,
    pub code: String,
    pub message: String,
    /// A later attempt may succeed (throttling, 5xx, timeouts, network, eventual consistency).
    pub retryable: bool,
    /// For an error that never reached the service (no connection, a timeout, a request that could
    /// not be built): the innermost cause alone, one line, for an operator (`message` has the chain).
    pub cause: Option<String>,
}

impl AwsError {
    pub fn from_sdk<E>(operation: &'static str, err: SdkError<E>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let (code, retryable) = match &err {
            SdkError::TimeoutError(_) => ("Timeout".to_owned(), true),
            // The endpoint did not answer at all (refused, unresolvable, timed out connecting).
            SdkError::DispatchFailure(failure) if failure.is_io() || failure.is_timeout() => {
                ("Unreachable".to_owned(), true)
            }
            SdkError::DispatchFailure(_) => ("DispatchFailure".to_owned(), true),
            SdkError::ResponseError(_) => ("ResponseError".to_owned(), true),
            SdkError::ConstructionFailure(_) => ("ConstructionFailure".to_owned(), false),
            SdkError::ServiceError(service) => {
                let code = service.err().code().unwrap_or("Unknown").to_owned();
                let server_side = service.raw().status().as_u16() >= 500;
                let retryable = server_side || is_throttling(&code) || EVENTUALLY_CONSISTENT.contains(&code.as_str());
                (code, retryable)
            }
            _ => ("Unknown".to_owned(), true),
        };
        let message = match &err {
            // An answer that carries no AWS error (a proxy's or an emulator's HTML page): its status.
            SdkError::ServiceError(service) => service.err().message().map(str::to_owned).unwrap_or_else(|| {
                format!("HTTP {} without an AWS error in the body", service.raw().status().as_u16())
            }),
            _ => DisplayErrorContext(&err).to_string(),
        };
        let cause = match &err {
            SdkError::ServiceError(_) => None,
            _ => Some(innermost(&err)),
        };
        Self { operation, code, message, retryable, cause }
    }

    pub fn is(&self, code: &str) -> bool {
        self.code == code
    }

    /// IAM refused the call: a policy to fix, not something a retry or a replacement can heal.
    pub fn is_authorization(&self) -> bool {
        matches!(
            self.code.as_str(),
            "UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException" | "UnauthorizedAccess"
        )
    }
}

/// The last error in a chain of sources: usually the one that says what actually happened
/// ("Connection refused", "no providers in chain provided credentials").
pub fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut last = err;
    while let Some(source) = last.source() {
        last = source;
    }
    last.to_string()
}

pub fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "RequestLimitExceeded"
            | "Throttling"
            | "ThrottlingException"
            | "TooManyRequestsException"
            | "EC2ThrottledException"
    )
}

/// Everything that can go wrong in one invocation.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error(transparent)]
    Malformed(#[from] MalformedEvent),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("gave up waiting for {what} after {attempts} attempts: the Lambda deadline is near")]
    Deadline { what: String, attempts: u32 },
    #[error(
        "the invocation did not finish within its {budget_ms} ms budget (kept below the Lambda timeout); the next delivery finishes the rest"
    )]
    OutOfTime { budget_ms: u64 },
    #[error("{} of {} actions failed ({}); applied: [{}]; the next delivery finishes the rest",
        .failed.len(), .failed.len() + .applied.len(),
        .failed.iter().map(|(a, e)| format!("{} {}: {e}", a.kind(), a.resource())).collect::<Vec<_>>().join("; "),
        .applied.iter().map(|a| format!("{} {}", a.kind(), a.resource())).collect::<Vec<_>>().join(", "))]
    Act { applied: Vec<Action>, failed: Vec<(Action, AwsError)> },
    #[error("the zone was handed over, but completing terminate action {hook} of {instance_id} failed: {source}")]
    Lifecycle { hook: String, instance_id: String, source: AwsError },
    /// Some zones could not be planned (`(group, reason)`); the others were handled. Raised only at
    /// the edges (`Hook::invoke`, the CLI), from a report that lists them: see `Report::failures`.
    #[error("failed for {}", .failures.iter().map(|(g, e)| format!("{g}: {e}")).collect::<Vec<_>>().join("; "))]
    ZonesFailed { failures: Vec<(String, String)> },
}

impl HookError {
    /// Retrying the same event cannot help: the instance or the configuration is wrong.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Malformed(_) | Self::Config(_) | Self::Refused(_) => true,
            Self::Aws(e) => !e.retryable,
            Self::Act { failed, .. } => failed.iter().all(|(_, e)| !e.retryable),
            Self::Deadline { .. } | Self::OutOfTime { .. } | Self::Lifecycle { .. } | Self::ZonesFailed { .. } => false,
        }
    }

    /// IAM refused one of the calls: alarmed on its own (`AuthorizationErrors`).
    pub fn is_authorization(&self) -> bool {
        match self {
            Self::Aws(e) | Self::Lifecycle { source: e, .. } => e.is_authorization(),
            Self::Act { failed, .. } => failed.iter().any(|(_, e)| e.is_authorization()),
            _ => false,
        }
    }

    /// A stable name for the Lambda runtime's error report and for alarms.
    pub fn error_type(&self) -> &'static str {
        if self.is_authorization() {
            return "AuthorizationError";
        }
        match self {
            Self::Malformed(_) => "MalformedEvent",
            Self::Config(_) => "InvalidConfiguration",
            Self::Refused(Refusal::ZoneMismatch { .. }) => "ZoneMismatch",
            Self::Refused(_) => "MissingResource",
            Self::Aws(_) => "AwsError",
            Self::Deadline { .. } | Self::OutOfTime { .. } => "DeadlineExceeded",
            Self::Act { .. } => "ActionsFailed",
            Self::Lifecycle { .. } => "LifecycleCompletionFailed",
            // The name predates the trigger's: any trigger's failed zones (docs/runbook.md's table).
            Self::ZonesFailed { .. } => "ReconcileFailed",
        }
    }
}

impl HookError {
    /// The report's failed zones as the invocation's error, if any zone failed.
    pub fn zones_failed(report: &Report) -> Option<Self> {
        let failures = report.failures();
        (!failures.is_empty()).then_some(Self::ZonesFailed { failures })
    }
}

impl From<HookError> for Diagnostic {
    fn from(err: HookError) -> Self {
        Diagnostic { error_type: err.error_type().to_owned(), error_message: err.to_string() }
    }
}
