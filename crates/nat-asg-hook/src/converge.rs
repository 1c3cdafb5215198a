//! Converging: the one core operation every trigger uses (the launch, a leaving or warned NAT, the
//! schedule's reconcile, a drain): observe, decide (pure), then act in two rounds, identity before
//! routes. Safe to repeat: it only plans what differs.

use futures_util::future::join_all;
use tracing::{info, instrument, warn};

use crate::aws::{Clients, act, observe};
use crate::config::Config;
use crate::decide::{Decision, Plan, Subject, decide, tables_targeting};
use crate::error::{AwsError, HookError};
use crate::model::{Action, Mode, World};
use crate::report::{GroupReport, Outcome, zone_report};
use crate::retry::{Backoff, Deadline};

/// Observes what `subject` needs and decides, observing again (with bounded backoff) while EC2
/// and Auto Scaling have not caught up with each other. Never answers `NotYetVisible`.
#[instrument(skip_all, fields(subject = ?subject))]
pub async fn observe_and_decide(
    clients: &Clients,
    config: &Config,
    subject: Subject<'_>,
    deadline: &Deadline,
) -> Result<(Decision, World), HookError> {
    let mut backoff = Backoff::default();
    loop {
        let world = match subject {
            // The critical path: one round.
            Subject::Launched { instance, .. } => observe::observe_all(clients, config, &[instance.to_owned()]).await?,
            Subject::Leaving { instance, .. } | Subject::Warned { instance, .. } => {
                // The event names the group (a terminate action, a NAT's own report): it is ours.
                let by_group = match subject {
                    Subject::Leaving { by_group, .. } => by_group,
                    _ => matches!(subject, Subject::Warned { group: Some(_), .. }),
                };
                let mut world = if by_group {
                    observe::observe_state(clients, config, &[instance.to_owned()]).await?
                } else {
                    // An EC2 state change or Spot warning, for any instance of the region: one
                    // call, and an instance that no configured group launched is not a NAT of ours.
                    let nat = observe::observe_instance(clients, instance)
                        .await?
                        .filter(|view| view.group.as_deref().is_some_and(|g| config.group(g).is_some()));
                    let Some(view) = nat else {
                        let reason = format!("{instance} is not an instance of a configured NAT group");
                        return Ok((Decision::Ignored { reason }, World::default()));
                    };
                    let mut world = observe::observe_state(clients, config, &[]).await?;
                    world.add_instances(vec![view]);
                    world
                };
                // Nothing routes through it: nothing to hand over (a NAT of ours warned again
                // after its hand-over: unchanged; any other instance's state change: not ours).
                if tables_targeting(config, &world, instance).next().is_none() {
                    let decision = if by_group || matches!(subject, Subject::Warned { .. }) {
                        Decision::Plan(Plan::default())
                    } else {
                        Decision::Ignored { reason: format!("no configured route table goes to {instance}") }
                    };
                    return Ok((decision, world));
                }
                observe::add_groups(clients, config, &mut world).await?;
                world
            }
            Subject::Everything | Subject::Drain { .. } => {
                observe::observe_state_then_groups(clients, config, &[]).await?
            }
        };
        match decide(config, subject, &world)? {
            Decision::NotYetVisible { reason } => {
                info!(%reason, attempt = backoff.attempts, "EC2 and Auto Scaling have not caught up, observing again");
                if !backoff.wait(deadline).await {
                    return Err(HookError::Deadline { what: reason, attempts: backoff.attempts });
                }
            }
            decision => return Ok((decision, world)),
        }
    }
}

/// Carries out a plan: the identity round (Elastic IPs, source/dest checks), then, only if all of
/// it succeeded, the routes round. Each round sends its calls concurrently. Returns one report per
/// zone; a zone the plan refused is reported `failed` (after the other zones were handled): the
/// edges make that the invocation's error, not this.
pub async fn execute(
    clients: &Clients,
    plan: &Plan,
    mode: Mode,
    deadline: &Deadline,
) -> Result<Vec<GroupReport>, HookError> {
    if mode == Mode::Apply {
        let identity = plan.identity();
        run_round(clients, &identity, &[], deadline).await?;
        run_round(clients, &plan.routes(), &identity, deadline).await?;
        for zone in plan.zones.iter().filter(|z| !z.is_unchanged()) {
            info!(group = %zone.group, actions = zone.actions().count(), follows = ?zone.follows, "zone converged");
        }
    }
    let refused = plan
        .refused
        .iter()
        .map(|r| GroupReport::new(Outcome::Failed, Some(r.group()), None).with_reason(r.to_string()));
    Ok(plan.zones.iter().map(|zone| zone_report(zone, mode)).chain(refused).collect())
}

/// One round of concurrent calls. On any failure, the error lists what this and earlier rounds
/// applied, and nothing later runs.
async fn run_round(
    clients: &Clients,
    actions: &[Action],
    earlier: &[Action],
    deadline: &Deadline,
) -> Result<(), HookError> {
    if actions.is_empty() {
        return Ok(());
    }
    let results: Vec<Result<(), AwsError>> =
        join_all(actions.iter().map(|action| act::execute(clients, action, deadline))).await;
    let mut applied: Vec<Action> = earlier.to_vec();
    let mut failed = Vec::new();
    for (action, result) in actions.iter().zip(results) {
        match result {
            Ok(()) => applied.push(action.clone()),
            Err(e) => failed.push((action.clone(), e)),
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    warn!(failed = failed.len(), "a round failed: later rounds (the routes, if this was identity) do not run");
    Err(HookError::Act { applied, failed })
}
