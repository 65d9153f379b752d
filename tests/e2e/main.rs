//! End-to-end tests: the real `carport` binary, driven by rmcp's MCP client over stdio (and
//! streamable HTTP), running the real plugin components against the simulator on loopback.
//!
//! The components come from `cargo xtask components` (the README's test command builds them).

mod catalogue;
mod compact;
mod conformance;
mod dimo;
mod drop_in;
mod harness;
mod mcp_features;
mod sandbox;
mod server;
mod sign_in;
mod smartcar;
mod structured;
mod tesla;
mod tesla_signed;
mod teslamate;
mod tessie;
