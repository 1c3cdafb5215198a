//! `verify` on the real clients: what it reads, and when it cannot look.

use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput;
use aws_sdk_autoscaling::types::{AutoScalingGroup, Instance as AsgInstance, LifecycleState};
use aws_sdk_ec2::types::InstanceStateName;
use aws_smithy_mocks::mock;
use nat_asg_hook::verify::{ZoneStatus, verify};

use crate::fake::*;

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
