//! The dependency breaker (docs/ARCHITECTURE.md "Reliability rules": a dependency outage is not the
//! photo's fault). Workers and status consume queue messages whose every redelivery counts
//! towards the dead-letter queue; if they kept receiving while the object store or a queue
//! is down, a minute of outage would dead-letter the whole backlog and show every photo
//! as failed. So the first transient failure *trips* the breaker: every consumer loop of
//! the process stops receiving, and one probe task checks the dependencies with a
//! doubling wait until they answer, then closes it and the loops resume.
//!
//! The breaker does not judge which errors are transient: callers trip it on errors their
//! own crates classify as retryable (`StoreError::is_retryable`, `QueueError::is_retryable`).

use crate::Probe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The first wait before probing, and the longest: a restored store is noticed within
/// this long, and an outage costs one probe per interval.
const FIRST_PROBE: Duration = Duration::from_secs(1);
const LONGEST_PROBE_INTERVAL: Duration = Duration::from_secs(10);
/// A probe that has not answered by then counts as failed (a black-holed network never
/// refuses a connection, it just never answers).
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why and since when the breaker is open: `/readyz` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenState {
    pub reason: String,
    pub since: Instant,
    pub failed_probes: u32,
}

#[derive(Debug, Clone)]
pub struct Breaker {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// The component it guards (`worker`, `status`): a metric label and a log field.
    component: &'static str,
    probe: Arc<dyn Probe>,
    state: Mutex<State>,
    /// `true` while closed, so waiters wake on the transition.
    closed: watch::Sender<bool>,
    first_probe: Duration,
    longest_probe_interval: Duration,
}

#[derive(Debug, Default)]
struct State {
    open: Option<OpenState>,
    probing: bool,
}

impl Breaker {
    pub fn new(component: &'static str, probe: Arc<dyn Probe>) -> Self {
        Self::with_intervals(component, probe, FIRST_PROBE, LONGEST_PROBE_INTERVAL)
    }

    pub fn with_intervals(
        component: &'static str,
        probe: Arc<dyn Probe>,
        first_probe: Duration,
        longest_probe_interval: Duration,
    ) -> Self {
        let (closed, _) = watch::channel(true);
        metrics::gauge!("darkroom_breaker_open", "component" => component).set(0.0);
        Self {
            shared: Arc::new(Shared {
                component,
                probe,
                state: Mutex::default(),
                closed,
                first_probe,
                longest_probe_interval: longest_probe_interval.max(first_probe),
            }),
        }
    }

    /// Records a transient failure of a dependency: opens the breaker (if it was closed)
    /// and makes sure one task probes until the dependencies answer again.
    pub fn trip(&self, reason: impl Into<String>) {
        let reason = reason.into();
        let start_probing = {
            let mut state = self.shared.lock();
            match &mut state.open {
                Some(open) => open.reason = reason,
                None => {
                    tracing::warn!(component = self.shared.component, reason = %reason, "a dependency is unavailable: no new messages are taken until it answers again");
                    metrics::counter!("darkroom_breaker_trips_total", "component" => self.shared.component)
                        .increment(1);
                    metrics::gauge!("darkroom_breaker_open", "component" => self.shared.component).set(1.0);
                    state.open = Some(OpenState { reason, since: Instant::now(), failed_probes: 0 });
                    self.shared.closed.send_replace(false);
                }
            }
            !std::mem::replace(&mut state.probing, true)
        };
        if start_probing {
            let shared = self.shared.clone();
            tokio::spawn(async move { shared.probe_until_closed().await });
        }
    }

    pub fn is_closed(&self) -> bool {
        *self.shared.closed.borrow()
    }

    /// Returns at once while closed; otherwise when the probe finds the dependencies back.
    pub async fn closed(&self) {
        let mut receiver = self.shared.closed.subscribe();
        // The sender lives as long as `self`, so this cannot fail while we wait.
        let _ = receiver.wait_for(|closed| *closed).await;
    }

    /// `None` while closed.
    pub fn open_state(&self) -> Option<OpenState> {
        self.shared.lock().open.clone()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a plain value updated in one statement at a time: still consistent
        // after a panic elsewhere.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn probe_until_closed(&self) {
        let mut wait = self.first_probe;
        loop {
            tokio::time::sleep(wait).await;
            let result = match tokio::time::timeout(PROBE_TIMEOUT, self.probe.probe()).await {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {PROBE_TIMEOUT:?}")),
            };
            let mut state = self.lock();
            match result {
                Ok(()) => {
                    let outage = state.open.take().map(|open| open.since.elapsed()).unwrap_or_default();
                    state.probing = false;
                    self.closed.send_replace(true);
                    metrics::gauge!("darkroom_breaker_open", "component" => self.component).set(0.0);
                    tracing::info!(
                        component = self.component,
                        outage_seconds = outage.as_secs_f64(),
                        "dependencies answer again: taking messages again"
                    );
                    return;
                }
                Err(reason) => {
                    if let Some(open) = &mut state.open {
                        open.failed_probes += 1;
                        open.reason = reason.clone();
                    }
                    tracing::debug!(component = self.component, reason = %reason, "dependencies still unavailable");
                }
            }
            wait = wait.saturating_mul(2).min(self.longest_probe_interval);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    #[derive(Debug, Default)]
    struct Switch {
        up: AtomicBool,
        probes: AtomicU32,
    }

    #[async_trait::async_trait]
    impl Probe for Switch {
        async fn probe(&self) -> Result<(), String> {
            self.probes.fetch_add(1, Ordering::SeqCst);
            if self.up.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err("still down".into())
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn stays_open_while_the_probe_fails_and_closes_when_it_answers() {
        let switch = Arc::new(Switch::default());
        let breaker = Breaker::new("test", switch.clone());
        assert!(breaker.is_closed());
        breaker.trip("store unavailable");
        assert!(!breaker.is_closed());
        assert_eq!(breaker.open_state().map(|s| s.reason), Some("store unavailable".into()));

        // Ten minutes of outage: probes back off to one per 10 s, never a hot loop.
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert!(!breaker.is_closed());
        let probes = switch.probes.load(Ordering::SeqCst);
        assert!((55..=65).contains(&probes), "{probes} probes in 10 minutes");
        assert_eq!(breaker.open_state().map(|s| s.reason), Some("still down".into()));

        switch.up.store(true, Ordering::SeqCst);
        let reopened = tokio::time::Instant::now();
        breaker.closed().await;
        assert!(reopened.elapsed() <= LONGEST_PROBE_INTERVAL, "noticed after {:?}", reopened.elapsed());
        assert!(breaker.is_closed() && breaker.open_state().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn trips_while_open_share_one_probe_task() {
        let switch = Arc::new(Switch::default());
        let breaker = Breaker::new("test", switch.clone());
        for _ in 0..50 {
            breaker.trip("again");
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(switch.probes.load(Ordering::SeqCst), 1);
        switch.up.store(true, Ordering::SeqCst);
        breaker.closed().await;
        // Closed, then tripped again: a new probe task starts.
        breaker.trip("down again");
        assert!(!breaker.is_closed());
        breaker.closed().await;
        assert!(breaker.is_closed());
    }
}
