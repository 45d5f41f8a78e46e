//! Counts renders the worker gave up on that are still running. A render past its time
//! budget is asked to stop and left behind so its slot serves other photos; one that
//! ignores the request (a library call stuck in a loop) keeps a CPU busy, so the count is
//! exported (`darkroom_renders_stuck`) and `/readyz` reports it: restart the worker when
//! it grows.

use crate::render::CancelFlag;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

const RUNNING: u8 = 0;
const ABANDONED: u8 = 1;
const FINISHED: u8 = 2;

#[derive(Debug, Default)]
pub(crate) struct AbandonedRenders {
    stuck: Arc<AtomicUsize>,
}

/// Held by the render's thread; dropped when the render returns, however late.
pub(crate) struct RunningRender {
    state: Arc<AtomicU8>,
    stuck: Arc<AtomicUsize>,
}

/// The worker's handle on one render.
pub(crate) struct RenderHandle {
    cancel: CancelFlag,
    state: Arc<AtomicU8>,
    stuck: Arc<AtomicUsize>,
}

impl AbandonedRenders {
    pub(crate) fn start(&self, cancel: CancelFlag) -> (RenderHandle, RunningRender) {
        let state = Arc::new(AtomicU8::new(RUNNING));
        (
            RenderHandle { cancel, state: state.clone(), stuck: self.stuck.clone() },
            RunningRender { state, stuck: self.stuck.clone() },
        )
    }

    pub(crate) fn stuck(&self) -> usize {
        self.stuck.load(Ordering::SeqCst)
    }
}

impl RenderHandle {
    /// Asks the render to stop and counts it as stuck until its thread returns.
    pub(crate) fn abandon(&self) {
        self.cancel.cancel();
        if self.state.compare_exchange(RUNNING, ABANDONED, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            let stuck = self.stuck.fetch_add(1, Ordering::SeqCst) + 1;
            metrics::gauge!("darkroom_renders_stuck").set(stuck as f64);
            metrics::counter!("darkroom_renders_abandoned_total").increment(1);
        }
    }
}

/// A render whose worker stops waiting for it (shutdown's deadline, a dropped future) is
/// abandoned too: told to stop, and counted until it does.
impl Drop for RenderHandle {
    fn drop(&mut self) {
        self.abandon();
    }
}

impl Drop for RunningRender {
    fn drop(&mut self) {
        if self.state.swap(FINISHED, Ordering::SeqCst) == ABANDONED {
            let stuck = self.stuck.fetch_sub(1, Ordering::SeqCst).saturating_sub(1);
            metrics::gauge!("darkroom_renders_stuck").set(stuck as f64);
            tracing::info!("an abandoned render has stopped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_render_counts_as_stuck_from_its_abandonment_until_its_thread_returns() {
        let renders = AbandonedRenders::default();
        let (handle, running) = renders.start(CancelFlag::default());
        handle.abandon();
        handle.abandon();
        assert_eq!(renders.stuck(), 1);
        drop(running);
        assert_eq!(renders.stuck(), 0);

        // Finished first, abandoned too late: never counted.
        let (handle, running) = renders.start(CancelFlag::default());
        drop(running);
        handle.abandon();
        assert_eq!(renders.stuck(), 0);

        // Dropped while running (shutdown stopped waiting): told to stop, counted.
        let cancel = CancelFlag::default();
        let (handle, running) = renders.start(cancel.clone());
        drop(handle);
        assert!(cancel.is_cancelled());
        assert_eq!(renders.stuck(), 1);
        drop(running);
        assert_eq!(renders.stuck(), 0);
    }
}
