use std::time::Duration;

/// Why a reconcile pass did not finish. Every variant has a reason that is
/// the condition reason and the event reason, so the two never disagree.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server failed or refused a request; retried with backoff.
    #[error("Kubernetes API request failed: {0}")]
    Kube(#[from] kube::Error),
    /// The object is missing what only a person can give it (for example a
    /// tenant it names does not exist). Not retried on a timer: the
    /// reconciler watches what it waits for.
    #[error("{message}")]
    Stalled {
        reason: &'static str,
        message: String,
    },
    /// Writes the apiserver could not take for now (429, 5xx, a lost
    /// connection): retried with the exponential backoff and jitter of
    /// [`backoff`], never sooner than the server asked (`Retry-After`).
    #[error("{message}")]
    Retrying {
        reason: &'static str,
        message: String,
        server: Option<Duration>,
    },
    /// Something that will come by itself is not there yet.
    #[error("{message}")]
    Waiting {
        reason: &'static str,
        message: String,
        retry_after: Duration,
    },
}

impl Error {
    /// The reason, as conditions and events carry it.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "ApiError",
            Error::Stalled { reason, .. }
            | Error::Waiting { reason, .. }
            | Error::Retrying { reason, .. } => reason,
        }
    }

    /// How long to wait before retrying, or `None` when only a change to a
    /// watched object should bring the object back.
    pub fn retry_after(&self, attempts: u32) -> Option<Duration> {
        match self {
            Error::Kube(e) => Some(backoff(attempts, server_retry_after(e))),
            Error::Retrying { server, .. } => Some(backoff(attempts, *server)),
            Error::Waiting { retry_after, .. } => Some(*retry_after),
            Error::Stalled { .. } => None,
        }
    }
}

/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// How long the apiserver asked us to wait: `details.retryAfterSeconds` of
/// its 429 (API Priority and Fairness, rate limits) or 5xx answer (it sets
/// the `Retry-After` header from the same value).
pub fn server_retry_after(e: &kube::Error) -> Option<Duration> {
    match e {
        kube::Error::Api(s) if s.code == 429 || s.code >= 500 => s
            .details
            .as_ref()
            .map(|d| d.retry_after_seconds)
            .filter(|n| *n > 0)
            .map(|n| Duration::from_secs(n.into())),
        _ => None,
    }
}

/// The wait before attempt `attempts + 1`: exponential (1 s, 2 s, 4 s ...
/// up to [`MAX_BACKOFF`]) with "equal jitter" (a random point in the upper
/// half), so objects that failed together do not come back together; never
/// shorter than what the server asked for, plus up to a fifth of it, so a
/// crowd told "in 5 s" spreads out.
pub fn backoff(attempts: u32, server: Option<Duration>) -> Duration {
    let exp = Duration::from_secs(1u64 << attempts.saturating_sub(1).min(9)).min(MAX_BACKOFF);
    let jittered = exp.mul_f64(0.5 + fastrand::f64() * 0.5);
    match server {
        Some(asked) => jittered.max(asked.min(MAX_BACKOFF).mul_f64(1.0 + fastrand::f64() * 0.2)),
        None => jittered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, retry_after: u32) -> kube::Error {
        // As the apiserver sends it.
        let s: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "message": "throttled", "reason": "TooManyRequests",
            "code": code, "details": {"retryAfterSeconds": retry_after}
        }))
        .unwrap();
        kube::Error::Api(s.boxed())
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        for attempts in 1..=12u32 {
            let exp = Duration::from_secs(1u64 << (attempts - 1).min(9)).min(MAX_BACKOFF);
            let seen: Vec<Duration> = (0..200).map(|_| backoff(attempts, None)).collect();
            assert!(
                seen.iter().all(|d| *d >= exp / 2 && *d <= exp),
                "attempt {attempts}: {seen:?}"
            );
            // Jitter: two hundred draws are not all the same.
            assert!(
                seen.iter().any(|d| *d != seen[0]),
                "no jitter at {attempts}"
            );
        }
    }

    #[test]
    fn the_servers_retry_after_is_honoured_for_429_and_5xx_only() {
        for code in [429, 500, 503] {
            let e = status(code, 7);
            assert_eq!(server_retry_after(&e), Some(Duration::from_secs(7)));
            let wait = Error::Kube(status(code, 7)).retry_after(1).unwrap();
            assert!(
                wait >= Duration::from_secs(7) && wait <= Duration::from_millis(8400),
                "{code}: {wait:?}"
            );
        }
        assert_eq!(server_retry_after(&status(409, 7)), None);
        assert_eq!(server_retry_after(&status(429, 0)), None);
        // A later attempt's own backoff wins when it is longer.
        let wait = Error::Kube(status(429, 1)).retry_after(8).unwrap();
        assert!(wait >= Duration::from_secs(64), "{wait:?}");
    }

    /// Security review finding 14: a phase whose writes were refused for now
    /// came back after a fixed 5 s, whatever the attempt and whatever the
    /// server asked.
    #[test]
    fn a_phase_retried_for_busy_writes_backs_off_and_honours_the_server() {
        let retrying = |server| Error::Retrying {
            reason: "ApiUnavailable",
            message: "3 objects could not be written for now".into(),
            server,
        };
        let first = retrying(None).retry_after(1).unwrap();
        assert!(first <= Duration::from_secs(1), "{first:?}");
        let sixth = retrying(None).retry_after(6).unwrap();
        assert!(sixth >= Duration::from_secs(16), "{sixth:?}");
        let asked = retrying(Some(Duration::from_secs(9)))
            .retry_after(1)
            .unwrap();
        assert!(asked >= Duration::from_secs(9), "{asked:?}");
    }
}
