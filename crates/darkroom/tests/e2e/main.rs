//! End-to-end tests: the real `darkroom` binary, started on a free port with a temporary
//! data directory, spoken to over HTTP. One test binary for the crate (see Cargo.toml).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod abuse;
mod api;
mod at_scale;
mod browser;
mod deploy;
mod fairness;
mod faults;
mod helpers;
mod job_story;
mod operations;
mod outage;
mod pipeline;
mod preview;
mod private;
mod processes;
mod programs;
mod proxy;
mod reference;
mod reliability;
mod watermark_image;
