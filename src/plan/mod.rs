//! PURE. What apply should do: desired state (from the inventory, flavor and templates) vs the
//! facts observed on the hosts -> an ordered [`step::Plan`].

pub mod diff;
pub mod state;
pub mod step;
