//! Exit codes, and errors that say what to do.

use std::fmt;

/// The process exit codes.
pub mod code {
    /// Done.
    pub const OK: i32 = 0;
    /// The import failed, the package was refused, or `--wait` timed out.
    pub const FAILED: i32 = 1;
    /// The command line is wrong, or the command does not apply (for example
    /// `import-again` on a task that did not fail, or a command not
    /// available yet).
    pub const USAGE: i32 = 2;
    /// Something named does not exist, access was refused, or the API
    /// server could not be reached.
    pub const API: i32 = 3;
}

/// An error ending the command: a message for stderr and an exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Failure::new(code::USAGE, message)
    }
    pub fn failed(message: impl Into<String>) -> Self {
        Failure::new(code::FAILED, message)
    }
    pub fn api(message: impl Into<String>) -> Self {
        Failure::new(code::API, message)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What a request was about, to name it in errors.
pub struct Subject<'a> {
    /// Lower-case kind, as `kubectl get` takes it: `importtask`.
    pub kind: &'a str,
    /// Plural, for the hint: `importtasks`.
    pub plural: &'a str,
    pub name: &'a str,
    /// `None` for cluster-scoped objects.
    pub namespace: Option<&'a str>,
}

impl Subject<'_> {
    fn where_(&self) -> String {
        match self.namespace {
            Some(ns) => format!(" in namespace {ns}"),
            None => String::new(),
        }
    }
    fn ns_flag(&self) -> String {
        match self.namespace {
            Some(ns) => format!(" -n {ns}"),
            None => String::new(),
        }
    }

    /// `importtask q4 not found in namespace sales-prod; list them with ...`.
    pub fn not_found(&self) -> Failure {
        Failure::api(format!(
            "{} {} not found{}; list them with kubectl get {}{}",
            self.kind,
            self.name,
            self.where_(),
            self.plural,
            self.ns_flag()
        ))
    }

    /// Turns an API error into a message naming the object and the way out.
    pub fn error(&self, verb: &str, e: kube::Error) -> Failure {
        match e {
            kube::Error::Api(status) => match status.code {
                404 => self.not_found(),
                403 => Failure::api(format!(
                    "forbidden to {verb} {} {}{}: {}. Ask a cluster administrator to bind you to ferry-workspace-admin (or ferry-workspace-viewer to read) in that namespace; check with kubectl auth can-i {verb} {}{}",
                    self.kind,
                    self.name,
                    self.where_(),
                    status.message,
                    self.plural,
                    self.ns_flag()
                )),
                401 => Failure::api(format!(
                    "the API server did not accept your credentials ({}); refresh them or pick another --context",
                    status.message
                )),
                409 => Failure::api(format!(
                    "{} {} already exists{}: {}; choose another name or delete it with kubectl delete {} {}{}",
                    self.kind,
                    self.name,
                    self.where_(),
                    status.message,
                    self.kind,
                    self.name,
                    self.ns_flag()
                )),
                422 | 400 => Failure::usage(format!(
                    "the API server refused {} {}: {}",
                    self.kind, self.name, status.message
                )),
                _ => Failure::api(format!(
                    "could not {verb} {} {}{}: {} ({})",
                    self.kind,
                    self.name,
                    self.where_(),
                    status.message,
                    status.code
                )),
            },
            other => unreachable_server(other),
        }
    }
}

/// A transport error: the API server was not reached.
pub fn unreachable_server(e: kube::Error) -> Failure {
    Failure::api(format!(
        "cannot talk to the API server: {e}; check --kubeconfig and --context (kubectl cluster-info shows the server)"
    ))
}
