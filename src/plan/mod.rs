//! PURE. What should change: desired state vs observed facts.

pub mod state;
