//! The AWS glue and the handler on the real SDK clients, with responses from `aws-smithy-mocks`:
//! throttling, eventual consistency, deadlines, lifecycle completion and route fallbacks, none of
//! which the emulator can produce on demand.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_autoscaling::operation::complete_lifecycle_action::CompleteLifecycleActionOutput;
use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput;
use aws_sdk_autoscaling::types::{AutoScalingGroup, Instance as AsgInstance, LifecycleState};
use aws_sdk_ec2::operation::associate_address::AssociateAddressOutput;
use aws_sdk_ec2::operation::create_route::CreateRouteOutput;
use aws_sdk_ec2::operation::describe_addresses::DescribeAddressesOutput;
use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_sdk_ec2::operation::describe_route_tables::DescribeRouteTablesOutput;
use aws_sdk_ec2::operation::modify_network_interface_attribute::ModifyNetworkInterfaceAttributeOutput;
use aws_sdk_ec2::operation::replace_route::ReplaceRouteOutput;
use aws_sdk_ec2::primitives::DateTime;
use aws_sdk_ec2::types::{
    Address, Instance, InstanceNetworkInterface, InstanceNetworkInterfaceAttachment, InstanceState, InstanceStateName,
    Placement, Reservation, Route, RouteState, RouteTable,
};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use nat_asg_hook::aws::{Clients, retry_config, timeout_config};
use nat_asg_hook::config::Config;
use nat_asg_hook::error::HookError;
use nat_asg_hook::handler::Hook;
use nat_asg_hook::reconcile::Mode;
use nat_asg_hook::retry::Deadline;
use serde_json::{Value, json};

const GROUP: &str = "nat-a";
const NEW: &str = "i-00000000000000002";
const NEW_ENI: &str = "eni-00000000000000002";
const OLD_ENI: &str = "eni-00000000000000001";
const EIP: &str = "eipalloc-11111111";
const RTB: &str = "rtb-11111111";

fn config() -> Config {
    Config::from_json(&format!(
        r#"{{"groups": {{"{GROUP}": {{"availability_zone": "us-east-1a", "eip_allocation_id": "{EIP}", "route_table_ids": ["{RTB}"]}}}}}}"#
    ))
    .unwrap()
}

fn lifecycle_event() -> Value {
    json!({"version": "0", "id": "e1", "detail-type": "EC2 Instance-launch Lifecycle Action", "source": "aws.autoscaling",
           "account": "123456789012", "time": "2026-11-27T05:00:00Z", "region": "us-east-1", "resources": [],
           "detail": {"LifecycleActionToken": "token-1", "AutoScalingGroupName": GROUP, "LifecycleHookName": "nat-launch",
                      "EC2InstanceId": NEW, "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING"}})
}

fn scheduled_event() -> Value {
    json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}})
}

// --- canned describe outputs ---------------------------------------------------------------------

/// An instance with its primary ENI, as DescribeInstances shows it.
fn instance(
    id: &str,
    eni: &str,
    state: InstanceStateName,
    zone: &str,
    source_dest_check: bool,
    launched: i64,
) -> Instance {
    let eni = InstanceNetworkInterface::builder()
        .network_interface_id(eni)
        .private_ip_address("10.0.0.10")
        .source_dest_check(source_dest_check)
        .attachment(InstanceNetworkInterfaceAttachment::builder().device_index(0).build())
        .build();
    Instance::builder()
        .instance_id(id)
        .state(InstanceState::builder().name(state).build())
        .placement(Placement::builder().availability_zone(zone).build())
        .launch_time(DateTime::from_secs(launched))
        .network_interfaces(eni)
        .build()
}

fn instances(state: InstanceStateName, zone: &str) -> DescribeInstancesOutput {
    let new = instance(NEW, NEW_ENI, state, zone, true, 1_800_000_000);
    DescribeInstancesOutput::builder().reservations(Reservation::builder().instances(new).build()).build()
}

fn no_instances() -> DescribeInstancesOutput {
    DescribeInstancesOutput::builder().build()
}

/// The group holding these instances in these lifecycle states.
fn group_of(members: &[(&str, LifecycleState)]) -> DescribeAutoScalingGroupsOutput {
    let members = members.iter().map(|(id, state)| {
        AsgInstance::builder().instance_id(*id).lifecycle_state(state.clone()).availability_zone("us-east-1a").build()
    });
    DescribeAutoScalingGroupsOutput::builder()
        .auto_scaling_groups(
            AutoScalingGroup::builder().auto_scaling_group_name(GROUP).set_instances(Some(members.collect())).build(),
        )
        .build()
}

fn group(state: LifecycleState) -> DescribeAutoScalingGroupsOutput {
    group_of(&[(NEW, state)])
}

fn address(eni: &str) -> DescribeAddressesOutput {
    DescribeAddressesOutput::builder()
        .addresses(Address::builder().allocation_id(EIP).public_ip("198.51.100.7").network_interface_id(eni).build())
        .build()
}

fn route_table(eni: Option<&str>) -> DescribeRouteTablesOutput {
    let mut table = RouteTable::builder().route_table_id(RTB).routes(
        Route::builder().destination_cidr_block("10.0.0.0/16").gateway_id("local").state(RouteState::Active).build(),
    );
    if let Some(eni) = eni {
        table = table.routes(
            Route::builder()
                .destination_cidr_block("0.0.0.0/0")
                .network_interface_id(eni)
                .state(RouteState::Active)
                .build(),
        );
    }
    DescribeRouteTablesOutput::builder().route_tables(table.build()).build()
}

/// An EC2 (or Auto Scaling) error as the service sends it, so the SDK parses and classifies it.
fn ec2_error(status: u16, code: &str, message: &str) -> HttpResponse {
    let body = format!(
        "<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>r1</RequestID></Response>"
    );
    HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body))
}

fn autoscaling_error(status: u16, code: &str, message: &str) -> HttpResponse {
    let body = format!(
        "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>r1</RequestId></ErrorResponse>"
    );
    HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body))
}

// --- the world, as rules ---------------------------------------------------------------------------

/// One rule per operation the hook may call; tests swap in the ones they exercise.
struct World {
    describe_instances: Rule,
    describe_group: Rule,
    describe_addresses: Rule,
    describe_route_tables: Rule,
    associate: Rule,
    modify: Rule,
    replace: Rule,
    create: Rule,
    complete: Rule,
}

impl World {
    /// Right after a replacement: the new instance pending, EIP and route still on the old ENI.
    fn replaced() -> Self {
        Self {
            describe_instances: mock!(aws_sdk_ec2::Client::describe_instances)
                .then_output(|| instances(InstanceStateName::Pending, "us-east-1a")),
            describe_group: mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups)
                .then_output(|| group(LifecycleState::PendingWait)),
            describe_addresses: mock!(aws_sdk_ec2::Client::describe_addresses).then_output(|| address(OLD_ENI)),
            describe_route_tables: mock!(aws_sdk_ec2::Client::describe_route_tables)
                .then_output(|| route_table(Some(OLD_ENI))),
            associate: mock!(aws_sdk_ec2::Client::associate_address)
                .match_requests(|r| {
                    r.allocation_id() == Some(EIP)
                        && r.network_interface_id() == Some(NEW_ENI)
                        && r.allow_reassociation() == Some(true)
                })
                .then_output(|| AssociateAddressOutput::builder().association_id("eipassoc-1").build()),
            modify: mock!(aws_sdk_ec2::Client::modify_network_interface_attribute)
                .match_requests(|r| {
                    r.network_interface_id() == Some(NEW_ENI)
                        && r.source_dest_check().and_then(|v| v.value()) == Some(false)
                })
                .then_output(|| ModifyNetworkInterfaceAttributeOutput::builder().build()),
            replace: mock!(aws_sdk_ec2::Client::replace_route)
                .match_requests(|r| {
                    r.route_table_id() == Some(RTB)
                        && r.destination_cidr_block() == Some("0.0.0.0/0")
                        && r.network_interface_id() == Some(NEW_ENI)
                })
                .then_output(|| ReplaceRouteOutput::builder().build()),
            create: mock!(aws_sdk_ec2::Client::create_route)
                .match_requests(|r| r.route_table_id() == Some(RTB) && r.network_interface_id() == Some(NEW_ENI))
                .then_output(|| CreateRouteOutput::builder().r#return(true).build()),
            complete: mock!(aws_sdk_autoscaling::Client::complete_lifecycle_action)
                .match_requests(|r| {
                    r.lifecycle_action_result() == Some("CONTINUE")
                        && r.lifecycle_action_token() == Some("token-1")
                        && r.instance_id() == Some(NEW)
                        && r.lifecycle_hook_name() == Some("nat-launch")
                })
                .then_output(|| CompleteLifecycleActionOutput::builder().build()),
        }
    }

    /// The same world once the hook has done its work.
    fn converged() -> Self {
        let mut world = Self::replaced();
        world.describe_instances = mock!(aws_sdk_ec2::Client::describe_instances).then_output(|| {
            let mut out = instances(InstanceStateName::Running, "us-east-1a");
            if let Some(reservations) = out.reservations.as_mut() {
                for i in reservations.iter_mut().flat_map(|r| r.instances.iter_mut().flatten()) {
                    for ni in i.network_interfaces.iter_mut().flatten() {
                        ni.source_dest_check = Some(false);
                    }
                }
            }
            out
        });
        world.describe_group = mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups)
            .then_output(|| group(LifecycleState::InService));
        world.describe_addresses = mock!(aws_sdk_ec2::Client::describe_addresses).then_output(|| address(NEW_ENI));
        world.describe_route_tables =
            mock!(aws_sdk_ec2::Client::describe_route_tables).then_output(|| route_table(Some(NEW_ENI)));
        world
    }

    fn hook(&self) -> Hook {
        let ec2_rules = [
            &self.describe_instances,
            &self.describe_addresses,
            &self.describe_route_tables,
            &self.associate,
            &self.modify,
            &self.replace,
            &self.create,
        ];
        let asg_rules = [&self.describe_group, &self.complete];
        let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, ec2_rules, |c| c
            .retry_config(retry_config())
            .timeout_config(timeout_config()));
        let autoscaling = mock_client!(aws_sdk_autoscaling, RuleMode::MatchAny, asg_rules, |c| c
            .retry_config(retry_config())
            .timeout_config(timeout_config()));
        Hook::new(Clients { ec2, autoscaling }, config())
    }

    fn mutations(&self) -> usize {
        self.associate.num_calls() + self.modify.num_calls() + self.replace.num_calls() + self.create.num_calls()
    }

    fn calls(&self) -> usize {
        self.mutations()
            + self.describe_instances.num_calls()
            + self.describe_group.num_calls()
            + self.describe_addresses.num_calls()
            + self.describe_route_tables.num_calls()
            + self.complete.num_calls()
    }
}

async fn handle(world: &World, event: Value) -> Result<nat_asg_hook::report::Report, HookError> {
    world.hook().handle(event, Mode::Apply, Deadline::after(Duration::from_secs(20))).await
}

fn actions(report: &nat_asg_hook::report::Report) -> Vec<&'static str> {
    report.summary.actions.iter().map(|a| a.action.kind()).collect()
}

// --- the tests -------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_launch_moves_everything_in_one_act_round_then_continues() {
    let world = World::replaced();
    let report = handle(&world, lifecycle_event()).await.unwrap();
    assert_eq!(actions(&report), ["associate_address", "disable_source_dest_check", "replace_route"]);
    assert_eq!(report.lifecycle_action, Some("CONTINUE"));
    assert_eq!(
        (world.associate.num_calls(), world.modify.num_calls(), world.replace.num_calls(), world.create.num_calls()),
        (1, 1, 1, 0)
    );
    assert_eq!(world.describe_instances.num_calls(), 1, "one observe round");
    assert_eq!(world.complete.num_calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_done_event_makes_no_mutating_call_and_still_continues() {
    let world = World::converged();
    let report = handle(&world, lifecycle_event()).await.unwrap();
    assert_eq!(report.summary.outcome.as_str(), "unchanged");
    assert_eq!(world.mutations(), 0);
    assert_eq!(world.complete.num_calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn throttling_is_retried_by_the_sdk() {
    let mut world = World::replaced();
    world.describe_route_tables = mock!(aws_sdk_ec2::Client::describe_route_tables)
        .sequence()
        .http_response(|| ec2_error(503, "RequestLimitExceeded", "Request limit exceeded."))
        .times(2)
        .output(|| route_table(Some(OLD_ENI)))
        .build();
    world.replace = mock!(aws_sdk_ec2::Client::replace_route)
        .sequence()
        .http_response(|| ec2_error(503, "RequestLimitExceeded", "Request limit exceeded."))
        .output(|| ReplaceRouteOutput::builder().build())
        .build();
    let report = handle(&world, lifecycle_event()).await.unwrap();
    assert_eq!(report.summary.outcome.as_str(), "applied");
    assert_eq!(world.describe_route_tables.num_calls(), 3);
    assert_eq!(world.replace.num_calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn throttling_that_never_ends_is_an_error_and_does_not_abandon() {
    let mut world = World::replaced();
    world.describe_addresses = mock!(aws_sdk_ec2::Client::describe_addresses)
        .then_http_response(|| ec2_error(503, "RequestLimitExceeded", "Request limit exceeded."));
    let err = handle(&world, lifecycle_event()).await.unwrap_err();
    assert!(matches!(&err, HookError::Aws(e) if e.code == "RequestLimitExceeded" && e.retryable), "{err}");
    assert!(!err.is_permanent());
    assert_eq!(world.describe_addresses.num_calls(), 5, "the SDK's standard retry: 5 attempts");
    assert_eq!(world.mutations(), 0);
    assert_eq!(world.complete.num_calls(), 0, "a retryable failure leaves the instance to Lambda's retry");
}

#[tokio::test(start_paused = true)]
async fn an_instance_ec2_does_not_show_yet_is_waited_for() {
    let mut world = World::replaced();
    world.describe_instances = mock!(aws_sdk_ec2::Client::describe_instances)
        .sequence()
        .output(no_instances)
        .times(2)
        .output(|| instances(InstanceStateName::Pending, "us-east-1a"))
        .build();
    let report = handle(&world, lifecycle_event()).await.unwrap();
    assert_eq!(report.summary.outcome.as_str(), "applied");
    assert_eq!(world.describe_instances.num_calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn invalid_instance_id_not_found_from_ec2_is_waited_for_too() {
    let mut world = World::replaced();
    world.associate = mock!(aws_sdk_ec2::Client::associate_address)
        .sequence()
        .http_response(|| {
            ec2_error(400, "InvalidNetworkInterfaceID.NotFound", "The networkInterface ID does not exist")
        })
        .output(|| AssociateAddressOutput::builder().build())
        .build();
    let report = handle(&world, lifecycle_event()).await.unwrap();
    assert_eq!(report.summary.outcome.as_str(), "applied");
    assert_eq!(world.associate.num_calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_pending_instance_is_retried_until_it_runs() {
    let mut world = World::replaced();
    world.associate = mock!(aws_sdk_ec2::Client::associate_address)
        .sequence()
        .http_response(|| ec2_error(400, "IncorrectInstanceState", "The pending instance is not in a valid state"))
        .times(3)
        .output(|| AssociateAddressOutput::builder().build())
        .build();
    let report = handle(&world, lifecycle_event()).await.unwrap();
    assert_eq!(report.summary.outcome.as_str(), "applied");
    assert_eq!(world.associate.num_calls(), 4);
    assert_eq!(report.lifecycle_action, Some("CONTINUE"));
}

#[tokio::test(start_paused = true)]
async fn waiting_past_the_deadline_is_an_error_without_abandon() {
    let mut world = World::replaced();
    world.describe_instances = mock!(aws_sdk_ec2::Client::describe_instances).then_output(no_instances);
    let hook = world.hook();
    let started = tokio::time::Instant::now();
    let err = hook.handle(lifecycle_event(), Mode::Apply, Deadline::after(Duration::from_secs(3))).await.unwrap_err();
    assert!(matches!(err, HookError::Deadline { .. }), "{err}");
    assert!(started.elapsed() <= Duration::from_secs(3), "waited past the deadline");
    assert!(world.describe_instances.num_calls() >= 3);
    assert_eq!(world.mutations(), 0);
    assert_eq!(world.complete.num_calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_route_gone_since_observe_is_created() {
    let mut world = World::replaced();
    world.replace = mock!(aws_sdk_ec2::Client::replace_route).then_http_response(|| {
        ec2_error(400, "InvalidParameterValue", "There is no route defined for '0.0.0.0/0' in the route table.")
    });
    let report = handle(&world, lifecycle_event()).await.unwrap();
    assert_eq!(report.summary.outcome.as_str(), "applied");
    assert_eq!((world.replace.num_calls(), world.create.num_calls()), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_route_that_appeared_since_observe_is_replaced() {
    let mut world = World::replaced();
    world.describe_route_tables = mock!(aws_sdk_ec2::Client::describe_route_tables).then_output(|| route_table(None));
    world.create = mock!(aws_sdk_ec2::Client::create_route).then_http_response(|| {
        ec2_error(400, "RouteAlreadyExists", "The route identified by 0.0.0.0/0 already exists.")
    });
    let report = handle(&world, lifecycle_event()).await.unwrap();
    assert_eq!(actions(&report), ["associate_address", "disable_source_dest_check", "create_route"]);
    assert_eq!((world.create.num_calls(), world.replace.num_calls()), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_zone_mismatch_abandons_the_instance_and_reports_the_error() {
    let mut world = World::replaced();
    world.describe_instances = mock!(aws_sdk_ec2::Client::describe_instances)
        .then_output(|| instances(InstanceStateName::Pending, "us-east-1b"));
    world.complete = mock!(aws_sdk_autoscaling::Client::complete_lifecycle_action)
        .match_requests(|r| r.lifecycle_action_result() == Some("ABANDON") && r.instance_id() == Some(NEW))
        .then_output(|| CompleteLifecycleActionOutput::builder().build());
    let err = handle(&world, lifecycle_event()).await.unwrap_err();
    assert_eq!(err.error_type(), "ZoneMismatch");
    assert_eq!(world.complete.num_calls(), 1);
    assert_eq!(world.mutations(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_action_already_completed_counts_as_done() {
    let mut world = World::replaced();
    world.complete = mock!(aws_sdk_autoscaling::Client::complete_lifecycle_action).then_http_response(|| {
        autoscaling_error(
            400,
            "ValidationError",
            "No active Lifecycle Action found with instance ID i-00000000000000002",
        )
    });
    let report = handle(&world, lifecycle_event()).await.unwrap();
    assert_eq!(report.lifecycle_action, Some("already completed"));
    assert_eq!(report.summary.outcome.as_str(), "applied");
}

#[tokio::test(start_paused = true)]
async fn a_failed_completion_is_an_error_so_lambda_retries() {
    let mut world = World::replaced();
    world.complete = mock!(aws_sdk_autoscaling::Client::complete_lifecycle_action)
        .then_http_response(|| autoscaling_error(500, "InternalFailure", "internal error"));
    let err = handle(&world, lifecycle_event()).await.unwrap_err();
    assert_eq!(err.error_type(), "LifecycleCompletionFailed");
    assert_eq!(world.replace.num_calls(), 1, "the routes moved first");
}

#[tokio::test(start_paused = true)]
async fn a_half_finished_act_round_reports_what_applied_and_what_failed() {
    let mut world = World::replaced();
    world.replace = mock!(aws_sdk_ec2::Client::replace_route).then_http_response(|| {
        ec2_error(403, "UnauthorizedOperation", "You are not authorized to perform this operation.")
    });
    world.complete = mock!(aws_sdk_autoscaling::Client::complete_lifecycle_action)
        .match_requests(|r| r.lifecycle_action_result() == Some("ABANDON"))
        .then_output(|| CompleteLifecycleActionOutput::builder().build());
    let err = handle(&world, lifecycle_event()).await.unwrap_err();
    let HookError::Act { applied, failed } = &err else { panic!("{err}") };
    assert_eq!(applied.len(), 2);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].1.code, "UnauthorizedOperation");
    assert!(err.to_string().contains("replace_route rtb-11111111"), "{err}");
    assert_eq!(world.complete.num_calls(), 1, "a permanent failure abandons the instance");
}

#[tokio::test(start_paused = true)]
async fn an_abandoned_refresh_launch_hands_the_moves_back_to_the_instance_in_service() {
    // An instance refresh: OLD is InService and holds everything; NEW comes in and its ENI refuses
    // the source/dest change for good, after the EIP and the route have moved to it. The group
    // still lists NEW as Pending:Wait after the ABANDON (Auto Scaling lags).
    const OLD: &str = "i-00000000000000001";
    let state = Arc::new(Mutex::new((OLD_ENI.to_owned(), OLD_ENI.to_owned()))); // (EIP's ENI, route's ENI)
    let mut world = World::replaced();
    world.describe_group = mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups)
        .then_output(|| group_of(&[(OLD, LifecycleState::InService), (NEW, LifecycleState::PendingWait)]));
    world.describe_instances = mock!(aws_sdk_ec2::Client::describe_instances).then_compute_output(|r| {
        let asked: Vec<&str> = r.filters().iter().flat_map(|f| f.values()).map(String::as_str).collect();
        let running = InstanceStateName::Running;
        let known = [
            instance(OLD, OLD_ENI, running.clone(), "us-east-1a", false, 1_700_000_000),
            instance(NEW, NEW_ENI, running, "us-east-1a", true, 1_800_000_000),
        ];
        let found: Vec<Instance> =
            known.into_iter().filter(|i| asked.contains(&i.instance_id().unwrap_or_default())).collect();
        DescribeInstancesOutput::builder()
            .reservations(Reservation::builder().set_instances(Some(found)).build())
            .build()
    });
    let seen = Arc::clone(&state);
    world.describe_addresses =
        mock!(aws_sdk_ec2::Client::describe_addresses).then_compute_output(move |_| address(&seen.lock().unwrap().0));
    let seen = Arc::clone(&state);
    world.describe_route_tables = mock!(aws_sdk_ec2::Client::describe_route_tables)
        .then_compute_output(move |_| route_table(Some(&seen.lock().unwrap().1)));
    let moved = Arc::clone(&state);
    world.associate = mock!(aws_sdk_ec2::Client::associate_address).then_compute_output(move |r| {
        moved.lock().unwrap().0 = r.network_interface_id().unwrap().to_owned();
        AssociateAddressOutput::builder().association_id("eipassoc-1").build()
    });
    let moved = Arc::clone(&state);
    world.replace = mock!(aws_sdk_ec2::Client::replace_route).then_compute_output(move |r| {
        moved.lock().unwrap().1 = r.network_interface_id().unwrap().to_owned();
        ReplaceRouteOutput::builder().build()
    });
    world.modify = mock!(aws_sdk_ec2::Client::modify_network_interface_attribute)
        .match_requests(|r| r.network_interface_id() == Some(NEW_ENI))
        .then_http_response(|| {
            ec2_error(403, "UnauthorizedOperation", "You are not authorized to perform this operation.")
        });
    world.complete = mock!(aws_sdk_autoscaling::Client::complete_lifecycle_action)
        .match_requests(|r| r.lifecycle_action_result() == Some("ABANDON") && r.instance_id() == Some(NEW))
        .then_output(|| CompleteLifecycleActionOutput::builder().build());

    let err = handle(&world, lifecycle_event()).await.unwrap_err();
    let HookError::Act { applied, failed } = &err else { panic!("{err}") };
    assert_eq!((applied.len(), failed.len()), (2, 1), "the EIP and the route reached NEW first");
    assert_eq!(world.complete.num_calls(), 1, "NEW is abandoned");
    assert_eq!(*state.lock().unwrap(), (OLD_ENI.to_owned(), OLD_ENI.to_owned()), "everything is back on OLD");
    assert_eq!((world.associate.num_calls(), world.replace.num_calls()), (2, 2));
    assert_eq!(world.modify.num_calls(), 1, "OLD's source/dest check was already off");
}

#[tokio::test(start_paused = true)]
async fn a_stale_event_moves_nothing_and_completes_nothing() {
    let mut world = World::replaced();
    world.describe_instances = mock!(aws_sdk_ec2::Client::describe_instances)
        .then_output(|| instances(InstanceStateName::Terminated, "us-east-1a"));
    world.describe_group = mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups).then_output(|| {
        DescribeAutoScalingGroupsOutput::builder()
            .auto_scaling_groups(AutoScalingGroup::builder().auto_scaling_group_name(GROUP).build())
            .build()
    });
    let report = handle(&world, lifecycle_event()).await.unwrap();
    assert_eq!(report.summary.outcome.as_str(), "stale");
    assert_eq!(world.mutations(), 0);
    assert_eq!(world.complete.num_calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_malformed_event_makes_no_aws_call() {
    let world = World::replaced();
    let mut event = lifecycle_event();
    event["detail"]["EC2InstanceId"] = json!(42);
    let err = handle(&world, event).await.unwrap_err();
    assert_eq!(err.error_type(), "MalformedEvent");
    assert_eq!(world.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn dry_run_makes_no_mutating_call_and_completes_nothing() {
    let world = World::replaced();
    let report =
        world.hook().handle(lifecycle_event(), Mode::DryRun, Deadline::after(Duration::from_secs(20))).await.unwrap();
    assert_eq!(report.summary.actions.len(), 3);
    assert!(report.summary.actions.iter().all(|a| a.status == "planned"));
    assert_eq!(world.mutations() + world.complete.num_calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_schedule_reconciles_against_the_in_service_instance() {
    let mut world = World::replaced();
    world.describe_group = mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups)
        .then_output(|| group(LifecycleState::InService));
    let report = handle(&world, scheduled_event()).await.unwrap();
    assert_eq!(report.summary.outcome.as_str(), "applied");
    assert_eq!(report.groups.len(), 1);
    assert_eq!(report.groups[0].instance_id.as_deref(), Some(NEW));
    assert_eq!(world.replace.num_calls(), 1);
    assert_eq!(world.complete.num_calls(), 0, "no lifecycle action on the schedule");
}

#[tokio::test(start_paused = true)]
async fn the_schedule_leaves_a_pending_launch_to_its_event() {
    let world = World::replaced();
    let report = handle(&world, scheduled_event()).await.unwrap();
    assert_eq!(report.summary.outcome.as_str(), "unchanged");
    assert_eq!(report.groups[0].outcome.as_str(), "no_instance");
    assert_eq!(world.mutations(), 0);
}
