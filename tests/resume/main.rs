//! Import at scale and across a crash, on a control plane of this binary's
//! own (these tests start and kill the operator and count its requests, so
//! they cannot share the integration suite's operator):
//!
//! - a killed operator, restarted, finishes the import with no object
//!   created twice and none missing (`crash.rs`);
//! - the operator makes at most 3 apiserver requests per imported object
//!   (`requests.rs`);
//! - a 10,000-object package imports to Completed (`large.rs`);
//! - an operator killed while verifying a package refuses it after the
//!   restart instead of verifying it again (`verification.rs`);
//! - fifty exports on a Basic tenant, the operator restarted among them,
//!   end with exactly ten counted successes (`exports.rs`).
//!
//! The scenarios run one at a time (one operator at a time against the
//! control plane): each holds [`one_at_a_time`] for its whole run.

mod counting;
mod crash;
mod env;
mod exports;
mod large;
mod requests;
mod verification;

use std::future::Future;
use std::sync::{Mutex, MutexGuard};

static SERIAL: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    // A failed scenario poisons the lock; the next one may still run.
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs a scenario on a runtime of its own, alone.
fn scenario(f: impl Future<Output = ()>) {
    let _alone = one_at_a_time();
    env::control_plane();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f);
}

#[test]
fn a_killed_operator_restarted_finishes_the_import_without_duplicates_or_gaps() {
    scenario(crash::run());
}

#[test]
fn a_verification_killed_midway_is_refused_after_restart_not_retried() {
    scenario(verification::run());
}

#[test]
fn the_operator_makes_at_most_three_requests_per_imported_object() {
    scenario(requests::run());
}

#[test]
fn a_ten_thousand_object_package_imports_to_completed() {
    scenario(large::run());
}

#[test]
fn fifty_exports_on_basic_end_with_exactly_ten_counted_successes_across_an_operator_restart() {
    scenario(exports::run());
}
