//! The schedule's reconcile: fail over, fail back, leave a launch in progress alone.

use aws_sdk_autoscaling::types::LifecycleState;
use aws_sdk_ec2::types::InstanceStateName;

use nat_asg_hook::error::HookError;

use crate::fake::*;

#[tokio::test(start_paused = true)]
async fn the_schedule_fails_over_a_dark_zone_and_fails_it_back() {
    let mut state = State::alone_and_leaving();
    state.members.retain(|(_, id, _)| *id != OLD);
    state.vms.iter_mut().filter(|vm| vm.id == OLD).for_each(|vm| vm.state = InstanceStateName::Terminated);
    state.routes.insert("rtb-000000a1".into(), Some((eni(OLD), false)));
    let aws = Aws::new(state);
    let report = handle(&aws, scheduled()).await.unwrap();
    assert_eq!(report.zone_health.map(|h| (h.without_own_nat, h.failed_over)), Some((1, 1)));
    assert_eq!((aws.route("rtb-000000a1"), aws.route("rtb-000000a2")), (Some(eni(SIBLING)), Some(eni(SIBLING))));

    // The replacement proved itself: the next run takes the zone back, identity first.
    {
        let mut s = aws.state.lock().unwrap();
        s.vms.push(Vm {
            id: NEW,
            zone: "us-east-1a",
            state: InstanceStateName::Running,
            source_dest_check: true,
            launched: 1_900_000_000,
            group: "nat-a",
        });
        s.members.push(("nat-a", NEW, LifecycleState::InService));
        s.log.clear();
    }
    let report = handle(&aws, scheduled()).await.unwrap();
    assert_eq!(report.zone_health.map(|h| (h.without_own_nat, h.failed_over)), Some((0, 0)));
    let log = aws.log();
    assert!(last(&log, "source-dest") < first(&log, "route"), "{log:?}");
    assert_eq!((aws.route("rtb-000000a1"), aws.eip("eipalloc-0000000a")), (Some(eni(NEW)), Some(eni(NEW))));
    assert_eq!(aws.complete.num_calls(), 0, "no lifecycle action on the schedule");
}

#[tokio::test(start_paused = true)]
async fn the_schedule_leaves_a_launch_in_progress_alone() {
    let mut state = State::refreshed();
    state.members[1].2 = LifecycleState::PendingWait;
    let aws = Aws::new(state);
    let report = handle(&aws, scheduled()).await.unwrap();
    assert_eq!(report.summary.outcome.to_string(), "unchanged");
    assert_eq!(aws.mutations(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_zone_the_schedule_cannot_plan_is_in_the_report_and_the_edge_makes_it_the_error() {
    let mut state = State::converged();
    state.routes.remove("rtb-000000a2");
    let aws = Aws::new(state);
    let report = handle(&aws, scheduled()).await.unwrap();
    assert_eq!(
        report.failures(),
        [("nat-a".to_owned(), "group nat-a: route tables rtb-000000a2 do not exist".to_owned())]
    );
    assert!(report.summary.auto_scaling_group.is_none() && report.zone_health.is_none(), "{report:?}");
    assert!(
        report.groups.iter().any(|g| g.auto_scaling_group.as_deref() == Some("nat-b")),
        "the other zone was handled"
    );
    let error = HookError::zones_failed(&report).unwrap();
    assert_eq!(error.error_type(), "ReconcileFailed", "the runbook's name");
    assert!(!error.is_permanent());
}
