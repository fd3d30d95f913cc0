//! The inventory: which hosts make up a cluster and which nodes run where.
//!
//! Pure. [`model`] holds the validated types the rest of the tool codes against.

mod model;

pub use model::*;
