//! Completing a leaving instance's terminate lifecycle action, so that the group goes on and
//! terminates it. Always CONTINUE: the hook never holds an instance back and never abandons one
//! (a launching instance completes its own launch action). And telling a group that EC2 warned of
//! its instance's end (Unhealthy), so that the group replaces it now.

use tracing::{info, instrument};

use super::Clients;
use crate::error::AwsError;
use crate::event::LifecycleAction;

/// What became of the completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    Continued,
    /// "No active Lifecycle Action found": an earlier delivery, or the heartbeat timeout, did it.
    AlreadyDone,
}

impl Completion {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Continued => "CONTINUE",
            Self::AlreadyDone => "already completed",
        }
    }
}

/// Pushes the terminate action's deadline out by the hook's heartbeat timeout, so that the group
/// keeps the leaving instance (and the routes still on it) while the hand-over is retried.
#[instrument(skip(clients, action), fields(hook = %action.hook_name))]
pub async fn keep_alive(
    clients: &Clients,
    group: &str,
    instance_id: &str,
    action: &LifecycleAction,
) -> Result<(), AwsError> {
    clients
        .autoscaling
        .record_lifecycle_action_heartbeat()
        .auto_scaling_group_name(group)
        .lifecycle_hook_name(&action.hook_name)
        .instance_id(instance_id)
        .set_lifecycle_action_token(action.token.clone())
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("RecordLifecycleActionHeartbeat", e))?;
    info!("terminate action kept alive for another heartbeat");
    Ok(())
}

#[instrument(skip(clients, action), fields(hook = %action.hook_name))]
pub async fn continue_termination(
    clients: &Clients,
    group: &str,
    instance_id: &str,
    action: &LifecycleAction,
) -> Result<Completion, AwsError> {
    let sent = clients
        .autoscaling
        .complete_lifecycle_action()
        .auto_scaling_group_name(group)
        .lifecycle_hook_name(&action.hook_name)
        .instance_id(instance_id)
        .set_lifecycle_action_token(action.token.clone())
        .lifecycle_action_result("CONTINUE")
        .send()
        .await;
    match sent {
        Ok(_) => {
            info!("terminate action completed");
            Ok(Completion::Continued)
        }
        Err(e) => {
            let e = AwsError::from_sdk("CompleteLifecycleAction", e);
            if e.message.contains("No active Lifecycle Action found") {
                info!("terminate action already completed");
                Ok(Completion::AlreadyDone)
            } else {
                Err(e)
            }
        }
    }
}

/// Marks a warned instance Unhealthy in its group: the group replaces it at once (launch before
/// terminate, under the module's instance maintenance policy), and no later decision picks it,
/// neither for its own zone nor as a sibling.
#[instrument(skip(clients))]
pub async fn mark_unhealthy(clients: &Clients, instance_id: &str) -> Result<(), AwsError> {
    clients
        .autoscaling
        .set_instance_health()
        .instance_id(instance_id)
        .health_status("Unhealthy")
        .should_respect_grace_period(false)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("SetInstanceHealth", e))?;
    info!("instance marked Unhealthy in its group");
    Ok(())
}
