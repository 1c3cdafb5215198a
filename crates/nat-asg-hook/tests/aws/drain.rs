//! `drain` / `undrain`: the mark first, then the routes; a refused mark moves nothing.

use std::time::Duration;

use nat_asg_hook::drain;
use nat_asg_hook::model::Mode;
use nat_asg_hook::retry::Deadline;
use nat_asg_hook::verify::{ZoneStatus, verify};

use crate::fake::*;

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
