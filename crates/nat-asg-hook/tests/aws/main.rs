//! The AWS glue and the handler on the real SDK clients, with responses from `aws-smithy-mocks`:
//! throttling, eventual consistency, deadlines, failing rounds, terminate completion, none of which
//! the emulator can produce on demand. The rules answer from a small shared state that the
//! mutating calls change, so each test checks where the EIP and the routes end up, and in which
//! order the calls were made.
//!
//! One test binary (one link of the SDK) in rooms: `fake` is the small EC2 / Auto Scaling; the
//! tests are by trigger.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect
#![recursion_limit = "256"]

mod drain;
mod fake;
mod launch;
mod leaving;
mod schedule;
mod verify;
