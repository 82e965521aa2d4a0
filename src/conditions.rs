//! kstatus conditions: `Ready`, `Reconciling`, `Stalled`.
//!
//! Every reconciler describes the outcome of a pass as an [`Outcome`]; one
//! pure function turns it into the three conditions that `kubectl wait`,
//! Argo CD and Flux read. `lastTransitionTime` only moves when a condition's
//! status changes, so a steady object does not churn.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";

/// What a reconcile pass concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything is as the spec asks.
    Ready { reason: String, message: String },
    /// Work is under way (or waiting for something that will come by itself).
    Progressing { reason: String, message: String },
    /// A person must act: the spec is wrong or something it names is missing.
    Stalled { reason: String, message: String },
    /// Held on purpose (`spec.suspend`): neither ready, working nor stuck.
    Suspended { reason: String, message: String },
}

impl Outcome {
    pub fn ready(reason: &str, message: impl Into<String>) -> Self {
        Outcome::Ready {
            reason: reason.into(),
            message: message.into(),
        }
    }
    pub fn progressing(reason: &str, message: impl Into<String>) -> Self {
        Outcome::Progressing {
            reason: reason.into(),
            message: message.into(),
        }
    }
    pub fn stalled(reason: &str, message: impl Into<String>) -> Self {
        Outcome::Stalled {
            reason: reason.into(),
            message: message.into(),
        }
    }
    pub fn suspended(reason: &str, message: impl Into<String>) -> Self {
        Outcome::Suspended {
            reason: reason.into(),
            message: message.into(),
        }
    }
    pub fn reason(&self) -> &str {
        match self {
            Outcome::Ready { reason, .. }
            | Outcome::Progressing { reason, .. }
            | Outcome::Stalled { reason, .. }
            | Outcome::Suspended { reason, .. } => reason,
        }
    }
    pub fn message(&self) -> &str {
        match self {
            Outcome::Ready { message, .. }
            | Outcome::Progressing { message, .. }
            | Outcome::Stalled { message, .. }
            | Outcome::Suspended { message, .. } => message,
        }
    }
}

/// The conditions for `outcome`, merged into `previous` (conditions of other
/// types are kept; transition times kept where the status did not change).
pub fn summarise(
    previous: &[Condition],
    outcome: &Outcome,
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    let (ready, reconciling, stalled) = match outcome {
        Outcome::Ready { .. } => ("True", "False", "False"),
        Outcome::Progressing { .. } => ("False", "True", "False"),
        Outcome::Stalled { .. } => ("False", "False", "True"),
        Outcome::Suspended { .. } => ("False", "False", "False"),
    };
    let mut out: Vec<Condition> = previous
        .iter()
        .filter(|c| ![READY, RECONCILING, STALLED].contains(&c.type_.as_str()))
        .cloned()
        .collect();
    for (type_, status) in [
        (READY, ready),
        (RECONCILING, reconciling),
        (STALLED, stalled),
    ] {
        // Negative polarity conditions (Reconciling, Stalled) that are False
        // say why they are False (kstatus treats absent and False alike,
        // people do not).
        let (reason, message) = if status == "True" || type_ == READY {
            (outcome.reason(), outcome.message())
        } else {
            not_the_case(outcome)
        };
        out.push(set(
            previous, type_, status, reason, message, generation, now,
        ));
    }
    out
}

/// The reason and message of a False `Reconciling` or `Stalled` under
/// `outcome`: what the object is doing instead.
fn not_the_case(outcome: &Outcome) -> (&str, &str) {
    match outcome {
        Outcome::Ready { .. } => ("Succeeded", "reconciled: nothing is left to do"),
        Outcome::Progressing { .. } => ("Progressing", "work is under way; nothing is stuck"),
        // Only Reconciling is False here: stopped, for the Stalled reason.
        Outcome::Stalled { reason, .. } => {
            (reason.as_str(), "stopped until a person acts: see Stalled")
        }
        Outcome::Suspended { .. } => ("Suspended", "held by spec.suspend"),
    }
}

/// One condition, keeping the previous transition time when the status is unchanged.
pub fn set(
    previous: &[Condition],
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time,
    }
}

/// The condition of a type, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether `type_` is True.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    #[test]
    fn ready_sets_ready_true_and_clears_the_others() {
        let c = summarise(&[], &Outcome::ready("Valid", "all good"), Some(3), t(10));
        let ready = find(&c, READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", "Valid")
        );
        assert_eq!(ready.observed_generation, Some(3));
        assert_eq!(find(&c, RECONCILING).unwrap().status, "False");
        assert_eq!(find(&c, STALLED).unwrap().status, "False");
    }

    #[test]
    fn stalled_carries_reason_and_message_on_ready_and_stalled() {
        let c = summarise(
            &[],
            &Outcome::stalled("TenantNotFound", "no tenant acme"),
            Some(1),
            t(10),
        );
        assert_eq!(find(&c, READY).unwrap().status, "False");
        assert_eq!(find(&c, READY).unwrap().reason, "TenantNotFound");
        let stalled = find(&c, STALLED).unwrap();
        assert_eq!(
            (stalled.status.as_str(), stalled.message.as_str()),
            ("True", "no tenant acme")
        );
    }

    /// The seed audit: "a false Stalled/Reconciling condition carries a real
    /// reason", never a placeholder such as its own type name.
    #[test]
    fn a_false_stalled_or_reconciling_condition_carries_a_real_reason() {
        let cases = [
            (Outcome::ready("Verified", "ok"), "Succeeded", "Succeeded"),
            (Outcome::progressing("Waiting", "chunks"), "", "Progressing"),
            (
                Outcome::stalled("TenantNotFound", "no tenant acme"),
                "TenantNotFound",
                "",
            ),
            (
                Outcome::suspended("Suspended", "held"),
                "Suspended",
                "Suspended",
            ),
        ];
        for (outcome, reconciling, stalled) in cases {
            let c = summarise(&[], &outcome, Some(1), t(10));
            for (type_, want) in [(RECONCILING, reconciling), (STALLED, stalled)] {
                let got = find(&c, type_).unwrap();
                if got.status == "True" {
                    assert_eq!(got.reason, outcome.reason());
                    continue;
                }
                assert_eq!(got.reason, want, "{type_} under {outcome:?}");
                assert_ne!(got.reason, type_, "{type_} under {outcome:?}");
                assert!(!got.message.is_empty(), "{type_} under {outcome:?}");
            }
            for cond in &c {
                // The apiserver's rule for a reason: CamelCase, non-empty.
                assert!(
                    cond.reason
                        .chars()
                        .next()
                        .is_some_and(|ch| ch.is_ascii_uppercase())
                        && cond
                            .reason
                            .chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_'),
                    "{cond:?}"
                );
            }
        }
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let first = summarise(&[], &Outcome::ready("Valid", "ok"), Some(1), t(10));
        let again = summarise(&first, &Outcome::ready("Valid", "still ok"), Some(2), t(20));
        assert_eq!(
            find(&again, READY).unwrap().last_transition_time,
            Time(t(10))
        );
        let broken = summarise(&again, &Outcome::stalled("Bad", "x"), Some(3), t(30));
        assert_eq!(
            find(&broken, READY).unwrap().last_transition_time,
            Time(t(30))
        );
    }

    #[test]
    fn other_condition_types_are_kept() {
        let mut prev = summarise(&[], &Outcome::ready("Valid", "ok"), Some(1), t(10));
        prev.push(set(
            &[],
            "PartiallyImported",
            "True",
            "Conflicts",
            "2 conflicts",
            Some(1),
            t(10),
        ));
        let next = summarise(&prev, &Outcome::ready("Valid", "ok"), Some(1), t(20));
        assert!(is_true(&next, "PartiallyImported"));
        assert_eq!(next.len(), 4);
    }
}
