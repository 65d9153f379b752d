//! carport: an MCP server whose vehicle providers run as sandboxed Wasm components.
//!
//! Data flows one way: [`mcp`] receives a tool call, [`runtime`] validates it against the tool's
//! schema and runs the plugin under its limits, the plugin reaches the world only through
//! [`capabilities`], and the result travels back the same way.

pub mod capabilities;
pub mod config;
pub mod demo;
pub mod drop_in;
pub mod keys;
pub mod login;
pub mod mcp;
pub mod runtime;

/// The simulator of the vendors' APIs, a crate of its own linked into the one binary.
pub use carport_simulator as simulator;
