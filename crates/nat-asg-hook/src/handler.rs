//! The handler: one event in, one report out. The Lambda runtime and the operator's `replay`
//! and `reconcile` commands all come through `Hook::handle`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::aws::Clients;
use crate::aws::lifecycle::{self, LifecycleResult};
use crate::config::Config;
use crate::decide::Subject;
use crate::error::HookError;
use crate::event::{self, Launch, Trigger};
use crate::reconcile::{Mode, reconcile};
use crate::report::{GroupReport, Outcome, Report, emf_line};
use crate::retry::Deadline;

/// The time kept back from the Lambda deadline to report and log.
const DEADLINE_MARGIN: Duration = Duration::from_millis(1500);
/// The budget when there is no Lambda deadline (replay, tests).
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(25);

/// The hook's state for its whole life: the clients and the configuration, built once.
#[derive(Debug, Clone)]
pub struct Hook {
    pub clients: Clients,
    pub config: Config,
}

impl Hook {
    pub fn new(clients: Clients, config: Config) -> Self {
        Self { clients, config }
    }

    /// The Lambda entry point: handle, then log one EMF line with the outcome and duration.
    pub async fn invoke(&self, event: LambdaEvent<Value>) -> Result<Value, HookError> {
        let deadline = Deadline::after(lambda_budget(event.context.deadline));
        let started = Instant::now();
        let result = self.handle(event.payload, Mode::Apply, deadline).await;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
        let elapsed = started.elapsed().as_millis() as u64;
        match &result {
            Ok(report) => println!(
                "{}",
                emf_line(
                    now,
                    report.summary.outcome.as_str(),
                    report.summary.auto_scaling_group.as_deref(),
                    elapsed,
                    report.applied_count()
                )
            ),
            Err(e) => {
                error!(error_type = e.error_type(), error = %e, duration_ms = elapsed, "invocation failed");
                println!("{}", emf_line(now, "error", None, elapsed, 0));
            }
        }
        let report = result?;
        Ok(serde_json::to_value(&report).unwrap_or_default())
    }

    /// Classifies the event and does what it asks. Malformed events fail before any AWS call.
    pub async fn handle(&self, event: Value, mode: Mode, deadline: Deadline) -> Result<Report, HookError> {
        let started = Instant::now();
        let trigger = event::parse(event, &self.config)?;
        // Every wait inside already stops at the deadline; this bounds the AWS calls in flight too,
        // so the invocation always answers (and reports) before Lambda's own timeout.
        let budget = deadline.remaining();
        let mut report = tokio::time::timeout(budget, self.dispatch(trigger, mode, &deadline))
            .await
            .map_err(|_| HookError::OutOfTime { budget_ms: budget.as_millis() as u64 })??;
        report.duration_ms = started.elapsed().as_millis() as u64;
        let field = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".to_owned());
        info!(
            outcome = report.summary.outcome.as_str(),
            group = %field(&report.summary.auto_scaling_group),
            instance_id = %field(&report.summary.instance_id),
            eni = %field(&report.summary.network_interface_id),
            actions = report.summary.actions.len(),
            duration_ms = report.duration_ms,
            "handled"
        );
        Ok(report)
    }

    async fn dispatch(&self, trigger: Trigger, mode: Mode, deadline: &Deadline) -> Result<Report, HookError> {
        Ok(match trigger {
            Trigger::Ignored(ignored) => {
                info!(detail_type = %ignored.detail_type, group = ignored.group.as_deref().unwrap_or("-"), reason = %ignored.reason, "event ignored");
                let group =
                    GroupReport::new(Outcome::Ignored, ignored.group.as_deref(), ignored.instance_id.as_deref());
                Report::single(group.with_reason(ignored.reason), mode == Mode::DryRun)
            }
            Trigger::Launch(launch) => self.launch(&launch, mode, deadline).await?,
            Trigger::Reconcile => self.reconcile_all(mode, deadline).await?,
        })
    }

    /// A launch: move the group to the new instance, then complete its lifecycle action.
    async fn launch(&self, launch: &Launch, mode: Mode, deadline: &Deadline) -> Result<Report, HookError> {
        let group = &launch.group;
        let instance = &launch.instance_id;
        let result = reconcile(&self.clients, &self.config, group, Subject::Launched(instance), mode, deadline).await;
        let dry_run = mode == Mode::DryRun;
        let Some(action) = launch.lifecycle.as_ref().filter(|_| !dry_run) else {
            return result.map(|g| Report::single(g, dry_run));
        };
        match result {
            Ok(report) if matches!(report.outcome, Outcome::Applied | Outcome::Unchanged) => {
                let completion = lifecycle::complete(&self.clients, group, instance, action, LifecycleResult::Continue)
                    .await
                    .map_err(|source| HookError::Lifecycle {
                        hook: action.hook_name.clone(),
                        instance_id: instance.clone(),
                        source,
                    })?;
                let mut report = Report::single(report, false);
                report.lifecycle_action = Some(completion.describe());
                Ok(report)
            }
            // Stale: the instance is not the group's to keep; its hook times out by itself.
            Ok(report) => Ok(Report::single(report, false)),
            Err(e) if e.is_permanent() => {
                // Retrying cannot fix this instance: let the group replace it now rather than at
                // the heartbeat timeout. The error is still reported.
                match lifecycle::complete(&self.clients, group, instance, action, LifecycleResult::Abandon).await {
                    Ok(c) => {
                        warn!(instance_id = %instance, completion = c.describe(), error = %e, "instance abandoned")
                    }
                    Err(abandon) => warn!(instance_id = %instance, error = %abandon, "could not abandon the instance"),
                }
                if matches!(&e, HookError::Act { applied, .. } if !applied.is_empty()) {
                    self.hand_back(group, instance, deadline).await;
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// After abandoning an instance that some of the moves had already reached: whatever the group
    /// still holds InService (the outgoing instance of an instance refresh) gets the EIP and the
    /// routes back now, not at the next scheduled reconcile. The launch's own error is what the
    /// invocation reports; this only logs.
    async fn hand_back(&self, group: &str, abandoned: &str, deadline: &Deadline) {
        let subject = Subject::Abandoned(abandoned);
        match reconcile(&self.clients, &self.config, group, subject, Mode::Apply, deadline).await {
            Ok(report) => warn!(
                group = %group,
                outcome = report.outcome.as_str(),
                instance_id = report.instance_id.as_deref().unwrap_or("-"),
                "moves handed back to the instance the group holds InService"
            ),
            Err(e) => error!(group = %group, error = %e, "could not hand the moves back; the schedule will retry"),
        }
    }

    /// The schedule: every group, concurrently, against the instance its group holds InService.
    async fn reconcile_all(&self, mode: Mode, deadline: &Deadline) -> Result<Report, HookError> {
        let names: Vec<&String> = self.config.groups.keys().collect();
        let results = join_all(
            names.iter().map(|name| reconcile(&self.clients, &self.config, name, Subject::InService, mode, deadline)),
        )
        .await;
        let mut groups = Vec::new();
        let mut failures = Vec::new();
        for (name, result) in names.into_iter().zip(results) {
            match result {
                Ok(report) => groups.push(report),
                Err(e) => {
                    failures.push((name.clone(), e.to_string()));
                    groups.push(GroupReport::new(Outcome::Failed, Some(name), None).with_reason(e.to_string()));
                }
            }
        }
        let report = Report::reconcile(groups, mode == Mode::DryRun);
        if failures.is_empty() { Ok(report) } else { Err(HookError::Reconcile { failures, report: Box::new(report) }) }
    }
}

/// The time left before the Lambda deadline (epoch milliseconds), less a margin to report. A
/// deadline that is not in the future (none given, or a local emulator's placeholder) falls back to
/// the default budget.
fn lambda_budget(deadline_ms: u64) -> Duration {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let deadline = Duration::from_millis(deadline_ms);
    if deadline <= now {
        return DEFAULT_BUDGET;
    }
    (deadline - now).saturating_sub(DEADLINE_MARGIN).max(Duration::from_millis(500))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_keeps_a_margin_below_the_lambda_deadline() {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let budget = lambda_budget(now + 30_000);
        assert!(budget <= Duration::from_millis(28_500) && budget > Duration::from_secs(27), "{budget:?}");
        assert_eq!(lambda_budget(0), DEFAULT_BUDGET);
        assert_eq!(lambda_budget(now + 1_000), Duration::from_millis(500));
        assert_eq!(lambda_budget(600_000), DEFAULT_BUDGET, "cargo lambda watch sends a constant, not an epoch");
    }
}
