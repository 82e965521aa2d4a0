//! Ferry's import engine: given a verified package, the destination
//! workspace and an ImportTask's settings, compute what the import does to
//! every object and in which order. Pure: no Kubernetes I/O, no async, no
//! network, so every rule of the seed is unit-tested here directly.

pub mod naming;
pub mod rename;

pub use ferry_package::ObjectType;
pub use naming::{content_digest, kube_name};
pub use rename::Renamer;
