//! PURE. What runs on a host: the only home of remote shell text. Each function returns a
//! script built from [`crate::shell`] values: every value (path, argv, message) is quoted there,
//! as a [`Cmd`](crate::shell::Cmd) argument or a shell variable or function
//! ([`Lines`](crate::shell::Lines)), and the loops, traps and redirections around them are
//! constant text that says why it is there. Two texts are not constants, by design: the
//! inventory's `pre_configure` lines and a one-word `exec` command (the operator's own shell,
//! as ssh runs it). A script nested in another (the probe in the lock script) stays a
//! [`Lines`](crate::shell::Lines) value.
//!
//! No I/O here: nothing is run, uploaded or read. [`crate::observe`] runs the probe,
//! [`crate::executor`] the build and step scripts, [`crate::ops::exec`] the `exec` command,
//! [`crate::lock`] the lock script; they are this module's only callers. It uses values from [`crate::plan`], [`crate::inventory`] and
//! [`crate::flavors`] (markers, steps' argv, build settings) and never calls back up.
//!
//! - [`probe`]: the one read-only probe per host.
//! - [`build`]: building the server from source on a build host, detached, and polling it.
//! - [`exec`]: an ad-hoc command, with a node's environment when run on a node.
//! - [`steps`]: the shell of plan steps (start, stop, restart, promote, waits, removal, fencing).
//! - [`lock`]: the cluster lock, held for as long as a connection.

pub mod build;
pub mod exec;
pub mod lock;
pub mod probe;
pub mod steps;
