//! One pipeline segment of one photo, in the order the at-least-once contract needs:
//! still wanted? → read the input → render (reporting processing if that takes a while) →
//! still wanted (not cancelled meanwhile)? → store the outputs → report done, or forward to
//! the next stage. Everything is keyed by (photo, attempt, segment), so a redelivery redoes
//! the same work into the same keys.
//!
//! Each IO step goes through [`Worker::with_retries`]: a transient failure trips the
//! breaker (the process stops taking messages), and the step is retried in place once the
//! dependencies answer again, while the heartbeat keeps the message hidden — so a store
//! outage costs neither the render already done nor one of the message's receives.

use crate::lease::Lease;
use crate::outcome::{hold_pause, MAX_HOLD, MAX_HOLD_RETRIES};
use crate::render::{render, CancelFlag, Handover, RenderError, RenderInput, Rendered};
use crate::Worker;
use darkroom_core::budget;
use darkroom_core::{keys, ErrorCode, OutputInfo, PhotoError, PhotoRequest, PhotoResponse, PhotoUpdate};
use darkroom_queue::{MessageGroup, OutgoingMessage, Queue, QueueError, ReceivedMessage};
use darkroom_store::StoreError;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a segment works before it reports "processing".
pub(crate) const PROCESSING_REPORT_AFTER: Duration = Duration::from_millis(750);

/// One delivery of one request, as the steps see it.
pub(crate) struct Delivery<'a> {
    pub queue: &'a Arc<dyn Queue>,
    pub message: &'a ReceivedMessage,
    pub request: &'a PhotoRequest,
    pub abandon: &'a CancellationToken,
    pub lease: &'a Lease,
    /// The place this message holds among its queue's messages waiting for a CPU slot.
    pub waiting: &'a std::sync::Mutex<Option<darkroom_consumer::Place>>,
}

impl Delivery<'_> {
    /// The photo holds a CPU slot: its queue may take the next message.
    fn started(&self) {
        self.waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
    }
}

pub(crate) enum Step {
    Finished,
    Forwarded,
    AlreadyDone,
    /// Its owner cancelled it: while it was queued, or at work and still shown queued.
    Cancelled,
}

#[derive(Debug)]
pub(crate) enum StepError {
    /// The store or a queue is unavailable: worth trying again later.
    Transient(String),
    /// The photo cannot be processed: fail it.
    Permanent(PhotoError),
    JobGone,
    Panicked(String),
    /// The render ran past the stage's time budget.
    OverBudget {
        stage: String,
        budget: Duration,
    },
    /// Shutdown's drain deadline passed.
    Abandoned,
    /// Heartbeats failed for a whole visibility timeout.
    LeaseLost,
}

pub(crate) fn transient(context: &str, error: impl std::fmt::Display) -> StepError {
    StepError::Transient(format!("{context}: {error}"))
}

fn store_error(context: &str, error: StoreError) -> StepError {
    if error.is_retryable() {
        transient(context, error)
    } else {
        StepError::Permanent(PhotoError::new(ErrorCode::Internal, format!("{context}: {error}")))
    }
}

fn queue_error(context: &str, error: QueueError) -> StepError {
    if error.is_retryable() {
        transient(context, error)
    } else {
        StepError::Permanent(PhotoError::new(ErrorCode::Internal, format!("{context}: {error}")))
    }
}

impl Worker {
    pub(crate) async fn run_segment(&self, delivery: &Delivery<'_>) -> Result<Step, StepError> {
        let request = delivery.request;
        if let Some(step) = self.with_retries(delivery, "checking the job", || self.already_done(request)).await? {
            return Ok(step);
        }
        let Some(segment) = request.current_segment().cloned() else {
            return Err(StepError::Permanent(PhotoError::new(
                ErrorCode::Internal,
                "the request names a pipeline segment its plan does not have",
            )));
        };
        let work = async {
            let reading = std::time::Instant::now();
            let bytes = self.with_retries(delivery, "reading the photo", || self.read_input(request)).await?;
            // The segment that draws the decorations reads the PNGs its image watermarks name.
            let watermark_pngs = if segment.end_op >= request.recipe.ops.len() {
                self.with_retries(delivery, "reading the watermark images", || self.read_watermark_pngs(request))
                    .await?
            } else {
                Vec::new()
            };
            let read_time = reading.elapsed();
            let cpu_slot = self.cpu_slots.acquire().await.map_err(|e| transient("waiting for a CPU slot", e))?;
            delivery.started();
            let rendering = std::time::Instant::now();
            let rendered =
                self.render_within_budget(request, &segment.stage, (bytes, watermark_pngs), cpu_slot).await?;
            Ok::<_, StepError>((rendered, read_time + rendering.elapsed()))
        };
        // "Processing" is reported only for a segment still at work after a moment: a photo
        // done sooner goes from queued to done with one report instead of two, which saves
        // a queue message and two store writes per photo (docs/ARCHITECTURE.md "One photo's
        // path"). The report is for the view only: the work goes on while it is sent, and
        // one that cannot be sent is logged, not retried (the next report supersedes it; a
        // late one never overwrites a later state).
        let report = async {
            tokio::time::sleep(PROCESSING_REPORT_AFTER).await;
            let processing = PhotoUpdate::Processing {
                stage: segment.stage.clone(),
                segment: request.segment as u32,
                waiting: false,
            };
            if let Err(error) = self.respond(request, processing).await {
                tracing::warn!(error = ?error, "could not report that the photo is being processed; its view shows it queued until its next report");
            }
        };
        tokio::pin!(work, report);
        let mut reported = false;
        let (rendered, work_time) = loop {
            tokio::select! {
                finished = &mut work => break finished?,
                () = &mut report, if !reported => reported = true,
            }
        };
        // A photo at work is shown as queued until it reports "processing", so its owner may
        // cancel it meanwhile: the cancel holds, and the render is dropped unstored.
        if self.with_retries(delivery, "checking for a cancel", || self.is_cancelled(request)).await? {
            return Ok(Step::Cancelled);
        }
        let partition = delivery.message.partition;
        // The photo's work time: this segment's reading and rendering (not its wait for a CPU
        // slot) on top of the earlier segments'.
        let work_ms = request.work_ms.saturating_add(work_time.as_millis() as u64);
        self.with_retries(delivery, "storing the results", || {
            self.finish_or_forward(request, partition, &rendered, work_ms)
        })
        .await
    }

    /// Whether the owner cancelled this attempt (its `cancelled` event exists).
    async fn is_cancelled(&self, request: &PhotoRequest) -> Result<bool, StepError> {
        let key = keys::cancelled_event(&request.job_id, &request.photo_id, request.attempt);
        self.store
            .head(&key)
            .await
            .map(|found| found.is_some())
            .map_err(|e| store_error("checking whether the photo was cancelled", e))
    }

    /// Whether this attempt is already finished (a redelivery) or superseded by a newer
    /// one (a retry, or the reconciler's recovery); `JobGone` if the job was deleted. The
    /// documents are looked up at once (one round trip to S3, not five), and judged in
    /// this order.
    async fn already_done(&self, request: &PhotoRequest) -> Result<Option<Step>, StepError> {
        let (job, photo) = (&request.job_id, &request.photo_id);
        let exists = |key: String| async move { self.store.head(&key).await.map(|found| found.is_some()) };
        let [done, failed] = keys::terminal_events(job, photo, request.attempt);
        let last = request.is_last_segment();
        let finished_as = |key: String| async move {
            if last {
                exists(key).await
            } else {
                Ok(false)
            }
        };
        let (manifest, newer, cancelled, done, failed) = tokio::join!(
            exists(keys::job_manifest(job)),
            exists(keys::queued_event(job, photo, request.attempt + 1)),
            self.is_cancelled(request),
            finished_as(done),
            finished_as(failed),
        );
        if !manifest.map_err(|e| store_error("checking the job", e))? {
            return Err(StepError::JobGone);
        }
        if newer.map_err(|e| store_error("checking for newer attempts", e))? {
            tracing::info!("a newer attempt of this photo exists; dropping this one");
            return Ok(Some(Step::AlreadyDone));
        }
        if cancelled? {
            return Ok(Some(Step::Cancelled));
        }
        // A redelivery of a finished last segment.
        let finished = done.map_err(|e| store_error("checking earlier deliveries", e))?
            || failed.map_err(|e| store_error("checking earlier deliveries", e))?;
        Ok(finished.then_some(Step::AlreadyDone))
    }

    /// The PNGs the recipe's image watermarks name, as the upload stored them.
    async fn read_watermark_pngs(&self, request: &PhotoRequest) -> Result<Vec<(String, bytes::Bytes)>, StepError> {
        let mut pngs = Vec::new();
        for name in request.recipe.asset_names() {
            match self.store.get(&keys::asset(&request.job_id, name)).await {
                Ok(bytes) => pngs.push((name.to_owned(), bytes)),
                Err(error) if error.is_not_found() => {
                    return Err(StepError::Permanent(PhotoError::new(
                        ErrorCode::InvalidRecipe,
                        format!("the watermark image {name} is not among the files sent with the job"),
                    )))
                }
                Err(error) => return Err(store_error("reading a watermark image", error)),
            }
        }
        Ok(pngs)
    }

    async fn read_input(&self, request: &PhotoRequest) -> Result<bytes::Bytes, StepError> {
        let (job, photo) = (&request.job_id, &request.photo_id);
        let key = match request.segment {
            0 => keys::original(job, photo),
            n => keys::intermediate(job, photo, request.attempt, n - 1),
        };
        match self.store.get(&key).await {
            Ok(bytes) => Ok(bytes),
            // The job manifest exists, so this is not a deletion in progress.
            Err(error) if error.is_not_found() => Err(StepError::Permanent(PhotoError::new(
                ErrorCode::Internal,
                "the photo's input is missing from the store",
            ))),
            Err(error) => Err(store_error("reading the photo", error)),
        }
    }

    /// Renders on a blocking thread within the stage's time budget. Past the budget the
    /// render is told to stop and left behind: its slot is freed at once, and a render
    /// that ignores the request (a stuck library call) is counted as stuck.
    async fn render_within_budget(
        &self,
        request: &PhotoRequest,
        stage: &str,
        (bytes, watermark_pngs): (bytes::Bytes, Vec<(String, bytes::Bytes)>),
        _cpu_slot: tokio::sync::SemaphorePermit<'_>,
    ) -> Result<Rendered, StepError> {
        let input = RenderInput {
            bytes,
            watermark_pngs,
            recipe_ops: request.recipe.ops.clone(),
            segment: request.current_segment().map_or(0..0, |segment| segment.first_op..segment.end_op),
            is_first_segment: request.segment == 0,
            decorations_in_place: request.draws_decorations_in_place(),
            format: request.recipe.format,
            quality: request.recipe.quality,
            speed: request.recipe.speed,
            metadata: request.recipe.metadata,
            frame: request.frame,
            limits: self.settings.limits.into(),
        };
        let budget = self.settings.time_budgets.for_stage(stage);
        let cancel = CancelFlag::default();
        let (render_handle, running) = self.abandoned_renders.start(cancel.clone());
        let started = std::time::Instant::now();
        let span = tracing::Span::current();
        let task = tokio::task::spawn_blocking(move || {
            let _running = running;
            span.in_scope(|| render(input, &cancel))
        });
        let joined = match tokio::time::timeout(budget, task).await {
            Ok(joined) => joined,
            Err(_) => {
                render_handle.abandon();
                tracing::warn!(
                    budget_seconds = budget.as_secs(),
                    "the render ran past the stage's time budget; abandoning it"
                );
                return Err(StepError::OverBudget { stage: stage.to_owned(), budget });
            }
        };
        metrics::histogram!("darkroom_segment_seconds", "stage" => stage.to_owned())
            .record(started.elapsed().as_secs_f64());
        match joined {
            Ok(Ok(rendered)) => Ok(rendered),
            Ok(Err(RenderError::Imaging(error))) => {
                Err(StepError::Permanent(PhotoError::new(error.code(), error.to_string())))
            }
            Ok(Err(RenderError::Cancelled)) => Err(StepError::OverBudget { stage: stage.to_owned(), budget }),
            Err(join) if join.is_panic() => Err(StepError::Panicked(panic_message(join))),
            Err(join) => Err(transient("image task", join)),
        }
    }

    /// Stores the outputs, then reports done or forwards to the next stage. Idempotent: a
    /// retry rewrites the same keys.
    async fn finish_or_forward(
        &self,
        request: &PhotoRequest,
        partition: usize,
        rendered: &Rendered,
        work_ms: u64,
    ) -> Result<Step, StepError> {
        let (job, photo, attempt) = (&request.job_id, &request.photo_id, request.attempt);
        let mut outputs = request.outputs.clone();
        outputs.extend(self.store_outputs(request, rendered).await?);
        match &rendered.handover {
            Handover::Finished => {
                self.respond(request, PhotoUpdate::Done { outputs, work_ms: Some(work_ms) }).await?;
                Ok(Step::Finished)
            }
            Handover::NextSegment { intermediate } => {
                let Some(next) = request.forwarded(Some(rendered.frame), outputs, work_ms) else {
                    return Err(StepError::Permanent(PhotoError::new(
                        ErrorCode::Internal,
                        "a segment before the last rendered no hand-over",
                    )));
                };
                self.store
                    .put(
                        &keys::intermediate(job, photo, attempt, request.segment),
                        intermediate.clone().into(),
                        "image/png",
                    )
                    .await
                    .map_err(|e| store_error("storing the intermediate image", e))?;
                let next_stage = next.current_segment().map(|s| s.stage.clone()).unwrap_or_default();
                let queue = self
                    .queues
                    .get(&self.names.requests(&next_stage))
                    .await
                    .map_err(|e| queue_error("opening the next stage's queue", e))?;
                // The photo keeps its turn's group, and the lane it had in this stage.
                let (tenant, flow) = next.fair_share();
                let forward = OutgoingMessage::new(next.encode(), next.attributes())
                    .in_group(Some(MessageGroup::new(tenant, flow)))
                    .with_partition_hint(Some(partition));
                queue.send(forward).await.map_err(|e| queue_error("forwarding to the next stage", e))?;
                tracing::info!(next_stage = %next_stage, "segment done; forwarded");
                // Tell the job view the photo now waits at the next stage. Best effort: the
                // forward is what matters, and that stage's own report supersedes this one.
                let waiting =
                    PhotoUpdate::Processing { stage: next_stage.clone(), segment: next.segment as u32, waiting: true };
                if let Err(error) = self.respond(request, waiting).await {
                    tracing::warn!(next_stage = %next_stage, error = ?error, "could not report the hand-over; the view shows the photo in the previous stage until the next one starts it");
                }
                Ok(Step::Forwarded)
            }
        }
    }

    /// Stores the files side by side (on S3, one round trip's wait instead of three).
    async fn store_outputs(&self, request: &PhotoRequest, rendered: &Rendered) -> Result<Vec<OutputInfo>, StepError> {
        let stores = rendered.files.iter().map(|file| async move {
            let key =
                keys::output(&request.job_id, &request.photo_id, request.attempt, file.name, file.format.extension());
            self.store
                .put(&key, file.bytes.clone().into(), file.format.content_type())
                .await
                .map_err(|e| store_error("storing an output", e))?;
            Ok::<_, StepError>(OutputInfo {
                name: file.name.to_owned(),
                key,
                content_type: file.format.content_type().to_owned(),
                width: file.width,
                height: file.height,
                size: file.bytes.len() as u64,
                frame: (file.name == "result").then_some(rendered.frame),
            })
        });
        // Every put is let finish before any failure is returned: a write must not land
        // after this segment's report (a deletion's sweep counts on the last report coming
        // after the last write).
        futures::future::join_all(stores).await.into_iter().collect()
    }

    pub(crate) async fn respond(&self, request: &PhotoRequest, update: PhotoUpdate) -> Result<(), StepError> {
        let response = PhotoResponse::new(request.job_id.clone(), request.photo_id.clone(), request.attempt, update);
        let queue = self.queues.get(&self.names.responses()).await.map_err(|e| queue_error("reporting", e))?;
        queue
            .send(OutgoingMessage::new(response.encode(), response.attributes()))
            .await
            .map_err(|e| queue_error("reporting", e))
    }

    /// Runs an IO step; on a transient failure trips the breaker, waits until the
    /// dependencies answer (and at least a growing pause), and tries again — up to
    /// [`MAX_HOLD_RETRIES`] times or [`MAX_HOLD`], unless shutdown or a lost lease ends it.
    pub(crate) async fn with_retries<T, F, Fut>(
        &self,
        delivery: &Delivery<'_>,
        what: &'static str,
        mut step: F,
    ) -> Result<T, StepError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StepError>>,
    {
        let held_since = tokio::time::Instant::now();
        let mut retry = 0;
        loop {
            let reason = match step().await {
                Err(StepError::Transient(reason)) => reason,
                other => return other,
            };
            self.breaker.trip(reason.clone());
            let held = held_since.elapsed();
            if retry >= MAX_HOLD_RETRIES || held >= MAX_HOLD {
                return Err(StepError::Transient(reason));
            }
            tracing::warn!(step = what, error.message = %reason, retry = retry + 1, "transient failure: holding the photo until the store and queues answer");
            let pause = hold_pause(retry);
            tokio::select! {
                () = async { tokio::time::sleep(pause).await; self.breaker.closed().await } => {}
                () = tokio::time::sleep(MAX_HOLD.saturating_sub(held)) => return Err(StepError::Transient(reason)),
                () = delivery.abandon.cancelled() => return Err(StepError::Abandoned),
                () = delivery.lease.lost() => return Err(StepError::LeaseLost),
            }
            retry += 1;
        }
    }
}

/// The user-facing reason of a photo that ran out of time in every attempt.
pub(crate) fn over_budget_error(stage: &str, budget: Duration, attempts: u32) -> PhotoError {
    PhotoError::new(
        ErrorCode::TimedOut,
        format!(
            "processing took longer than the {} limit of the {stage} stage in each of {attempts} attempts; try a smaller photo or a simpler recipe, or ask the operator to raise --time-budget",
            budget::describe(budget)
        ),
    )
}

fn panic_message(join: tokio::task::JoinError) -> String {
    let payload = join.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-text payload".to_owned())
}
