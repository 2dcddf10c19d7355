//! Network-namespace labs shared by the end-to-end tests and
//! `cargo xtask run`: namespaces that delete themselves, the lab topology,
//! real traffic (echo servers, request loops) on threads inside them, and
//! the demo `cargo xtask run` shows.

pub mod demo;
pub mod lab;
pub mod long_flows;
pub mod netns;
pub mod privileges;
pub mod traffic;
