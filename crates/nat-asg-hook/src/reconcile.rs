//! The one core operation every trigger uses: observe (one concurrent round), decide (pure),
//! act (one concurrent round). Safe to repeat: it only plans what differs.

use futures_util::future::join_all;
use tracing::{info, instrument, warn};

use crate::aws::{Clients, act, observe};
use crate::config::Config;
use crate::decide::{Decision, Subject, decide};
use crate::error::HookError;
use crate::report::{ActionReport, GroupReport, Outcome};
use crate::retry::{Backoff, Deadline};

/// Whether the hook may change anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Apply,
    /// Observe and plan only: no mutating call at all.
    DryRun,
}

/// Reconciles one configured group with `subject`. Errors are failures the caller must report
/// (so Lambda retries); stale and no-instance answers are not errors.
#[instrument(skip_all, fields(group = %group_name, dry_run = mode == Mode::DryRun))]
pub async fn reconcile(
    clients: &Clients,
    config: &Config,
    group_name: &str,
    subject: Subject<'_>,
    mode: Mode,
    deadline: &Deadline,
) -> Result<GroupReport, HookError> {
    let Some(group) = config.group(group_name) else {
        return Ok(GroupReport::new(Outcome::Ignored, Some(group_name), None).with_reason("group is not configured"));
    };
    let subject_id = match subject {
        Subject::Launched(id) => Some(id),
        Subject::InService | Subject::Abandoned(_) => None,
    };
    let destination = config.destination_cidr_block.as_str();
    let instance_ids: Vec<String> = subject_id.map(str::to_owned).into_iter().collect();
    let mut backoff = Backoff::default();

    let (instance_id, eni, actions) = loop {
        let observed = observe::observe_group(clients, group_name, group, destination, &instance_ids).await?;
        match decide(group_name, group, destination, subject, &observed)? {
            Decision::Converge { instance_id, network_interface_id, actions } => {
                break (instance_id, network_interface_id, actions);
            }
            Decision::Stale { reason } => {
                info!(instance_id = subject_id.unwrap_or("-"), %reason, "stale: nothing moves");
                return Ok(GroupReport::new(Outcome::Stale, Some(group_name), subject_id).with_reason(reason));
            }
            Decision::NoInstance { reason } => {
                warn!(%reason, "no InService instance to point at");
                return Ok(GroupReport::new(Outcome::NoInstance, Some(group_name), None).with_reason(reason));
            }
            Decision::NotYetVisible { reason } => {
                info!(%reason, attempt = backoff.attempts, "EC2 has not caught up, observing again");
                if !backoff.wait(deadline).await {
                    return Err(HookError::Deadline { what: reason, attempts: backoff.attempts });
                }
            }
        }
    };

    let mut report = GroupReport::new(Outcome::Unchanged, Some(group_name), Some(&instance_id));
    report.network_interface_id = Some(eni.clone());
    if actions.is_empty() {
        info!(instance_id = %instance_id, eni = %eni, "already right: nothing to change");
        return Ok(report);
    }
    report.outcome = Outcome::Applied;
    if mode == Mode::DryRun {
        report.actions = actions.into_iter().map(|action| ActionReport { action, status: "planned" }).collect();
        return Ok(report);
    }

    let results = join_all(actions.iter().map(|action| act::execute(clients, action, deadline))).await;
    let mut applied = Vec::new();
    let mut failed = Vec::new();
    for (action, result) in actions.into_iter().zip(results) {
        match result {
            Ok(()) => applied.push(action),
            Err(e) => failed.push((action, e)),
        }
    }
    if !failed.is_empty() {
        return Err(HookError::Act { applied, failed });
    }
    info!(instance_id = %instance_id, eni = %eni, actions = applied.len(), "group converged");
    report.actions = applied.into_iter().map(|action| ActionReport { action, status: "applied" }).collect();
    Ok(report)
}
