//! darkroom's test kit, for tests only (never a dependency of a shipped crate):
//!
//! - [`FaultyStore`] and [`FaultyQueues`]: the real store and queues behind a switch that
//!   makes them fail as an outage would, and counters of the requests that reached them;
//! - [`localstack_endpoint`]: whether this run tests against LocalStack;
//! - [`contract_tests!`]: one test per contract check, for each backend;
//! - [`eventually`]: wait for a condition instead of sleeping a guessed time;
//! - [`fixture`]: a committed test photo (`tests/fixtures/`), by name;
//! - [`World`] (feature `world`): the store, every queue and the `Jobs` of one process, with
//!   seeded jobs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod faulty_queue;
mod faulty_store;
#[cfg(feature = "world")]
pub mod world;

pub use faulty_queue::FaultyQueues;
pub use faulty_store::{FaultyStore, HeldPuts, PutRule, StoreRequests};
#[cfg(feature = "world")]
pub use world::World;

use std::future::Future;
use std::time::{Duration, Instant};

/// The LocalStack endpoint, if the suite runs against it. `./test.sh` starts LocalStack and
/// sets both variables, so there a missing endpoint is a failure, not a skip.
pub fn localstack_endpoint() -> Option<String> {
    match std::env::var("DARKROOM_TEST_LOCALSTACK") {
        Ok(endpoint) if !endpoint.is_empty() => Some(endpoint),
        _ if std::env::var("DARKROOM_REQUIRE_LOCALSTACK").is_ok_and(|v| v == "1") => {
            panic!("DARKROOM_REQUIRE_LOCALSTACK=1 but DARKROOM_TEST_LOCALSTACK is not set")
        }
        _ => {
            eprintln!("skipping: DARKROOM_TEST_LOCALSTACK is not set (./test.sh sets it)");
            None
        }
    }
}

/// Where the committed test photos are (`tests/fixtures/`, licences in its `LICENSES.md`).
pub fn fixture_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(name)
}

/// The bytes of the committed test photo `name`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = fixture_path(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("test fixture {}: {error}", path.display()))
}

/// Polls `condition` every 50 ms until it holds; panics with `what` after `within`.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !condition().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The blocking twin of [`eventually`], for tests that drive processes over HTTP.
pub fn eventually_blocking(within: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Generates one `#[tokio::test]` per check: `contract_tests!(make; check_a, check_b)`
/// where `make()` returns `Option<(backend, guard)>` (`None` skips) and each check is
/// `async fn check(backend: &Backend)` in the enclosing module's parent.
#[macro_export]
macro_rules! contract_tests {
    ($make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some((backend, _guard)) = $make().await else { return };
                super::$name(backend.as_ref()).await;
            }
        )*
    };
}
