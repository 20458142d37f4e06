//! Plugins: loading through the stable ABI, the provider registry and aliases, and the
//! installed set under `HERMES_HOME/plugins`.

pub mod boundary;
pub mod check;
pub mod confine;
pub mod deadline;
pub mod descriptor;
pub mod index;
pub mod install;
pub mod loader;
pub mod manifest;
pub mod probe;
pub mod registry;
pub mod runtime;
pub mod supervise;

pub use descriptor::{PluginDesc, ProviderDesc};
pub use loader::{LoadError, LoadedPlugin};
pub use registry::Registry;
pub use runtime::{Installed, PluginSet};
