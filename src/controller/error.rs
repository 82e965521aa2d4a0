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
            Error::Stalled { reason, .. } | Error::Waiting { reason, .. } => reason,
        }
    }

    /// How long to wait before retrying, or `None` when only a change to a
    /// watched object should bring the object back.
    pub fn retry_after(&self, attempts: u32) -> Option<Duration> {
        match self {
            // 1s, 2s, 4s ... capped at 5 minutes.
            Error::Kube(_) => {
                Some(Duration::from_secs(1 << attempts.min(8)).min(Duration::from_secs(300)))
            }
            Error::Waiting { retry_after, .. } => Some(*retry_after),
            Error::Stalled { .. } => None,
        }
    }
}
