//! What every queue consumer of darkroom (worker, status, webhook delivery) shares, so the
//! rules live in one place:
//!
//! - [`serve`]: the one loop that reads a queue and settles each message as its
//!   [`Handler`] says: receiving, read-ahead, breaker, backoff, the panic boundary, drain;
//! - [`Breaker`]: stop receiving while the store or a queue is down, instead of spending
//!   the messages' receive budget on an outage;
//! - [`defer`]: hand a message back for later *without* spending its receive budget — a
//!   copy is sent with a delay and the original deleted — for work that waits on an
//!   outage or on a newer darkroom that can read it (rolling upgrades).

mod breaker;
mod deferral;
mod probe;
mod runtime;

/// The attribute a [`Handler`]'s implementation wears.
pub use async_trait::async_trait;
pub use breaker::{Breaker, OpenState};
pub use deferral::{defer, deferrals, leave_unreadable, DeferralReason};
pub use probe::{Probe, StoreAndQueueProbe};
pub use runtime::{serve, Handler, LoopSettings, Place, Settle};
