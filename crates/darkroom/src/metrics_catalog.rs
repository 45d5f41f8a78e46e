//! Every metric darkroom records, with what it counts and what an operator does about it:
//! described to the recorder at start-up (the `# HELP` lines of `/metrics`) and listed in
//! docs/METRICS.md. A test holds this list, the metrics the code records and that page equal.

use metrics::Unit;

/// What kind of series a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    /// Seconds; exported as a summary (quantiles).
    Histogram,
}

/// One metric: its name, kind, labels and help text.
#[derive(Debug)]
pub struct MetricDoc {
    pub name: &'static str,
    pub kind: Kind,
    /// The labels its series carry, comma-separated ("" for none): for docs/METRICS.md,
    /// whose test reads them; /metrics shows the labels themselves.
    #[cfg_attr(not(test), expect(dead_code, reason = "read by the test that checks docs/METRICS.md"))]
    pub labels: &'static str,
    /// What it counts, and when it matters.
    pub help: &'static str,
}

const fn metric(name: &'static str, kind: Kind, labels: &'static str, help: &'static str) -> MetricDoc {
    MetricDoc { name, kind, labels, help }
}

use Kind::{Counter, Gauge, Histogram};

/// Every metric, grouped by the role that records it.
pub const METRICS: &[MetricDoc] = &[
    // Web tier.
    metric("darkroom_jobs_created_total", Counter, "", "Jobs created."),
    metric("darkroom_photos_uploaded_total", Counter, "", "Photos accepted into jobs (refused files are not counted)."),
    metric(
        "darkroom_photos_reprocessed_total",
        Counter,
        "",
        "Photos sent again by reprocessing a whole job, or its failed photos, with another recipe.",
    ),
    metric(
        "darkroom_upload_slots_in_use",
        Gauge,
        "",
        "Uploads this web process is reading now; at --max-concurrent-uploads a newcomer evicts the slowest or gets 429.",
    ),
    metric(
        "darkroom_uploads_evicted_total",
        Counter,
        "",
        "Uploads cut off (408) to give their slot to a newcomer, for trickling slower than the minimum rate while slots ran out.",
    ),
    metric("darkroom_archive_slots_in_use", Gauge, "", "Zip archives this web process is streaming now."),
    metric(
        "darkroom_archives_evicted_total",
        Counter,
        "",
        "Zip downloads cut off to give their slot to a newcomer, for reading slower than the minimum rate while slots ran out.",
    ),
    metric(
        "darkroom_seats_reclaimed_total",
        Counter,
        "",
        "Photo seats of upload batches that never finished (a web process died mid-upload), taken over by a later batch.",
    ),
    metric("darkroom_previews_total", Counter, "result", "Recipe previews: rendered, or busy (refused with 429)."),
    metric("darkroom_preview_seconds", Histogram, "", "Time to render one recipe preview."),
    metric(
        "darkroom_original_thumbs_total",
        Counter,
        "result",
        "Small copies of originals for the job page: rendered, cached, busy (429) or none (too large to copy).",
    ),
    metric("darkroom_original_thumb_seconds", Histogram, "", "Time to make one small copy of an original."),
    metric("darkroom_rate_limited_total", Counter, "", "Requests refused with 429 by the per-client rate limit."),
    metric(
        "darkroom_cross_site_refused_total",
        Counter,
        "",
        "State-changing requests refused for coming from another site.",
    ),
    metric("darkroom_access_keys", Gauge, "", "Access keys loaded from --access-keys-file."),
    metric(
        "darkroom_queue_backlog",
        Gauge,
        "queue",
        "Messages waiting in each queue, as of the last readiness check; the autoscaling signal.",
    ),
    metric(
        "darkroom_queue_in_flight",
        Gauge,
        "queue",
        "Messages received and not yet deleted, as of the last readiness check.",
    ),
    // Every queue consumer (worker, status, webhook delivery).
    metric("darkroom_messages_received_total", Counter, "queue", "Messages received."),
    metric(
        "darkroom_handler_panics_total",
        Counter,
        "queue",
        "Messages whose handling panicked; each returns after its visibility timeout. A bug: report it with the log line.",
    ),
    metric(
        "darkroom_messages_unreadable_total",
        Counter,
        "queue",
        "Messages written by a newer darkroom, handed back for a process that reads them (expected during a rollout).",
    ),
    metric(
        "darkroom_messages_malformed_total",
        Counter,
        "queue",
        "Messages that do not parse; left to the dead-letter queue.",
    ),
    metric(
        "darkroom_receive_failures_total",
        Counter,
        "queue",
        "Failed receives from a queue (the consumer backs off); check the queue service if it keeps rising.",
    ),
    metric(
        "darkroom_delete_failures_total",
        Counter,
        "queue",
        "Handled messages that could not be deleted; they are delivered again and recognised as duplicates.",
    ),
    metric(
        "darkroom_breaker_open",
        Gauge,
        "component",
        "1 while a dependency (store, queue) is failing and this process stopped receiving work, else 0.",
    ),
    metric("darkroom_breaker_trips_total", Counter, "component", "Times the breaker opened."),
    // Workers.
    metric(
        "darkroom_photos_processed_total",
        Counter,
        "stage, outcome",
        "Requests a worker finished, by outcome: completed, forwarded, failed, duplicate, cancelled, unreadable, deferred, retrying, timed_out.",
    ),
    metric(
        "darkroom_segment_seconds",
        Histogram,
        "stage",
        "Time a stage's operations took on one photo (decode to encoded outputs).",
    ),
    metric(
        "darkroom_redeliveries_total",
        Counter,
        "stage",
        "Requests received again after a worker stopped holding them (crash, lost lease).",
    ),
    metric(
        "darkroom_heartbeat_failures_total",
        Counter,
        "",
        "Failed visibility extensions of a photo in work; the photo may be taken over by another worker.",
    ),
    metric(
        "darkroom_renders_abandoned_total",
        Counter,
        "",
        "Renders abandoned past the stage's time budget.",
    ),
    metric(
        "darkroom_renders_stuck",
        Gauge,
        "",
        "Abandoned renders still running; the worker reports not ready at its limit: restart it.",
    ),
    // Status.
    metric(
        "darkroom_status_updates_total",
        Counter,
        "result",
        "Responses applied to jobs: recorded, already_recorded (a duplicate), job_gone (deleted meanwhile).",
    ),
    metric(
        "darkroom_dead_letters_total",
        Counter,
        "stage",
        "Photos failed because their request reached the dead-letter queue (the worker kept dying on them).",
    ),
    metric(
        "darkroom_reconciler_recovered_total",
        Counter,
        "",
        "Photos found with no live request and restarted by the reconciler.",
    ),
    metric(
        "darkroom_reconciler_failed_total",
        Counter,
        "",
        "Photos the reconciler failed after losing their request again and again.",
    ),
    metric(
        "darkroom_reconciler_errors_total",
        Counter,
        "",
        "Jobs the reconciler skipped for a fault of their own (a corrupt document); the error log line names the job.",
    ),
    metric(
        "darkroom_newer_version_skipped_total",
        Counter,
        "task",
        "Jobs the reconciler (reconcile) or retention (expire) left alone for being written by a newer darkroom; past a rollout (after a rollback) nothing else handles them: roll forward.",
    ),
    metric("darkroom_jobs_deleted_total", Counter, "cause", "Jobs deleted: by their owner, or expired by retention."),
    metric(
        "darkroom_retention_errors_total",
        Counter,
        "",
        "Expired jobs the retention sweep skipped for a fault of their own; the error log line names the job.",
    ),
    // Webhook delivery.
    metric(
        "darkroom_webhooks_total",
        Counter,
        "result, answer",
        "Webhook deliveries: delivered, failed (retried) or given_up, with the receiver's answer.",
    ),
];

/// Gives the recorder every metric's help text (and unit), so `/metrics` explains itself.
pub fn describe_all() {
    for doc in METRICS {
        match doc.kind {
            Kind::Counter => metrics::describe_counter!(doc.name, Unit::Count, doc.help),
            Kind::Gauge => metrics::describe_gauge!(doc.name, doc.help),
            Kind::Histogram => metrics::describe_histogram!(doc.name, Unit::Seconds, doc.help),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }

    /// Metric names recorded by the shipped code: the first argument of each `counter!`,
    /// `gauge!` and `histogram!`, a string literal, or one of the few names passed through a
    /// field (the web's slots report under names their settings carry); any other expression
    /// fails the test, so no metric escapes the catalog by being named through a variable.
    fn recorded() -> BTreeSet<String> {
        const NAMED_THROUGH_FIELDS: [&str; 3] =
            ["self.slots.reporting.in_use_gauge", "self.reporting.in_use_gauge", "self.reporting.evicted_counter"];
        let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        for krate in std::fs::read_dir(&crates).unwrap() {
            let src = krate.unwrap().path().join("src");
            if src.is_dir() {
                sources(&src, &mut files);
            }
        }
        let mut names = BTreeSet::new();
        for file in files.iter().filter(|file| !file.ends_with("metrics_catalog.rs")) {
            let text = std::fs::read_to_string(file).unwrap();
            let code: String = text
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                // A comment after code (" // …") is not code either.
                .map(|line| format!("{}\n", line.split(" // ").next().unwrap_or(line)))
                .collect();
            for marker in ["counter!(", "gauge!(", "histogram!("] {
                for (at, _) in code.match_indices(marker) {
                    let argument = code[at + marker.len()..].trim_start();
                    if let Some(literal) = argument.strip_prefix('"') {
                        let name = &literal[..literal.find('"').unwrap()];
                        assert!(
                            name.starts_with("darkroom_"),
                            "{}: a metric named {name:?}, not darkroom_…",
                            file.display()
                        );
                        names.insert(name.to_owned());
                    } else {
                        let expression = argument.split([')', ',']).next().unwrap().trim();
                        assert!(
                            NAMED_THROUGH_FIELDS.contains(&expression),
                            "{}: a metric named by `{expression}`: name it with a literal, or list it here",
                            file.display()
                        );
                    }
                }
            }
            for marker in ["in_use_gauge: \"", "evicted_counter: \""] {
                for (at, _) in code.match_indices(marker) {
                    let literal = &code[at + marker.len()..];
                    names.insert(literal[..literal.find('"').unwrap()].to_owned());
                }
            }
        }
        names
    }

    #[test]
    fn every_recorded_metric_is_described_once_and_nothing_else_is() {
        let described: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
        let unique: BTreeSet<String> = described.iter().map(|n| n.to_string()).collect();
        assert_eq!(unique.len(), described.len(), "a metric is described twice");
        let recorded = recorded();
        assert!(recorded.len() > 30, "the source scan found only {recorded:?}");
        assert_eq!(recorded, unique, "recorded (left) and described (right) metrics differ");
    }

    #[test]
    fn the_metrics_page_lists_every_metric_with_its_labels() {
        let page =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/METRICS.md")).unwrap();
        let rows: BTreeSet<&str> = page
            .lines()
            .filter_map(|line| line.strip_prefix("| `darkroom_"))
            .filter_map(|rest| rest.split('`').next())
            .collect();
        for doc in METRICS {
            let short = doc.name.trim_start_matches("darkroom_");
            assert!(rows.contains(short), "docs/METRICS.md has no row for {}", doc.name);
            let row = page.lines().find(|l| l.starts_with(&format!("| `{}`", doc.name))).unwrap();
            assert!(row.contains(doc.help), "docs/METRICS.md's row for {} does not say {:?}", doc.name, doc.help);
            for label in doc.labels.split(", ").filter(|l| !l.is_empty()) {
                assert!(
                    row.contains(&format!("`{label}`")),
                    "docs/METRICS.md's row for {} misses its label {label}",
                    doc.name
                );
            }
        }
        assert_eq!(rows.len(), METRICS.len(), "docs/METRICS.md lists metrics that are not recorded");
    }
}
