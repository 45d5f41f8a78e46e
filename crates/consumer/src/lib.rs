//! What every queue consumer of darkroom (worker and status) shares, so the rules live in
//! one place:
//!
//! - [`Breaker`]: stop receiving while the store or a queue is down, instead of spending
//!   the messages' receive budget on an outage;
//! - [`defer`]: hand a message back for later *without* spending its receive budget — a
//!   copy is sent with a delay and the original deleted — for work that waits on an
//!   outage or on a newer darkroom that can read it (rolling upgrades).

mod breaker;
mod deferral;
mod probe;

pub use breaker::{Breaker, OpenState};
pub use deferral::{defer, deferrals, leave_unreadable, DeferralReason};
pub use probe::{Probe, StoreAndQueueProbe};
