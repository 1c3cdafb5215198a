//! A launch: identity strictly before routes, and what the SDK and EC2 throw at it (throttling,
//! eventual consistency, deadlines, a failing round, a refusal).

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_autoscaling::types::LifecycleState;
use aws_sdk_ec2::operation::associate_address::AssociateAddressOutput;
use aws_sdk_ec2::operation::describe_route_tables::DescribeRouteTablesOutput;
use aws_sdk_ec2::types::{InstanceStateName, Route, RouteState, RouteTable};
use aws_smithy_mocks::mock;
use nat_asg_hook::decide::Refusal;
use nat_asg_hook::error::HookError;
use nat_asg_hook::model::Mode;
use nat_asg_hook::retry::Deadline;
use serde_json::json;

use crate::fake::*;

#[tokio::test(start_paused = true)]
async fn a_launch_moves_identity_strictly_before_routes() {
    let aws = Aws::new(State::refreshed());
    let report = handle(&aws, launched(NEW)).await.unwrap();
    assert_eq!(report.summary.outcome.to_string(), "applied");
    assert_eq!(report.summary.instance_id.as_deref(), Some(NEW));
    let log = aws.log();
    assert_eq!(log.len(), 4, "{log:?}");
    assert!(last(&log, "associate").max(last(&log, "source-dest")) < first(&log, "route"), "{log:?}");
    assert_eq!(aws.eip("eipalloc-0000000a"), Some(eni(NEW)));
    assert_eq!((aws.route("rtb-000000a1"), aws.route("rtb-000000a2")), (Some(eni(NEW)), Some(eni(NEW))));
    assert_eq!(aws.route("rtb-000000b1"), Some(eni(SIBLING)), "another zone's table is not touched");
    assert_eq!(aws.describe_groups.num_calls(), 1, "one observe round");
    assert_eq!(aws.complete.num_calls(), 0, "the hook never completes a launch action");
}

#[tokio::test(start_paused = true)]
async fn a_done_event_makes_one_read_round_and_no_mutating_call() {
    let aws = Aws::new(State::converged());
    let report = handle(&aws, launched(NEW)).await.unwrap();
    assert_eq!(report.summary.outcome.to_string(), "unchanged");
    assert_eq!(aws.mutations(), 0);
    assert_eq!(aws.reads(), 5, "addresses, tables, the instance, the groups, their instances: one round");
}

#[tokio::test(start_paused = true)]
async fn the_launch_lifecycle_action_moves_nothing_and_calls_nothing() {
    let aws = Aws::new(State::refreshed());
    let report = handle(&aws, launch_lifecycle_action()).await.unwrap();
    assert_eq!(report.summary.outcome.to_string(), "ignored");
    assert!(report.summary.reason.as_deref().unwrap().contains("completes its own launch action"));
    assert_eq!(aws.reads() + aws.mutations() + aws.complete.num_calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_identity_round_that_fails_keeps_the_routes_where_they_are() {
    let mut aws = Aws::new(State::refreshed());
    aws.modify = mock!(aws_sdk_ec2::Client::modify_network_interface_attribute).then_http_response(|| {
        ec2_error(403, "UnauthorizedOperation", "You are not authorized to perform this operation.")
    });
    let err = handle(&aws, launched(NEW)).await.unwrap_err();
    assert_eq!(err.error_type(), "AuthorizationError");
    assert!(err.is_permanent());
    assert_eq!(aws.replace.num_calls() + aws.create.num_calls(), 0, "routes must not move");
    assert_eq!((aws.route("rtb-000000a1"), aws.route("rtb-000000a2")), (Some(eni(OLD)), Some(eni(OLD))));
    let HookError::Act { applied, failed } = &err else { panic!("{err}") };
    assert_eq!((applied.len(), failed.len()), (1, 1), "the EIP moved, the source/dest check did not");
}

#[tokio::test(start_paused = true)]
async fn throttling_is_retried_by_the_sdk() {
    let mut aws = Aws::new(State::refreshed());
    let state = Arc::clone(&aws.state);
    aws.describe_route_tables = mock!(aws_sdk_ec2::Client::describe_route_tables)
        .sequence()
        .http_response(|| ec2_error(503, "RequestLimitExceeded", "Request limit exceeded."))
        .times(2)
        .output(move || {
            let s = state.lock().unwrap();
            let tables = s.routes.iter().map(|(id, r)| {
                let (to, _) = r.clone().unwrap();
                RouteTable::builder()
                    .route_table_id(id)
                    .routes(
                        Route::builder()
                            .destination_cidr_block("0.0.0.0/0")
                            .network_interface_id(to)
                            .state(RouteState::Active)
                            .build(),
                    )
                    .build()
            });
            DescribeRouteTablesOutput::builder().set_route_tables(Some(tables.collect())).build()
        })
        .build();
    let report = handle(&aws, launched(NEW)).await.unwrap();
    assert_eq!(report.summary.outcome.to_string(), "applied");
    assert_eq!(aws.describe_route_tables.num_calls(), 3);
    assert_eq!(aws.route("rtb-000000a1"), Some(eni(NEW)));
}

#[tokio::test(start_paused = true)]
async fn throttling_that_never_ends_is_a_retryable_error_that_moves_nothing() {
    let mut aws = Aws::new(State::refreshed());
    aws.describe_addresses = mock!(aws_sdk_ec2::Client::describe_addresses)
        .then_http_response(|| ec2_error(503, "RequestLimitExceeded", "Request limit exceeded."));
    let err = handle(&aws, launched(NEW)).await.unwrap_err();
    assert!(matches!(&err, HookError::Aws(e) if e.code == "RequestLimitExceeded" && e.retryable), "{err}");
    assert!(!err.is_permanent());
    assert_eq!(aws.describe_addresses.num_calls(), 5, "the SDK's standard retry: 5 attempts");
    assert_eq!(aws.mutations(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_fresh_launch_whose_instance_nobody_shows_yet_is_waited_for() {
    let aws = Aws::new(State::refreshed());
    let state = Arc::clone(&aws.state);
    let hidden = {
        let mut s = state.lock().unwrap();
        let vm = s.vms.iter().position(|vm| vm.id == NEW).unwrap();
        s.members.retain(|(_, id, _)| *id != NEW);
        s.vms.remove(vm)
    };
    // It appears a moment later, as EC2 and Auto Scaling catch up.
    let appear = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let mut s = state.lock().unwrap();
        s.vms.push(hidden);
        s.members.push(("nat-a", NEW, LifecycleState::InService));
    });
    let report = handle(&aws, launched(NEW)).await.unwrap();
    appear.await.unwrap();
    assert_eq!(report.summary.outcome.to_string(), "applied");
    assert!(aws.describe_groups.num_calls() >= 2, "observed again");
    assert_eq!(aws.eip("eipalloc-0000000a"), Some(eni(NEW)));
}

#[tokio::test(start_paused = true)]
async fn waiting_past_the_deadline_is_an_error_and_an_old_event_is_stale() {
    let mut state = State::refreshed();
    state.vms.retain(|vm| vm.id != NEW);
    state.members.retain(|(_, id, _)| *id != NEW);
    let aws = Aws::new(state);
    let started = tokio::time::Instant::now();
    let err = aws.hook().handle(launched(NEW), Mode::Apply, Deadline::after(Duration::from_secs(3))).await.unwrap_err();
    assert!(matches!(err, HookError::Deadline { .. }), "{err}");
    assert!(started.elapsed() <= Duration::from_secs(3), "waited past the deadline");
    assert!(aws.describe_groups.num_calls() >= 3);
    assert_eq!(aws.mutations(), 0);

    let report = handle(&aws, launched_long_ago(NEW)).await.unwrap();
    assert_eq!(report.summary.outcome.to_string(), "stale");
}

#[tokio::test(start_paused = true)]
async fn eventual_consistency_errors_from_the_writes_are_waited_out() {
    let mut aws = Aws::new(State::refreshed());
    aws.associate = mock!(aws_sdk_ec2::Client::associate_address)
        .sequence()
        .http_response(|| {
            ec2_error(400, "InvalidNetworkInterfaceID.NotFound", "The networkInterface ID does not exist")
        })
        .http_response(|| ec2_error(400, "IncorrectInstanceState", "The pending instance is not in a valid state"))
        .times(2)
        .output(|| AssociateAddressOutput::builder().build())
        .build();
    let report = handle(&aws, launched(NEW)).await.unwrap();
    assert_eq!(report.summary.outcome.to_string(), "applied");
    assert_eq!(aws.associate.num_calls(), 4);
    assert_eq!(aws.route("rtb-000000a1"), Some(eni(NEW)));
}

#[tokio::test(start_paused = true)]
async fn a_route_gone_since_observe_is_created_and_one_that_appeared_is_replaced() {
    let mut aws = Aws::new(State::refreshed());
    aws.replace = mock!(aws_sdk_ec2::Client::replace_route).then_http_response(|| {
        ec2_error(400, "InvalidParameterValue", "There is no route defined for '0.0.0.0/0' in the route table.")
    });
    let report = handle(&aws, launched(NEW)).await.unwrap();
    assert_eq!(report.summary.outcome.to_string(), "applied");
    assert_eq!((aws.replace.num_calls(), aws.create.num_calls()), (2, 2));

    let mut state = State::refreshed();
    state.routes.insert("rtb-000000a1".into(), None);
    let mut aws = Aws::new(state);
    aws.create = mock!(aws_sdk_ec2::Client::create_route).then_http_response(|| {
        ec2_error(400, "RouteAlreadyExists", "The route identified by 0.0.0.0/0 already exists.")
    });
    handle(&aws, launched(NEW)).await.unwrap();
    assert_eq!((aws.create.num_calls(), aws.replace.num_calls()), (1, 2));
}

#[tokio::test(start_paused = true)]
async fn a_zone_mismatch_is_refused_and_moves_nothing() {
    let mut state = State::refreshed();
    state.vms.iter_mut().filter(|vm| vm.id == NEW).for_each(|vm| vm.zone = "us-east-1b");
    let aws = Aws::new(state);
    let err = handle(&aws, launched(NEW)).await.unwrap_err();
    assert!(
        matches!(&err, HookError::Refused(Refusal::ZoneMismatch { group, instance_id, .. }) if group == "nat-a" && instance_id == NEW),
        "{err:?}"
    );
    assert_eq!(err.error_type(), "ZoneMismatch", "the runbook's name");
    assert_eq!(aws.mutations() + aws.complete.num_calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_stale_launch_moves_nothing() {
    let aws = Aws::new(State::converged());
    {
        let mut s = aws.state.lock().unwrap();
        s.vms.push(Vm {
            id: OLD,
            zone: "us-east-1a",
            state: InstanceStateName::Terminated,
            source_dest_check: false,
            launched: 1,
            group: "nat-a",
        });
    }
    let report = handle(&aws, launched(OLD)).await.unwrap();
    assert_eq!(report.summary.outcome.to_string(), "stale");
    assert_eq!(aws.mutations(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_malformed_event_makes_no_aws_call() {
    let aws = Aws::new(State::refreshed());
    let mut event = launched(NEW);
    event["detail"]["EC2InstanceId"] = json!(42);
    let err = handle(&aws, event).await.unwrap_err();
    assert_eq!(err.error_type(), "MalformedEvent");
    assert_eq!(aws.reads() + aws.mutations(), 0);
}

#[tokio::test(start_paused = true)]
async fn dry_run_makes_no_mutating_call() {
    let aws = Aws::new(State::refreshed());
    let report =
        aws.hook().handle(launched(NEW), Mode::DryRun, Deadline::after(Duration::from_secs(20))).await.unwrap();
    assert_eq!(report.summary.actions.len(), 4);
    assert!(report.summary.actions.iter().all(|a| a.status == Mode::DryRun));
    assert_eq!(aws.mutations(), 0);
}
