//! The `hermes` host: everything that is the same for every provider.
//!
//! * [`plugins`] loads provider plugins through the stable ABI, keeps the registry of
//!   providers and aliases, and installs plugins under `HERMES_HOME`.
//! * [`auth`] owns `auth.json`: the credential store, the pool, single-flight refresh across
//!   threads and processes, and quarantine of dead logins.
//! * [`net`] is the network engine: the shared runtime and clients, and the rules every request
//!   follows (https, allow-lists, redirects, timeouts, body caps), for chat, install and serve.
//! * [`services`] implements the services plugins call (HTTP through [`net`], clock,
//!   randomness, logging, configuration).
//! * [`cli`] is one module per command group; [`output`] is the only place that prints.
//! * [`config`] is the only module that reads the environment.
//! * [`serve`] is `hermes serve`: a loopback gateway through which other tools use a hermes
//!   login with the Anthropic or OpenAI API.
//! * [`dashboard`] is `hermes dashboard`: a loopback web page over the same registry, store
//!   and sign-in driver.

pub mod auth;
pub mod catalog;
pub mod chat;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod doctor;
pub mod error;
pub mod fsutil;
pub mod loopback;
pub mod net;
pub mod output;
pub mod plugins;
#[cfg(test)]
mod proptests;
pub mod secret;
pub mod serve;
pub mod services;
pub mod text;
pub mod timefmt;

pub use error::{Error, Result};
