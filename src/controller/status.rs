use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Context;
use crate::conditions::READY;

/// The one field manager Ferry writes with.
pub const FIELD_MANAGER: &str = "ferry";

/// events.k8s.io refuses a note longer than 1 KiB; a refused event is an
/// event nobody sees, so notes are cut to fit.
pub const MAX_EVENT_NOTE_BYTES: usize = 1024;

/// Longest condition message written: messages can carry text from
/// untrusted packages, and a status over etcd's request limit cannot be
/// written at all (the object would then be reconciled again and again).
pub const MAX_CONDITION_MESSAGE_BYTES: usize = 4096;

/// Most problems listed in a status; the rest are counted.
pub const MAX_LISTED_PROBLEMS: usize = 100;

/// Longest single problem listed (names in a package are unbounded).
pub const MAX_PROBLEM_BYTES: usize = 512;

/// `s` cut to at most `max` bytes on a character boundary; a cut says so
/// and how long the whole was, so nothing is dropped silently.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let marker = format!("… [cut: {} bytes in all]", s.len());
    let mut end = max.saturating_sub(marker.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{marker}", &s[..end])
}

/// The first [`MAX_LISTED_PROBLEMS`] problems (each cut to
/// [`MAX_PROBLEM_BYTES`]), then one line counting the rest; and a condition
/// message within [`MAX_CONDITION_MESSAGE_BYTES`] that starts with the count.
pub fn bounded_problems(problems: &[String]) -> (Vec<String>, String) {
    let mut listed: Vec<String> = problems
        .iter()
        .take(MAX_LISTED_PROBLEMS)
        .map(|p| truncate(p, MAX_PROBLEM_BYTES))
        .collect();
    if problems.len() > MAX_LISTED_PROBLEMS {
        listed.push(format!(
            "... and {}, not listed",
            ferry_engine::ledger::plural(
                problems.len() - MAX_LISTED_PROBLEMS,
                "more problem",
                "more problems"
            )
        ));
    }
    let message = truncate(
        &format!(
            "{}: {}",
            ferry_engine::ledger::plural(problems.len(), "problem", "problems"),
            listed.join("; ")
        ),
        MAX_CONDITION_MESSAGE_BYTES,
    );
    (listed, message)
}

/// Writes `status` with server-side apply on the status subresource.
pub async fn apply_status<K>(
    api: &Api<K>,
    obj: &K,
    status: impl Serialize,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

/// Publishes an event when the `Ready` condition changed status or reason:
/// events mark changes, not every pass.
pub async fn publish_if_changed<K>(
    ctx: &Context,
    obj: &K,
    before: &[Condition],
    after: &[Condition],
) where
    K: Resource<DynamicType = ()>,
{
    let key = |c: &[Condition]| {
        crate::conditions::find(c, READY).map(|r| (r.status.clone(), r.reason.clone()))
    };
    let Some((status, reason)) = key(after) else {
        return;
    };
    if key(before) == Some((status.clone(), reason.clone())) {
        return;
    }
    let note =
        crate::conditions::find(after, READY).map(|c| truncate(&c.message, MAX_EVENT_NOTE_BYTES));
    let event = Event {
        type_: if status == "True" {
            EventType::Normal
        } else {
            EventType::Warning
        },
        reason,
        note,
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &obj.object_ref(&())).await {
        tracing::warn!(error = %e, "could not publish event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_short_text_and_marks_a_cut() {
        assert_eq!(truncate("short", 10), "short");
        let long = "é".repeat(2000);
        let cut = truncate(&long, MAX_EVENT_NOTE_BYTES);
        assert!(cut.len() <= MAX_EVENT_NOTE_BYTES, "{}", cut.len());
        assert!(cut.ends_with("[cut: 4000 bytes in all]"), "{cut}");
    }

    #[test]
    fn thousands_of_problems_become_a_bounded_list_and_a_count() {
        let problems: Vec<String> = (0..5000)
            .map(|i| {
                format!(
                    "entry \"x{i}{}\": present in the archive but not in the index",
                    "y".repeat(2000)
                )
            })
            .collect();
        let (listed, message) = bounded_problems(&problems);
        assert_eq!(listed.len(), MAX_LISTED_PROBLEMS + 1);
        assert_eq!(
            listed[MAX_LISTED_PROBLEMS],
            "... and 4900 more problems, not listed"
        );
        assert!(listed.iter().all(|p| p.len() <= MAX_PROBLEM_BYTES));
        assert!(
            message.starts_with("5000 problems: entry \"x0"),
            "{message}"
        );
        assert!(message.len() <= MAX_CONDITION_MESSAGE_BYTES);
        let few = vec!["a".to_string(), "b".to_string()];
        assert_eq!(
            bounded_problems(&few),
            (few.clone(), "2 problems: a; b".into())
        );
        assert_eq!(bounded_problems(&few[..1]).1, "1 problem: a");
    }
}
