//! The handler: one event in, one report out. The Lambda runtime and the operator's `replay`
//! and `reconcile` commands all come through `Hook::handle`, which answers the report, failed
//! zones included; `Hook::invoke` (Lambda's edge) makes failed zones the invocation's error.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::aws::Clients;
use crate::aws::capacity::{self as purchase, GroupRead};
use crate::aws::lifecycle;
use crate::capacity::{self, CapacityDecision, Purchase};
use crate::config::Config;
use crate::converge::{execute, observe_and_decide};
use crate::decide::{Decision, Follows, Handover, Subject, complete_terminate};
use crate::error::HookError;
use crate::event::{self, Launch, LaunchFailed, Leaving, Trigger, Warned};
use crate::model::Mode;
use crate::report::{
    CapacityReport, GroupReport, Outcome, Report, ZoneHealth, emf_authorization_error, emf_line, emf_zones,
};
use crate::retry::{Backoff, Deadline};

/// The time kept back from the Lambda deadline to report and log.
const DEADLINE_MARGIN: Duration = Duration::from_millis(1500);
/// The budget when there is no Lambda deadline (replay, tests).
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(25);
/// A launch event younger than this whose instance nobody shows yet is waited for (EC2 and Auto
/// Scaling are eventually consistent); an older one is stale.
const FRESH_EVENT: Duration = Duration::from_secs(180);
/// A NAT's report younger than this whose group does not show the instance Unhealthy yet is
/// observed again (the NAT marks itself as it reports); an older one moves nothing.
const FRESH_REPORT: Duration = Duration::from_secs(15);

/// A failed launch older than this is not today's shortage (a dead letter replayed late, an event
/// without a time): Auto Scaling retries a failed launch within minutes, and each retry that fails
/// sends a fresh event.
const FRESH_FAILURE: Duration = Duration::from_secs(600);

/// The hook's state for its whole life: the clients and the configuration, built once.
#[derive(Debug, Clone)]
pub struct Hook {
    pub clients: Clients,
    pub config: Config,
}

pub(crate) fn now_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()
}

impl Hook {
    pub fn new(clients: Clients, config: Config) -> Self {
        Self { clients, config }
    }

    /// The Lambda entry point: handle, then log one EMF line with the outcome and duration. A
    /// zone that failed makes the invocation an error (Lambda retries, the alarms see it).
    pub async fn invoke(&self, event: LambdaEvent<Value>) -> Result<Report, HookError> {
        let deadline = Deadline::after(lambda_budget(event.context.deadline));
        let started = Instant::now();
        let mut result = self.handle(event.payload, Mode::Apply, deadline).await;
        if let Some(e) = result.as_ref().ok().and_then(HookError::zones_failed) {
            result = Err(e);
        }
        let elapsed = started.elapsed().as_millis() as u64;
        match &result {
            Ok(report) => {
                println!(
                    "{}",
                    emf_line(
                        now_ms(),
                        Some(report.summary.outcome),
                        report.summary.auto_scaling_group.as_deref(),
                        elapsed,
                        report.applied_count()
                    )
                );
                if let Some(health) = &report.zone_health {
                    println!("{}", emf_zones(now_ms(), health.without_own_nat, health.failed_over));
                }
            }
            Err(e) => {
                error!(error_type = e.error_type(), error = %e, duration_ms = elapsed, "invocation failed");
                println!("{}", emf_line(now_ms(), None, None, elapsed, 0));
                if e.is_authorization() {
                    println!("{}", emf_authorization_error(now_ms()));
                }
            }
        }
        result
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
            outcome = %report.summary.outcome,
            group = %field(&report.summary.auto_scaling_group),
            instance_id = %field(&report.summary.instance_id),
            eni = %field(&report.summary.network_interface_id),
            failover = report.summary.failover.as_ref().map(|f| f.auto_scaling_group.as_str()).unwrap_or("-"),
            actions = report.summary.actions.len(),
            duration_ms = report.duration_ms,
            "handled"
        );
        Ok(report)
    }

    async fn dispatch(&self, trigger: Trigger, mode: Mode, deadline: &Deadline) -> Result<Report, HookError> {
        match trigger {
            Trigger::Ignored(ignored) => {
                info!(detail_type = %ignored.detail_type, group = ignored.group.as_deref().unwrap_or("-"), reason = %ignored.reason, "event ignored");
                let group =
                    GroupReport::new(Outcome::Ignored, ignored.group.as_deref(), ignored.instance_id.as_deref());
                Ok(Report::single(group.with_reason(ignored.reason), mode.is_dry_run()))
            }
            Trigger::Launch(launch) => self.launch(&launch, mode, deadline).await,
            Trigger::Leaving(leaving) => self.leaving(&leaving, mode, deadline).await,
            Trigger::Warned(warned) => self.warned(&warned, mode, deadline).await,
            Trigger::LaunchFailed(failed) => self.launch_failed(&failed, mode).await,
            Trigger::Reconcile => self.reconcile(mode, deadline).await,
        }
    }

    /// Observe, decide, act; the report names `group` (and `instance`) when nothing was planned.
    async fn run(
        &self,
        subject: Subject<'_>,
        group: Option<&str>,
        instance: &str,
        mode: Mode,
        deadline: &Deadline,
    ) -> Result<Report, HookError> {
        let (decision, _) = observe_and_decide(&self.clients, &self.config, subject, deadline).await?;
        self.conclude(decision, group, instance, mode, deadline).await
    }

    /// Carries out a decision; the report names `group` (and `instance`) when nothing was planned.
    async fn conclude(
        &self,
        decision: Decision,
        group: Option<&str>,
        instance: &str,
        mode: Mode,
        deadline: &Deadline,
    ) -> Result<Report, HookError> {
        let dry_run = mode.is_dry_run();
        let (outcome, reason) = match decision {
            Decision::Plan(plan) => {
                if plan.zones.is_empty() && plan.refused.is_empty() {
                    let report = GroupReport::new(Outcome::Unchanged, group, Some(instance))
                        .with_reason(format!("no configured route table goes to {instance}"));
                    return Ok(Report::single(report, dry_run));
                }
                let zones = execute(&self.clients, &plan, mode, deadline).await?;
                return Ok(Report::many(group.or(plan.zones.first().map(|z| z.group.as_str())), zones, mode));
            }
            Decision::Stale { reason } => {
                info!(instance_id = %instance, %reason, "stale: nothing moves");
                (Outcome::Stale, reason)
            }
            Decision::Ignored { reason } => {
                info!(instance_id = %instance, %reason, "nothing of ours: nothing moves");
                (Outcome::Ignored, reason)
            }
            Decision::NotYetVisible { reason } => (Outcome::Stale, reason), // observe_and_decide never answers this
        };
        Ok(Report::single(GroupReport::new(outcome, group, Some(instance)).with_reason(reason), dry_run))
    }

    /// A NAT proved itself and went in service: its zone follows it (identity, then routes).
    async fn launch(&self, launch: &Launch, mode: Mode, deadline: &Deadline) -> Result<Report, HookError> {
        let age = (now_ms() as i64).saturating_sub(launch.time_ms);
        let fresh = age <= FRESH_EVENT.as_millis() as i64;
        let subject = Subject::Launched { group: &launch.group, instance: &launch.instance_id, fresh };
        self.run(subject, Some(&launch.group), &launch.instance_id, mode, deadline).await
    }

    /// An instance is leaving: hand over its zone (and any zone failed over onto it), then complete
    /// its terminate action, if the event carried one.
    async fn leaving(&self, leaving: &Leaving, mode: Mode, deadline: &Deadline) -> Result<Report, HookError> {
        let instance = &leaving.instance_id;
        let subject =
            Subject::Leaving { group: leaving.group.as_deref(), instance, by_group: leaving.lifecycle.is_some() };
        let mut result = self.run(subject, leaving.group.as_deref(), instance, mode, deadline).await;
        // A hand-over a retry can fix is retried here, within this invocation, while a heartbeat
        // keeps the instance (and the routes still on it) in the group: Lambda's own retry comes a
        // minute later at the earliest. The last heartbeat, sent when the deadline ends the
        // retries, covers that minute (the hook's heartbeat timeout is longer than Lambda's delay).
        if let (Some(action), Some(group), Mode::Apply) = (&leaving.lifecycle, &leaving.group, mode) {
            let mut backoff = Backoff::default();
            while retryable_failure(&result) {
                if let Err(e) = lifecycle::keep_alive(&self.clients, group, instance, action).await {
                    warn!(instance_id = %instance, error = %e, "could not record a heartbeat on the terminate action");
                }
                if !backoff.wait(deadline).await {
                    break;
                }
                info!(instance_id = %instance, attempt = backoff.attempts, "handing the zone over again");
                result = self.run(subject, leaving.group.as_deref(), instance, mode, deadline).await;
            }
        }
        if let Ok(report) = &result
            && let Some(failover) =
                report.summary.failover.as_ref().filter(|_| report.summary.outcome == Outcome::Applied)
        {
            warn!(instance_id = %instance, sibling = %failover.auto_scaling_group, "zone failed over to a sibling");
        }
        let (Some(action), Some(group)) = (&leaving.lifecycle, &leaving.group) else { return result };
        if matches!(&result, Ok(report) if report.summary.outcome == Outcome::Stale) {
            return result; // not a real terminate action: nothing to complete, nothing moved
        }
        let handover = match &result {
            Ok(report) if report.failures().is_empty() => Handover::Done,
            Ok(_) => Handover::Failed { retryable: true },
            Err(e) => Handover::Failed { retryable: !e.is_permanent() },
        };
        if !complete_terminate(handover, mode.is_dry_run()) {
            return result;
        }
        let completion = lifecycle::continue_termination(&self.clients, group, instance, action).await;
        match (result, completion) {
            (Ok(mut report), Ok(c)) => {
                report.lifecycle_action = Some(c.describe());
                Ok(report)
            }
            (Ok(_), Err(source)) => {
                Err(HookError::Lifecycle { hook: action.hook_name.clone(), instance_id: instance.clone(), source })
            }
            (Err(e), completion) => {
                match completion {
                    Ok(c) => {
                        warn!(instance_id = %instance, completion = c.describe(), error = %e, "terminate action completed despite a failure no retry can fix")
                    }
                    Err(c) => warn!(instance_id = %instance, error = %c, "could not complete the terminate action"),
                }
                Err(e)
            }
        }
    }

    /// A running NAT about to stop forwarding: hand its zone over now. EC2's Spot warning also
    /// marks the instance Unhealthy in its group first (once: a repeated warning changes nothing),
    /// so that its replacement launches now and no later decision picks it.
    async fn warned(&self, warned: &Warned, mode: Mode, deadline: &Deadline) -> Result<Report, HookError> {
        let instance = warned.instance_id.as_str();
        let proof = warned.warning.is_proof();
        let age = (now_ms() as i64).saturating_sub(warned.time_ms);
        let fresh = age <= FRESH_REPORT.as_millis() as i64;
        let subject = Subject::Warned { group: warned.group.as_deref(), instance, proof, fresh };
        let (decision, world) = observe_and_decide(&self.clients, &self.config, subject, deadline).await?;
        let group = warned.group.as_deref().or(world.instance(instance).and_then(|i| i.group.as_deref()));
        if proof
            && mode == Mode::Apply
            && matches!(decision, Decision::Plan(_))
            && let Some(name) = group
            && world.member(name, instance).is_some_and(|m| m.healthy && m.is_held())
        {
            lifecycle::mark_unhealthy(&self.clients, instance).await?;
            warn!(instance_id = %instance, group = %name, "EC2 warned this Spot NAT: marked Unhealthy, its group replaces it now");
        }
        self.conclude(decision, group, instance, mode, deadline).await
    }

    /// The schedule's reconcile: every zone, on its own NAT (fail back) or a healthy sibling's (fail over).
    async fn reconcile(&self, mode: Mode, deadline: &Deadline) -> Result<Report, HookError> {
        let (decision, _) = observe_and_decide(&self.clients, &self.config, Subject::Everything, deadline).await?;
        let Decision::Plan(plan) = decision else {
            return Ok(Report::many(None, Vec::new(), mode));
        };
        let health = ZoneHealth {
            without_own_nat: plan.zones.iter().filter(|z| !matches!(z.follows, Follows::Own { .. })).count(),
            failed_over: plan.zones.iter().filter(|z| matches!(z.follows, Follows::Sibling { .. })).count(),
        };
        if health.without_own_nat > 0 {
            warn!(
                zones_without_own_nat = health.without_own_nat,
                zones_failed_over = health.failed_over,
                "zones without a NAT of their own"
            );
        }
        let zones = execute(&self.clients, &plan, mode, deadline).await?;
        let mut report = Report::many(None, zones, mode);
        // Failed zones make the invocation an error, which reports no zone health (as it always did).
        report.zone_health = Some(health).filter(|_| plan.refused.is_empty());
        // The zones first: a capacity switch never delays a route.
        report.capacity = self.retry_spot(mode).await?;
        if !report.capacity.is_empty() {
            report.summary.outcome = Outcome::Applied;
        }
        Ok(report)
    }

    /// A group could not launch: a Spot group short of Spot capacity launches on-demand from now
    /// on, until the schedule tries Spot again (`capacity`).
    async fn launch_failed(&self, failed: &LaunchFailed, mode: Mode) -> Result<Report, HookError> {
        let fallback = self.config.spot_fallback.as_ref();
        let answer = |outcome, reason: &str| {
            let group = GroupReport::new(outcome, Some(failed.group.as_str()), None).with_reason(reason);
            Report::single(group, mode.is_dry_run())
        };
        if let Some(reason) = capacity::not_for_the_fallback(fallback, &failed.message) {
            info!(group = %failed.group, %reason, message = %failed.message, "launch failed: nothing for the fallback");
            return Ok(answer(Outcome::Ignored, reason));
        }
        let age = (now_ms() as i64).saturating_sub(failed.time_ms);
        if age > FRESH_FAILURE.as_millis() as i64 {
            let reason = format!(
                "the failure is {} s old (over {} s): not a shortage now; a current one sends a fresh event with every retry",
                age / 1000,
                FRESH_FAILURE.as_secs()
            );
            return Ok(answer(Outcome::Stale, &reason));
        }
        let Some(read) = purchase::read(&self.clients, std::slice::from_ref(&failed.group)).await?.into_iter().next()
        else {
            return Ok(answer(Outcome::Ignored, "the group does not exist any more"));
        };
        match capacity::on_launch_failed(fallback, &read.capacity, &failed.message, failed.time_ms) {
            CapacityDecision::Ignored { reason } => Ok(answer(Outcome::Ignored, &reason)),
            CapacityDecision::Unchanged { reason } => Ok(answer(Outcome::Unchanged, &reason)),
            CapacityDecision::Switch { to, base, mark, reason } => {
                let switched = self.switch(&read, to, base, mark, reason, mode).await?;
                warn!(group = %failed.group, message = %failed.message, "no Spot capacity: the group launches on-demand");
                let mut report = answer(Outcome::Applied, &switched.reason);
                report.capacity.push(switched);
                Ok(report)
            }
        }
    }

    /// The schedule's half of the fallback: every group on-demand for want of Spot whose wait is
    /// over goes back to Spot (its group then replaces the NAT, launching first).
    async fn retry_spot(&self, mode: Mode) -> Result<Vec<CapacityReport>, HookError> {
        let Some(fallback) = self.config.spot_fallback.as_ref() else { return Ok(Vec::new()) };
        let mut switched = Vec::new();
        for read in purchase::read(&self.clients, &self.config.group_names()).await? {
            if let Some(CapacityDecision::Switch { to, base, mark, reason }) =
                capacity::on_schedule(Some(fallback), &read.capacity, now_ms() as i64)
            {
                warn!(group = %read.capacity.group, "trying Spot again: the group replaces its on-demand NAT");
                switched.push(self.switch(&read, to, base, mark, reason, mode).await?);
            }
        }
        Ok(switched)
    }

    /// Switches a group's purchase: the Spot mark first (so that a group on-demand always says
    /// since when), then the base capacity.
    async fn switch(
        &self,
        read: &GroupRead,
        to: Purchase,
        base: i32,
        mark: Option<i64>,
        reason: String,
        mode: Mode,
    ) -> Result<CapacityReport, HookError> {
        let group = &read.capacity.group;
        if mode == Mode::Apply {
            if let Some(ms) = mark {
                purchase::mark_spot_unavailable(&self.clients, group, ms).await?;
            }
            purchase::set_on_demand_base(&self.clients, read, base).await?;
        }
        Ok(CapacityReport {
            auto_scaling_group: group.clone(),
            purchase: to,
            on_demand_base_capacity: base,
            status: mode,
            spot_unavailable_since: mark.or(read.capacity.spot_unavailable_ms).map(purchase::utc),
            reason,
        })
    }
}

/// A hand-over a retry can fix: an error that is not permanent, or a zone that could not be planned
/// (the refusal may be a moment of eventual consistency: it always counted as retryable).
fn retryable_failure(result: &Result<Report, HookError>) -> bool {
    match result {
        Ok(report) => !report.failures().is_empty(),
        Err(e) => !e.is_permanent(),
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
