//! Test support for hermes: the MiniMax emulator that the end-to-end tests and the README demo
//! run against.

pub mod bench;
pub mod emulator;
pub mod gateway_bench;
