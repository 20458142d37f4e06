//! End-to-end tests: the real `hermes` binary, the real plugin libraries loaded through the
//! real loader, and (from the auth tests on) real HTTP to the MiniMax emulator on 127.0.0.1.
//!
//! Run `cargo build --workspace` first: these tests use the binaries and plugin libraries it
//! leaves in the target directory.

mod support;

mod accounts;
mod apikey;
mod auth;
mod authors;
mod chat;
mod compat;
mod dashboard;
mod dialects;
mod getting_started;
mod hostile;
mod integrity;
mod leaks;
mod plugins;
mod race;
mod refresh;
mod security;
mod serve;
mod store;
mod terminal;
