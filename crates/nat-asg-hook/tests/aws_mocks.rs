//! The AWS glue and the handler on the real SDK clients, with responses from `aws-smithy-mocks`:
//! throttling, eventual consistency, deadlines, failing rounds, terminate completion, none of which
//! the emulator can produce on demand. The rules answer from a small shared state that the
//! mutating calls change, so each test checks where the EIP and the routes end up, and in which
//! order the calls were made.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect
#![recursion_limit = "256"]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_autoscaling::operation::complete_lifecycle_action::CompleteLifecycleActionOutput;
use aws_sdk_autoscaling::operation::create_or_update_tags::CreateOrUpdateTagsOutput;
use aws_sdk_autoscaling::operation::delete_tags::DeleteTagsOutput;
use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput;
use aws_sdk_autoscaling::operation::record_lifecycle_action_heartbeat::RecordLifecycleActionHeartbeatOutput;
use aws_sdk_autoscaling::types::{AutoScalingGroup, Instance as AsgInstance, LifecycleState, TagDescription};
use aws_sdk_ec2::operation::associate_address::AssociateAddressOutput;
use aws_sdk_ec2::operation::create_route::CreateRouteOutput;
use aws_sdk_ec2::operation::describe_addresses::DescribeAddressesOutput;
use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_sdk_ec2::operation::describe_network_interfaces::DescribeNetworkInterfacesOutput;
use aws_sdk_ec2::operation::describe_route_tables::DescribeRouteTablesOutput;
use aws_sdk_ec2::operation::modify_network_interface_attribute::ModifyNetworkInterfaceAttributeOutput;
use aws_sdk_ec2::operation::replace_route::ReplaceRouteOutput;
use aws_sdk_ec2::primitives::DateTime;
use aws_sdk_ec2::types::{
    Address, Instance, InstanceNetworkInterface, InstanceNetworkInterfaceAttachment, InstanceState, InstanceStateName,
    NetworkInterface, NetworkInterfaceAttachment, Placement, Reservation, Route, RouteState, RouteTable, Tag,
};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::date_time::Format;
use nat_asg_hook::aws::{Clients, retry_config, timeout_config};
use nat_asg_hook::config::Config;
use nat_asg_hook::drain;
use nat_asg_hook::error::HookError;
use nat_asg_hook::handler::Hook;
use nat_asg_hook::model::Mode;
use nat_asg_hook::report::Report;
use nat_asg_hook::retry::Deadline;
use nat_asg_hook::verify::{ZoneStatus, verify};
use serde_json::{Value, json};

const OLD: &str = "i-0000000000000000a";
const NEW: &str = "i-000000000000000a2";
const SIBLING: &str = "i-0000000000000000b";

fn eni(id: &str) -> String {
    id.replace("i-", "eni-")
}

fn config() -> Config {
    Config::from_json(
        r#"{"groups": {
            "nat-a": {"availability_zone": "us-east-1a", "eip_allocation_id": "eipalloc-0000000a", "route_table_ids": ["rtb-000000a1", "rtb-000000a2"]},
            "nat-b": {"availability_zone": "us-east-1b", "eip_allocation_id": "eipalloc-0000000b", "route_table_ids": ["rtb-000000b1"]}}}"#,
    )
    .unwrap()
}

// --- events ----------------------------------------------------------------------------------------

fn now_rfc3339() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    DateTime::from_secs(now).fmt(Format::DateTime).unwrap()
}

fn envelope(source: &str, detail_type: &str, time: &str, detail: Value) -> Value {
    json!({"version": "0", "id": "e1", "detail-type": detail_type, "source": source, "account": "123456789012",
           "time": time, "region": "us-east-1", "resources": [], "detail": detail})
}

fn launched(instance: &str) -> Value {
    envelope(
        "aws.autoscaling",
        "EC2 Instance Launch Successful",
        &now_rfc3339(),
        json!({"AutoScalingGroupName": "nat-a", "EC2InstanceId": instance, "StatusCode": "InProgress"}),
    )
}

fn launched_long_ago(instance: &str) -> Value {
    let mut event = launched(instance);
    event["time"] = json!("2026-01-01T00:00:00Z");
    event
}

fn launch_lifecycle_action() -> Value {
    envelope(
        "aws.autoscaling",
        "EC2 Instance-launch Lifecycle Action",
        &now_rfc3339(),
        json!({"LifecycleActionToken": "token-1", "AutoScalingGroupName": "nat-a", "LifecycleHookName": "nat-asg-hook-launch",
               "EC2InstanceId": NEW, "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING"}),
    )
}

fn terminating(instance: &str) -> Value {
    envelope(
        "aws.autoscaling",
        "EC2 Instance-terminate Lifecycle Action",
        &now_rfc3339(),
        json!({"LifecycleActionToken": "token-9", "AutoScalingGroupName": "nat-a", "LifecycleHookName": "nat-asg-hook-terminate",
               "EC2InstanceId": instance, "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING"}),
    )
}

fn state_change(instance: &str, state: &str) -> Value {
    envelope(
        "aws.ec2",
        "EC2 Instance State-change Notification",
        &now_rfc3339(),
        json!({"instance-id": instance, "state": state}),
    )
}

fn scheduled() -> Value {
    json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}})
}

// --- a small EC2 / Auto Scaling ------------------------------------------------------------------

#[derive(Clone)]
struct Vm {
    id: &'static str,
    zone: &'static str,
    state: InstanceStateName,
    source_dest_check: bool,
    launched: i64,
    group: &'static str,
}

#[derive(Default)]
struct State {
    vms: Vec<Vm>,
    /// (group, instance, lifecycle state)
    members: Vec<(&'static str, &'static str, LifecycleState)>,
    /// allocation ID -> ENI
    eips: BTreeMap<String, Option<String>>,
    /// table -> (ENI, active), None for no default route
    routes: BTreeMap<String, Option<(String, bool)>>,
    /// group -> its drain tag's value (nat-asg-hook:drained)
    drained: BTreeMap<String, String>,
    /// The drain tag writes fail with AccessDenied (an operator without the permission).
    tags_denied: bool,
    /// The mutating calls, in the order they were made.
    log: Vec<String>,
}

type Shared = Arc<Mutex<State>>;

impl State {
    /// Zone a mid-refresh: NEW proved itself (InService), EIP and routes still on OLD; zone b on SIBLING.
    fn refreshed() -> Self {
        let vm = |id, zone, group, sdc, launched| Vm {
            id,
            zone,
            state: InstanceStateName::Running,
            source_dest_check: sdc,
            launched,
            group,
        };
        let mut s = State {
            vms: vec![
                vm(OLD, "us-east-1a", "nat-a", false, 1_700_000_000),
                vm(NEW, "us-east-1a", "nat-a", true, 1_800_000_000),
                vm(SIBLING, "us-east-1b", "nat-b", false, 1_700_000_000),
            ],
            members: vec![
                ("nat-a", OLD, LifecycleState::InService),
                ("nat-a", NEW, LifecycleState::InService),
                ("nat-b", SIBLING, LifecycleState::InService),
            ],
            ..State::default()
        };
        s.eips.insert("eipalloc-0000000a".into(), Some(eni(OLD)));
        s.eips.insert("eipalloc-0000000b".into(), Some(eni(SIBLING)));
        for (table, to) in [("rtb-000000a1", OLD), ("rtb-000000a2", OLD), ("rtb-000000b1", SIBLING)] {
            s.routes.insert(table.into(), Some((eni(to), true)));
        }
        s
    }

    /// The same world once NEW owns zone a.
    fn converged() -> Self {
        let mut s = Self::refreshed();
        s.members.retain(|(_, id, _)| *id != OLD);
        s.vms.retain(|vm| vm.id != OLD);
        s.vms.iter_mut().for_each(|vm| vm.source_dest_check = false);
        s.eips.insert("eipalloc-0000000a".into(), Some(eni(NEW)));
        for table in ["rtb-000000a1", "rtb-000000a2"] {
            s.routes.insert(table.into(), Some((eni(NEW), true)));
        }
        s
    }

    /// Zone a's only NAT is being terminated by its group; nothing replaced it yet.
    fn alone_and_leaving() -> Self {
        let mut s = Self::refreshed();
        s.vms.retain(|vm| vm.id != NEW);
        s.members =
            vec![("nat-a", OLD, LifecycleState::TerminatingWait), ("nat-b", SIBLING, LifecycleState::InService)];
        s
    }

    fn route(&self, table: &str) -> Option<String> {
        self.routes[table].as_ref().map(|(eni, _)| eni.clone())
    }

    fn eip(&self, allocation: &str) -> Option<String> {
        self.eips[allocation].clone()
    }
}

fn ec2_instance(vm: &Vm) -> Instance {
    let ni = InstanceNetworkInterface::builder()
        .network_interface_id(eni(vm.id))
        .private_ip_address("10.0.0.10")
        .source_dest_check(vm.source_dest_check)
        .attachment(InstanceNetworkInterfaceAttachment::builder().device_index(0).build())
        .build();
    Instance::builder()
        .instance_id(vm.id)
        .state(InstanceState::builder().name(vm.state.clone()).build())
        .placement(Placement::builder().availability_zone(vm.zone).build())
        .launch_time(DateTime::from_secs(vm.launched))
        .network_interfaces(ni)
        .tags(Tag::builder().key("aws:autoscaling:groupName").value(vm.group).build())
        .build()
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

/// One rule per operation the hook may call, answering from `state`; tests swap in the ones they
/// exercise.
struct Aws {
    state: Shared,
    describe_instances: Rule,
    describe_enis: Rule,
    describe_groups: Rule,
    describe_addresses: Rule,
    describe_route_tables: Rule,
    associate: Rule,
    modify: Rule,
    replace: Rule,
    create: Rule,
    complete: Rule,
    heartbeat: Rule,
    tag: Rule,
    tag_denied: Rule,
    untag: Rule,
}

impl Aws {
    fn new(state: State) -> Self {
        let state: Shared = Arc::new(Mutex::new(state));
        let s = Arc::clone(&state);
        let describe_instances = mock!(aws_sdk_ec2::Client::describe_instances).then_compute_output(move |r| {
            let state = s.lock().unwrap();
            let filter = &r.filters()[0];
            let values = filter.values();
            let found: Vec<Instance> = state
                .vms
                .iter()
                .filter(|vm| match filter.name() {
                    Some("instance-id") => values.iter().any(|v| v == vm.id),
                    Some("tag:aws:autoscaling:groupName") => values.iter().any(|v| v == vm.group),
                    other => panic!("unexpected filter {other:?}"),
                })
                .map(ec2_instance)
                .collect();
            DescribeInstancesOutput::builder()
                .reservations(Reservation::builder().set_instances(Some(found)).build())
                .build()
        });
        let s = Arc::clone(&state);
        let describe_enis = mock!(aws_sdk_ec2::Client::describe_network_interfaces).then_compute_output(move |r| {
            let state = s.lock().unwrap();
            let wanted = r.filters()[0].values();
            let found = state.vms.iter().filter(|vm| wanted.iter().any(|v| *v == eni(vm.id))).map(|vm| {
                NetworkInterface::builder()
                    .network_interface_id(eni(vm.id))
                    .attachment(NetworkInterfaceAttachment::builder().instance_id(vm.id).build())
                    .build()
            });
            DescribeNetworkInterfacesOutput::builder().set_network_interfaces(Some(found.collect())).build()
        });
        let s = Arc::clone(&state);
        let describe_groups =
            mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups).then_compute_output(move |r| {
                let state = s.lock().unwrap();
                let groups = r.auto_scaling_group_names().iter().map(|name| {
                    let members = state.members.iter().filter(|(g, _, _)| g == name).map(|(_, id, lifecycle)| {
                        AsgInstance::builder()
                            .instance_id(*id)
                            .lifecycle_state(lifecycle.clone())
                            .health_status("Healthy")
                            .build()
                    });
                    let tags = state.drained.get(name).map(|value| {
                        vec![
                            TagDescription::builder()
                                .resource_id(name)
                                .resource_type("auto-scaling-group")
                                .key("Name")
                                .value(name)
                                .build(),
                            TagDescription::builder()
                                .resource_id(name)
                                .resource_type("auto-scaling-group")
                                .key("nat-asg-hook:drained")
                                .value(value)
                                .build(),
                        ]
                    });
                    AutoScalingGroup::builder()
                        .auto_scaling_group_name(name)
                        .set_instances(Some(members.collect()))
                        .set_tags(tags)
                        .build()
                });
                DescribeAutoScalingGroupsOutput::builder().set_auto_scaling_groups(Some(groups.collect())).build()
            });
        let s = Arc::clone(&state);
        let describe_addresses = mock!(aws_sdk_ec2::Client::describe_addresses).then_compute_output(move |_| {
            let state = s.lock().unwrap();
            let addresses = state.eips.iter().map(|(allocation, on)| {
                Address::builder()
                    .allocation_id(allocation)
                    .public_ip("198.51.100.7")
                    .set_network_interface_id(on.clone())
                    .build()
            });
            DescribeAddressesOutput::builder().set_addresses(Some(addresses.collect())).build()
        });
        let s = Arc::clone(&state);
        let describe_route_tables = mock!(aws_sdk_ec2::Client::describe_route_tables).then_compute_output(move |_| {
            let state = s.lock().unwrap();
            let tables = state.routes.iter().map(|(id, route)| {
                let mut table = RouteTable::builder().route_table_id(id).routes(
                    Route::builder()
                        .destination_cidr_block("10.0.0.0/16")
                        .gateway_id("local")
                        .state(RouteState::Active)
                        .build(),
                );
                if let Some((eni, active)) = route {
                    table = table.routes(
                        Route::builder()
                            .destination_cidr_block("0.0.0.0/0")
                            .network_interface_id(eni)
                            .state(if *active { RouteState::Active } else { RouteState::Blackhole })
                            .build(),
                    );
                }
                table.build()
            });
            DescribeRouteTablesOutput::builder().set_route_tables(Some(tables.collect())).build()
        });
        let s = Arc::clone(&state);
        let associate = mock!(aws_sdk_ec2::Client::associate_address).then_compute_output(move |r| {
            assert_eq!(r.allow_reassociation(), Some(true));
            let mut state = s.lock().unwrap();
            let (allocation, to) =
                (r.allocation_id().unwrap().to_owned(), r.network_interface_id().unwrap().to_owned());
            state.log.push(format!("associate {allocation} {to}"));
            state.eips.insert(allocation, Some(to));
            AssociateAddressOutput::builder().association_id("eipassoc-1").build()
        });
        let s = Arc::clone(&state);
        let modify = mock!(aws_sdk_ec2::Client::modify_network_interface_attribute).then_compute_output(move |r| {
            assert_eq!(r.source_dest_check().and_then(|v| v.value()), Some(false));
            let mut state = s.lock().unwrap();
            let target = r.network_interface_id().unwrap().to_owned();
            state.log.push(format!("source-dest-check-off {target}"));
            state.vms.iter_mut().filter(|vm| eni(vm.id) == target).for_each(|vm| vm.source_dest_check = false);
            ModifyNetworkInterfaceAttributeOutput::builder().build()
        });
        let s = Arc::clone(&state);
        let replace = mock!(aws_sdk_ec2::Client::replace_route).then_compute_output(move |r| {
            assert_eq!(r.destination_cidr_block(), Some("0.0.0.0/0"));
            let mut state = s.lock().unwrap();
            let (table, to) = (r.route_table_id().unwrap().to_owned(), r.network_interface_id().unwrap().to_owned());
            state.log.push(format!("route {table} {to}"));
            state.routes.insert(table, Some((to, true)));
            ReplaceRouteOutput::builder().build()
        });
        let s = Arc::clone(&state);
        let create = mock!(aws_sdk_ec2::Client::create_route).then_compute_output(move |r| {
            let mut state = s.lock().unwrap();
            let (table, to) = (r.route_table_id().unwrap().to_owned(), r.network_interface_id().unwrap().to_owned());
            state.log.push(format!("create {table} {to}"));
            state.routes.insert(table, Some((to, true)));
            CreateRouteOutput::builder().r#return(true).build()
        });
        let s = Arc::clone(&state);
        let complete = mock!(aws_sdk_autoscaling::Client::complete_lifecycle_action).then_compute_output(move |r| {
            let mut state = s.lock().unwrap();
            state.log.push(format!(
                "complete {} {} {}",
                r.lifecycle_hook_name().unwrap(),
                r.instance_id().unwrap(),
                r.lifecycle_action_result().unwrap()
            ));
            CompleteLifecycleActionOutput::builder().build()
        });
        let s = Arc::clone(&state);
        let heartbeat =
            mock!(aws_sdk_autoscaling::Client::record_lifecycle_action_heartbeat).then_compute_output(move |r| {
                let mut state = s.lock().unwrap();
                state.log.push(format!("heartbeat {} {}", r.lifecycle_hook_name().unwrap(), r.instance_id().unwrap()));
                RecordLifecycleActionHeartbeatOutput::builder().build()
            });
        let s = Arc::clone(&state);
        let tag = mock!(aws_sdk_autoscaling::Client::create_or_update_tags)
            .match_requests({
                let s = Arc::clone(&state);
                move |_| !s.lock().unwrap().tags_denied
            })
            .then_compute_output(move |r| {
                let mut state = s.lock().unwrap();
                for t in r.tags() {
                    assert_eq!(t.propagate_at_launch(), Some(false), "the mark stays on the group");
                    state.log.push(format!("tag {}", t.resource_id().unwrap()));
                    state.drained.insert(t.resource_id().unwrap().to_owned(), t.value().unwrap().to_owned());
                }
                CreateOrUpdateTagsOutput::builder().build()
            });
        let tag_denied = mock!(aws_sdk_autoscaling::Client::create_or_update_tags).then_http_response(|| {
            autoscaling_error(403, "AccessDenied", "not authorized to perform: autoscaling:CreateOrUpdateTags")
        });
        let s = Arc::clone(&state);
        let untag = mock!(aws_sdk_autoscaling::Client::delete_tags).then_compute_output(move |r| {
            let mut state = s.lock().unwrap();
            for t in r.tags() {
                state.log.push(format!("untag {}", t.resource_id().unwrap()));
                state.drained.remove(t.resource_id().unwrap());
            }
            DeleteTagsOutput::builder().build()
        });
        Self {
            state,
            tag,
            tag_denied,
            untag,
            describe_instances,
            describe_enis,
            describe_groups,
            describe_addresses,
            describe_route_tables,
            associate,
            modify,
            replace,
            create,
            complete,
            heartbeat,
        }
    }

    fn hook(&self) -> Hook {
        Hook::new(self.clients(), config())
    }

    fn clients(&self) -> Clients {
        let ec2_rules = [
            &self.describe_instances,
            &self.describe_enis,
            &self.describe_addresses,
            &self.describe_route_tables,
            &self.associate,
            &self.modify,
            &self.replace,
            &self.create,
        ];
        let asg_rules =
            [&self.describe_groups, &self.complete, &self.heartbeat, &self.tag, &self.tag_denied, &self.untag];
        let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, ec2_rules, |c| c
            .retry_config(retry_config())
            .timeout_config(timeout_config()));
        let autoscaling = mock_client!(aws_sdk_autoscaling, RuleMode::MatchAny, asg_rules, |c| c
            .retry_config(retry_config())
            .timeout_config(timeout_config()));
        Clients { ec2, autoscaling }
    }

    fn mutations(&self) -> usize {
        self.associate.num_calls() + self.modify.num_calls() + self.replace.num_calls() + self.create.num_calls()
    }

    fn reads(&self) -> usize {
        self.describe_instances.num_calls()
            + self.describe_groups.num_calls()
            + self.describe_addresses.num_calls()
            + self.describe_route_tables.num_calls()
    }

    fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }

    fn route(&self, table: &str) -> Option<String> {
        self.state.lock().unwrap().route(table)
    }

    fn eip(&self, allocation: &str) -> Option<String> {
        self.state.lock().unwrap().eip(allocation)
    }
}

async fn handle(aws: &Aws, event: Value) -> Result<Report, HookError> {
    aws.hook().handle(event, Mode::Apply, Deadline::after(Duration::from_secs(20))).await
}

/// The position of the first log line starting with `prefix`.
fn first(log: &[String], prefix: &str) -> usize {
    log.iter().position(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix} in {log:?}"))
}

fn last(log: &[String], prefix: &str) -> usize {
    log.iter().rposition(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix} in {log:?}"))
}

// --- launch ----------------------------------------------------------------------------------------

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
    assert_eq!(err.error_type(), "ZoneMismatch");
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

// --- leaving ---------------------------------------------------------------------------------------

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

// --- the schedule ----------------------------------------------------------------------------------

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

// --- verify ----------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn verify_calls_a_zone_on_a_dead_nat_down_and_failed_over_only_once_its_routes_moved() {
    // Zone a's only NAT died and left its group; its routes still go to it (EC2 keeps them active
    // for a while, as moto does).
    let mut state = State::alone_and_leaving();
    state.members.retain(|(_, id, _)| *id != OLD);
    state.vms.iter_mut().filter(|vm| vm.id == OLD).for_each(|vm| vm.state = InstanceStateName::Terminated);
    let aws = Aws::new(state);
    let dark = verify(&aws.clients(), &config()).await.unwrap();
    let a = &dark.zones[0];
    assert_eq!(a.status, ZoneStatus::Down, "{a:?}");
    assert!(a.headline.contains(&format!("goes to {OLD} (terminated)")), "{}", a.headline);
    assert!(a.headline.ends_with(&format!("the hook would fail it over to nat-b ({SIBLING})")), "{}", a.headline);
    assert_eq!(a.failed_over_to, None);
    assert_eq!((dark.worst(), dark.healthy()), (ZoneStatus::Down, false));
    assert_eq!(aws.mutations(), 0, "verify changes nothing");

    // The schedule moves the routes: now, and only now, the zone is failed over.
    handle(&aws, scheduled()).await.unwrap();
    assert_eq!(aws.route("rtb-000000a1"), Some(eni(SIBLING)));
    let moved = verify(&aws.clients(), &config()).await.unwrap();
    assert_eq!(moved.zones[0].status, ZoneStatus::FailedOver, "{:?}", moved.zones[0]);
    assert_eq!(moved.zones[0].failed_over_to.as_deref(), Some("nat-b"));
    assert_eq!(moved.zones[1].status, ZoneStatus::Healthy);
    assert_eq!(moved.worst(), ZoneStatus::FailedOver);
}

#[tokio::test(start_paused = true)]
async fn verify_reads_a_route_target_no_group_holds_any_more() {
    // The dead NAT is no longer tagged to a group: verify asks EC2 which instance holds the interface.
    let mut state = State::converged();
    state.vms.push(Vm {
        id: "i-0000000000000dead",
        zone: "us-east-1a",
        state: InstanceStateName::Stopped,
        source_dest_check: false,
        launched: 1,
        group: "someone-else",
    });
    state.routes.insert("rtb-000000a2".into(), Some((eni("i-0000000000000dead"), true)));
    let aws = Aws::new(state);
    let verdict = verify(&aws.clients(), &config()).await.unwrap();
    assert_eq!(verdict.zones[0].status, ZoneStatus::Down, "{:?}", verdict.zones[0]);
    assert!(
        verdict.zones[0].headline.contains("rtb-000000a2 goes to i-0000000000000dead (stopped)"),
        "{}",
        verdict.zones[0].headline
    );
}

#[tokio::test(start_paused = true)]
async fn verify_that_cannot_look_is_an_error_not_a_verdict_on_the_zones() {
    use nat_asg_hook::access::{Blind, classify};
    let mut aws = Aws::new(State::converged());
    aws.describe_addresses = mock!(aws_sdk_ec2::Client::describe_addresses)
        .then_http_response(|| ec2_error(503, "RequestLimitExceeded", "Request limit exceeded."));
    let err = verify(&aws.clients(), &config()).await.unwrap_err();
    assert_eq!(classify(&err, "x"), Some(Blind::Throttled { operation: "DescribeAddresses" }));

    let mut aws = Aws::new(State::converged());
    aws.describe_route_tables = mock!(aws_sdk_ec2::Client::describe_route_tables).then_http_response(|| {
        ec2_error(403, "UnauthorizedOperation", "You are not authorized to perform this operation.")
    });
    let err = verify(&aws.clients(), &config()).await.unwrap_err();
    assert_eq!(
        classify(&err, "x"),
        Some(Blind::AccessDenied { operation: "DescribeRouteTables", code: "UnauthorizedOperation".into() })
    );
    assert_eq!(aws.describe_route_tables.num_calls(), 1, "a refusal is not retried");
}

#[tokio::test(start_paused = true)]
async fn verify_in_a_region_without_the_groups_says_so() {
    let mut aws = Aws::new(State::converged());
    aws.describe_groups = mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups)
        .then_output(|| DescribeAutoScalingGroupsOutput::builder().set_auto_scaling_groups(Some(vec![])).build());
    let verdict = verify(&aws.clients(), &config()).await.unwrap();
    assert!(verdict.every_group_missing);
    assert!(verdict.zones.iter().all(|z| z.status == ZoneStatus::Misconfigured), "{:?}", verdict.zones);
    // One group missing of two is the zone's problem, not a wrong region.
    let mut aws = Aws::new(State::converged());
    aws.describe_groups = mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups).then_output(|| {
        DescribeAutoScalingGroupsOutput::builder()
            .auto_scaling_groups(
                AutoScalingGroup::builder()
                    .auto_scaling_group_name("nat-b")
                    .instances(
                        AsgInstance::builder()
                            .instance_id(SIBLING)
                            .lifecycle_state(LifecycleState::InService)
                            .health_status("Healthy")
                            .build(),
                    )
                    .build(),
            )
            .build()
    });
    let verdict = verify(&aws.clients(), &config()).await.unwrap();
    assert!(!verdict.every_group_missing);
    assert_eq!(verdict.zones[0].status, ZoneStatus::Misconfigured);
    assert_eq!(verdict.zones[1].status, ZoneStatus::Healthy);
}

fn drain_request(drained: bool) -> drain::Request<'static> {
    drain::Request { group: "nat-a", drained, value: "2026-12-06T10:00:00Z alice: patch".into(), force: false }
}

#[tokio::test(start_paused = true)]
async fn a_drain_writes_the_mark_before_any_route_moves_and_the_schedule_keeps_the_zone_on_the_sibling() {
    let aws = Aws::new(State::converged());
    let deadline = Deadline::after(Duration::from_secs(25));
    let report = drain::run(&aws.clients(), &config(), &drain_request(true), Mode::Apply, &deadline).await.unwrap();
    assert_eq!(report.drain.map(|d| d.status.to_string()).as_deref(), Some("applied"));
    let log = aws.log();
    assert_eq!(log.first().map(String::as_str), Some("tag nat-a"), "{log:?}");
    assert_eq!((aws.route("rtb-000000a1"), aws.route("rtb-000000a2")), (Some(eni(SIBLING)), Some(eni(SIBLING))));
    assert_eq!(aws.eip("eipalloc-0000000a"), Some(eni(NEW)), "the EIP never crosses zones");

    // The Lambda reads the mark from DescribeAutoScalingGroups: the schedule and NEW's launch keep the zone there.
    let before = aws.mutations();
    let report = handle(&aws, scheduled()).await.unwrap();
    assert_eq!(report.zone_health.map(|h| (h.without_own_nat, h.failed_over)), Some((1, 1)));
    handle(&aws, launched(NEW)).await.unwrap();
    assert_eq!(aws.mutations(), before, "nothing moves back");
    assert_eq!(aws.route("rtb-000000a1"), Some(eni(SIBLING)));
    let verdict = verify(&aws.clients(), &config()).await.unwrap();
    assert_eq!(verdict.zones[0].status, ZoneStatus::Drained);

    // Undrain: the mark goes first, then the routes come back to NEW.
    drain::run(&aws.clients(), &config(), &drain_request(false), Mode::Apply, &deadline).await.unwrap();
    let log = aws.log();
    let untag = log.iter().position(|l| l == "untag nat-a").unwrap();
    assert!(untag < last(&log, "route"), "{log:?}");
    assert_eq!((aws.route("rtb-000000a1"), aws.route("rtb-000000a2")), (Some(eni(NEW)), Some(eni(NEW))));
}

#[tokio::test(start_paused = true)]
async fn a_drain_whose_mark_is_refused_moves_nothing() {
    let mut state = State::converged();
    state.tags_denied = true;
    let aws = Aws::new(state);
    let deadline = Deadline::after(Duration::from_secs(25));
    let e = drain::run(&aws.clients(), &config(), &drain_request(true), Mode::Apply, &deadline).await.unwrap_err();
    assert!(matches!(&e, drain::DrainError::Hook(h) if h.is_authorization()), "{e:?}");
    assert_eq!(aws.mutations(), 0);
    assert_eq!(aws.route("rtb-000000a1"), Some(eni(NEW)));
}
