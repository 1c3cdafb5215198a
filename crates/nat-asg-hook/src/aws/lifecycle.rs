//! Completing the launch lifecycle action, so the group puts the instance in service (CONTINUE)
//! or replaces it (ABANDON).

use tracing::{info, instrument};

use super::Clients;
use crate::error::AwsError;
use crate::event::LifecycleAction;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleResult {
    Continue,
    Abandon,
}

impl LifecycleResult {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Continue => "CONTINUE",
            Self::Abandon => "ABANDON",
        }
    }
}

/// What became of the completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    Completed(LifecycleResult),
    /// "No active Lifecycle Action found": an earlier delivery, or the heartbeat timeout, did it.
    AlreadyDone,
}

impl Completion {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Completed(LifecycleResult::Continue) => "CONTINUE",
            Self::Completed(LifecycleResult::Abandon) => "ABANDON",
            Self::AlreadyDone => "already completed",
        }
    }
}

#[instrument(skip(clients, action), fields(hook = %action.hook_name, result = result.as_str()))]
pub async fn complete(
    clients: &Clients,
    group: &str,
    instance_id: &str,
    action: &LifecycleAction,
    result: LifecycleResult,
) -> Result<Completion, AwsError> {
    let sent = clients
        .autoscaling
        .complete_lifecycle_action()
        .auto_scaling_group_name(group)
        .lifecycle_hook_name(&action.hook_name)
        .instance_id(instance_id)
        .set_lifecycle_action_token(action.token.clone())
        .lifecycle_action_result(result.as_str())
        .send()
        .await;
    match sent {
        Ok(_) => {
            info!("lifecycle action completed");
            Ok(Completion::Completed(result))
        }
        Err(e) => {
            let e = AwsError::from_sdk("CompleteLifecycleAction", e);
            if e.message.contains("No active Lifecycle Action found") {
                info!("lifecycle action already completed");
                Ok(Completion::AlreadyDone)
            } else {
                Err(e)
            }
        }
    }
}
