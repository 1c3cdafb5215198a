//! A leaving NAT: the terminate lifecycle action (hand-over, then CONTINUE, or not) and the EC2
//! state change.

use std::time::Duration;

use aws_sdk_autoscaling::types::LifecycleState;
use aws_sdk_ec2::types::InstanceStateName;
use aws_smithy_mocks::mock;
use nat_asg_hook::model::Mode;
use nat_asg_hook::retry::Deadline;

use crate::fake::*;

#[tokio::test(start_paused = true)]
async fn a_terminate_action_fails_the_zone_over_then_continues() {
    let aws = Aws::new(State::alone_and_leaving());
    let report = handle(&aws, terminating(OLD)).await.unwrap();
    assert_eq!(report.summary.outcome.to_string(), "applied");
    let failover = report.summary.failover.as_ref().expect("the report names the sibling");
    assert_eq!((failover.auto_scaling_group.as_str(), failover.instance_id.as_str()), ("nat-b", SIBLING));
    assert_eq!((aws.route("rtb-000000a1"), aws.route("rtb-000000a2")), (Some(eni(SIBLING)), Some(eni(SIBLING))));
    assert_eq!(aws.eip("eipalloc-0000000a"), Some(eni(OLD)), "the EIP never crosses zones");
    let log = aws.log();
    assert_eq!(log.last().unwrap(), &format!("complete nat-asg-hook-terminate {OLD} CONTINUE"), "{log:?}");
    assert_eq!(report.lifecycle_action, Some("CONTINUE"));
}

#[tokio::test(start_paused = true)]
async fn a_terminate_action_with_a_newer_instance_in_service_cuts_over_to_it() {
    // An instance refresh whose launch event was lost.
    let mut state = State::refreshed();
    state.members[0].2 = LifecycleState::TerminatingWait;
    let aws = Aws::new(state);
    let report = handle(&aws, terminating(OLD)).await.unwrap();
    assert!(report.summary.failover.is_none());
    assert_eq!(report.summary.instance_id.as_deref(), Some(NEW));
    assert_eq!(aws.eip("eipalloc-0000000a"), Some(eni(NEW)));
    assert_eq!(aws.route("rtb-000000a1"), Some(eni(NEW)));
    assert_eq!(aws.log().last().unwrap(), &format!("complete nat-asg-hook-terminate {OLD} CONTINUE"));
}

#[tokio::test(start_paused = true)]
async fn a_terminate_action_for_a_nat_its_group_holds_in_service_moves_and_completes_nothing() {
    // Replayed or forged: the group never began terminating NEW, which carries the zone.
    let aws = Aws::new(State::converged());
    let report = handle(&aws, terminating(NEW)).await.unwrap();
    assert_eq!(report.summary.outcome.to_string(), "stale");
    assert_eq!(aws.mutations() + aws.complete.num_calls(), 0);
    assert_eq!((aws.route("rtb-000000a1"), aws.eip("eipalloc-0000000a")), (Some(eni(NEW)), Some(eni(NEW))));
}

#[tokio::test(start_paused = true)]
async fn failover_off_leaves_the_routes_and_still_continues() {
    let aws = Aws::new(State::alone_and_leaving());
    let mut hook = aws.hook();
    hook.config.failover = false;
    let report = hook.handle(terminating(OLD), Mode::Apply, Deadline::after(Duration::from_secs(20))).await.unwrap();
    assert_eq!(report.summary.outcome.to_string(), "no_instance");
    assert_eq!(aws.mutations(), 0);
    assert_eq!(aws.route("rtb-000000a1"), Some(eni(OLD)));
    assert_eq!(aws.complete.num_calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_terminate_action_already_completed_counts_as_done() {
    let mut aws = Aws::new(State::alone_and_leaving());
    aws.complete = mock!(aws_sdk_autoscaling::Client::complete_lifecycle_action).then_http_response(|| {
        autoscaling_error(
            400,
            "ValidationError",
            "No active Lifecycle Action found with instance ID i-0000000000000000a",
        )
    });
    let report = handle(&aws, terminating(OLD)).await.unwrap();
    assert_eq!(report.lifecycle_action, Some("already completed"));
}

#[tokio::test(start_paused = true)]
async fn a_failed_completion_is_an_error_so_lambda_retries() {
    let mut aws = Aws::new(State::alone_and_leaving());
    aws.complete = mock!(aws_sdk_autoscaling::Client::complete_lifecycle_action)
        .then_http_response(|| autoscaling_error(500, "InternalFailure", "internal error"));
    let err = handle(&aws, terminating(OLD)).await.unwrap_err();
    assert_eq!(err.error_type(), "LifecycleCompletionFailed");
    assert_eq!(aws.route("rtb-000000a1"), Some(eni(SIBLING)), "the zone was handed over first");
}

#[tokio::test(start_paused = true)]
async fn a_handover_a_retry_can_fix_does_not_complete_one_no_retry_can_fix_does() {
    let mut aws = Aws::new(State::alone_and_leaving());
    aws.replace = mock!(aws_sdk_ec2::Client::replace_route)
        .then_http_response(|| ec2_error(503, "RequestLimitExceeded", "Request limit exceeded."));
    let err = handle(&aws, terminating(OLD)).await.unwrap_err();
    assert!(!err.is_permanent(), "{err}");
    assert_eq!(aws.complete.num_calls(), 0, "Lambda redelivers while the instance still forwards");
    let log = aws.log();
    let heartbeats = log.iter().filter(|l| l.starts_with("heartbeat nat-asg-hook-terminate")).count();
    assert!(heartbeats >= 2, "retried within the invocation, the action kept alive meanwhile: {log:?}");
    assert!(log.last().unwrap().starts_with("heartbeat"), "the last word keeps it alive for Lambda's retry: {log:?}");

    let mut aws = Aws::new(State::alone_and_leaving());
    aws.replace = mock!(aws_sdk_ec2::Client::replace_route).then_http_response(|| {
        ec2_error(403, "UnauthorizedOperation", "You are not authorized to perform this operation.")
    });
    let err = handle(&aws, terminating(OLD)).await.unwrap_err();
    assert_eq!(err.error_type(), "AuthorizationError");
    assert_eq!(aws.log().last().unwrap(), &format!("complete nat-asg-hook-terminate {OLD} CONTINUE"));
}

#[tokio::test(start_paused = true)]
async fn a_state_change_fails_the_zone_over() {
    let mut state = State::alone_and_leaving();
    state.members[0].2 = LifecycleState::InService; // the group has not noticed yet
    state.vms.iter_mut().filter(|vm| vm.id == OLD).for_each(|vm| vm.state = InstanceStateName::ShuttingDown);
    let aws = Aws::new(state);
    let report = handle(&aws, state_change(OLD, "shutting-down")).await.unwrap();
    assert_eq!(report.summary.auto_scaling_group.as_deref(), Some("nat-a"));
    assert_eq!(aws.route("rtb-000000a2"), Some(eni(SIBLING)));
    assert_eq!(aws.complete.num_calls(), 0, "a state change carries no lifecycle action");
}

#[tokio::test(start_paused = true)]
async fn a_state_change_of_an_unrelated_instance_costs_one_call_and_no_mutating_call() {
    let aws = Aws::new(State::converged());
    let report = handle(&aws, state_change("i-0000000000000beef", "stopped")).await.unwrap();
    assert_eq!(report.summary.outcome.to_string(), "ignored");
    assert_eq!(aws.mutations() + aws.complete.num_calls(), 0);
    assert_eq!(aws.reads(), 1, "the rule sees every instance of the region: one DescribeInstances each");
    assert_eq!(aws.describe_instances.num_calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_late_stopping_event_for_a_running_nat_moves_nothing() {
    let aws = Aws::new(State::converged());
    let report = handle(&aws, state_change(NEW, "stopping")).await.unwrap();
    assert_eq!(report.summary.outcome.to_string(), "stale");
    assert_eq!(aws.mutations(), 0);
}
