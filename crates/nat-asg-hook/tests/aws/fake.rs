//! A small EC2 and Auto Scaling for the tests: one `aws-smithy-mocks` rule per operation the hook
//! may call, answering from a shared state that the mutating calls change, and a log of the calls
//! in order; the saved events; the configuration (zones a and b).

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
use nat_asg_hook::error::HookError;
use nat_asg_hook::handler::Hook;
use nat_asg_hook::model::Mode;
use nat_asg_hook::report::Report;
use nat_asg_hook::retry::Deadline;
use serde_json::{Value, json};

pub const OLD: &str = "i-0000000000000000a";
pub const NEW: &str = "i-000000000000000a2";
pub const SIBLING: &str = "i-0000000000000000b";

pub fn eni(id: &str) -> String {
    id.replace("i-", "eni-")
}

pub fn config() -> Config {
    Config::from_json(
        r#"{"groups": {
            "nat-a": {"availability_zone": "us-east-1a", "eip_allocation_id": "eipalloc-0000000a", "route_table_ids": ["rtb-000000a1", "rtb-000000a2"]},
            "nat-b": {"availability_zone": "us-east-1b", "eip_allocation_id": "eipalloc-0000000b", "route_table_ids": ["rtb-000000b1"]}}}"#,
    )
    .unwrap()
}

// --- events ----------------------------------------------------------------------------------------

pub fn now_rfc3339() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    DateTime::from_secs(now).fmt(Format::DateTime).unwrap()
}

pub fn envelope(source: &str, detail_type: &str, time: &str, detail: Value) -> Value {
    json!({"version": "0", "id": "e1", "detail-type": detail_type, "source": source, "account": "123456789012",
           "time": time, "region": "us-east-1", "resources": [], "detail": detail})
}

pub fn launched(instance: &str) -> Value {
    envelope(
        "aws.autoscaling",
        "EC2 Instance Launch Successful",
        &now_rfc3339(),
        json!({"AutoScalingGroupName": "nat-a", "EC2InstanceId": instance, "StatusCode": "InProgress"}),
    )
}

pub fn launched_long_ago(instance: &str) -> Value {
    let mut event = launched(instance);
    event["time"] = json!("2026-01-01T00:00:00Z");
    event
}

pub fn launch_lifecycle_action() -> Value {
    envelope(
        "aws.autoscaling",
        "EC2 Instance-launch Lifecycle Action",
        &now_rfc3339(),
        json!({"LifecycleActionToken": "token-1", "AutoScalingGroupName": "nat-a", "LifecycleHookName": "nat-asg-hook-launch",
               "EC2InstanceId": NEW, "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING"}),
    )
}

pub fn terminating(instance: &str) -> Value {
    envelope(
        "aws.autoscaling",
        "EC2 Instance-terminate Lifecycle Action",
        &now_rfc3339(),
        json!({"LifecycleActionToken": "token-9", "AutoScalingGroupName": "nat-a", "LifecycleHookName": "nat-asg-hook-terminate",
               "EC2InstanceId": instance, "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING"}),
    )
}

pub fn state_change(instance: &str, state: &str) -> Value {
    envelope(
        "aws.ec2",
        "EC2 Instance State-change Notification",
        &now_rfc3339(),
        json!({"instance-id": instance, "state": state}),
    )
}

pub fn scheduled() -> Value {
    json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}})
}

// --- a small EC2 / Auto Scaling ------------------------------------------------------------------

#[derive(Clone)]
pub struct Vm {
    pub id: &'static str,
    pub zone: &'static str,
    pub state: InstanceStateName,
    pub source_dest_check: bool,
    pub launched: i64,
    pub group: &'static str,
}

#[derive(Default)]
pub struct State {
    pub vms: Vec<Vm>,
    /// (group, instance, lifecycle state)
    pub members: Vec<(&'static str, &'static str, LifecycleState)>,
    /// allocation ID -> ENI
    pub eips: BTreeMap<String, Option<String>>,
    /// table -> (ENI, active), None for no default route
    pub routes: BTreeMap<String, Option<(String, bool)>>,
    /// group -> its drain tag's value (nat-asg-hook:drained)
    pub drained: BTreeMap<String, String>,
    /// The drain tag writes fail with AccessDenied (an operator without the permission).
    pub tags_denied: bool,
    /// The mutating calls, in the order they were made.
    pub log: Vec<String>,
}

type Shared = Arc<Mutex<State>>;

impl State {
    /// Zone a mid-refresh: NEW proved itself (InService), EIP and routes still on OLD; zone b on SIBLING.
    pub fn refreshed() -> Self {
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
    pub fn converged() -> Self {
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
    pub fn alone_and_leaving() -> Self {
        let mut s = Self::refreshed();
        s.vms.retain(|vm| vm.id != NEW);
        s.members =
            vec![("nat-a", OLD, LifecycleState::TerminatingWait), ("nat-b", SIBLING, LifecycleState::InService)];
        s
    }

    pub fn route(&self, table: &str) -> Option<String> {
        self.routes[table].as_ref().map(|(eni, _)| eni.clone())
    }

    pub fn eip(&self, allocation: &str) -> Option<String> {
        self.eips[allocation].clone()
    }
}

pub fn ec2_instance(vm: &Vm) -> Instance {
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
pub fn ec2_error(status: u16, code: &str, message: &str) -> HttpResponse {
    let body = format!(
        "<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>r1</RequestID></Response>"
    );
    HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body))
}

pub fn autoscaling_error(status: u16, code: &str, message: &str) -> HttpResponse {
    let body = format!(
        "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>r1</RequestId></ErrorResponse>"
    );
    HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body))
}

/// One rule per operation the hook may call, answering from `state`; tests swap in the ones they
/// exercise.
pub struct Aws {
    pub state: Shared,
    pub describe_instances: Rule,
    pub describe_enis: Rule,
    pub describe_groups: Rule,
    pub describe_addresses: Rule,
    pub describe_route_tables: Rule,
    pub associate: Rule,
    pub modify: Rule,
    pub replace: Rule,
    pub create: Rule,
    pub complete: Rule,
    pub heartbeat: Rule,
    pub tag: Rule,
    pub tag_denied: Rule,
    pub untag: Rule,
}

impl Aws {
    pub fn new(state: State) -> Self {
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

    pub fn hook(&self) -> Hook {
        Hook::new(self.clients(), config())
    }

    pub fn clients(&self) -> Clients {
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

    pub fn mutations(&self) -> usize {
        self.associate.num_calls() + self.modify.num_calls() + self.replace.num_calls() + self.create.num_calls()
    }

    pub fn reads(&self) -> usize {
        self.describe_instances.num_calls()
            + self.describe_groups.num_calls()
            + self.describe_addresses.num_calls()
            + self.describe_route_tables.num_calls()
    }

    pub fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn route(&self, table: &str) -> Option<String> {
        self.state.lock().unwrap().route(table)
    }

    pub fn eip(&self, allocation: &str) -> Option<String> {
        self.state.lock().unwrap().eip(allocation)
    }
}

pub async fn handle(aws: &Aws, event: Value) -> Result<Report, HookError> {
    aws.hook().handle(event, Mode::Apply, Deadline::after(Duration::from_secs(20))).await
}

/// The position of the first log line starting with `prefix`.
pub fn first(log: &[String], prefix: &str) -> usize {
    log.iter().position(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix} in {log:?}"))
}

pub fn last(log: &[String], prefix: &str) -> usize {
    log.iter().rposition(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix} in {log:?}"))
}
