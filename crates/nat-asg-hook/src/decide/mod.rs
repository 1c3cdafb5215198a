//! The planner: observed state in, decision out. Pure (no I/O, no clock, no SDK types), so every
//! rule that keeps traffic on a working NAT, and keeps a stale event from stealing it, is a plain
//! table-driven test.
//!
//! It works in named steps:
//! 1. `zone_owner`: which instance a zone should follow (the newest proven, healthy, live instance
//!    its group holds, other than one that is leaving);
//! 2. `launched_may_move` (and, for a leaving instance, `subjects::leaving`): whether the event's
//!    instance may move anything;
//! 3. `missing`: which configured resources do not exist (a refusal: retrying cannot help);
//! 4. `follow_own` / `fail_over`: the plan for one zone, identity actions apart from route actions.
//!
//! The rooms: `vocabulary` (subjects, decisions, plans), `ownership` (steps 1 and 2), `refusals`
//! (step 3), `planning` (step 4) and `subjects` (each trigger's rules, the terminate action).
//! `fixtures` is the test world, shared with `verify`'s tests.

mod ownership;
mod planning;
mod refusals;
mod subjects;
mod vocabulary;

#[cfg(test)]
pub(crate) mod fixtures;

pub use ownership::{Owner, tables_targeting, zone_owner};
pub use refusals::Refusal;
pub use subjects::{Handover, complete_terminate};
pub use vocabulary::{Decision, Follows, Plan, Subject, ZonePlan};

use crate::config::Config;
use crate::model::World;

/// Decides what to do about `subject`, given everything observed.
pub fn decide(config: &Config, subject: Subject<'_>, world: &World) -> Result<Decision, Refusal> {
    match subject {
        Subject::Launched { group, instance, fresh } => subjects::launched(config, world, group, instance, fresh),
        Subject::Leaving { group, instance, by_group } => {
            Ok(subjects::leaving(config, world, group, instance, by_group))
        }
        Subject::Warned { group, instance, proof, fresh } => {
            Ok(subjects::warned(config, world, group, instance, proof, fresh))
        }
        Subject::Everything => Ok(subjects::everything(config, world)),
        Subject::Drain { group, drained } => Ok(subjects::drain(config, world, group, drained)),
    }
}
