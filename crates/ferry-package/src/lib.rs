//! Ferry's migration package format. No Kubernetes here: this crate reads,
//! writes and verifies packages; the operator decides what to do with them.
