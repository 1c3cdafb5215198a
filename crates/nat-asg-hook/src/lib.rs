//! nat-asg-hook: keeps NAT-instance egress alive when a per-AZ NAT Auto Scaling group replaces
//! its instance. Pure parts (`config`, `event`, `model`, `decide`, `capacity`, `report`) are separate from the
//! AWS glue (`aws`); `converge` (the core operation every trigger uses) and `handler` tie them together; `cli` is the binary's front.

pub mod access;
pub mod aws;
pub mod capacity;
pub mod cli;
pub mod config;
pub mod converge;
pub mod decide;
pub mod drain;
pub mod error;
pub mod event;
pub mod handler;
pub mod model;
pub mod report;
pub mod retry;
pub mod verify;
