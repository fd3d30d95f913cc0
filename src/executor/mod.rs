//! Runs one piece of work per target, at most `forks` at once, and collects one [`Outcome`] per
//! target, in target order. A failing target never stops or hides the others. After Ctrl-C no new
//! work starts; work already running finishes and reports.

pub mod report;
pub mod steps;

use std::future::Future;
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::transport::Output;

/// One unit of work: a host, or a node on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The inventory's host name.
    pub host: String,
    /// The node, when the work is per node.
    pub node: Option<String>,
}

impl Target {
    /// How reports name the target: `dn1` or `db2`.
    pub fn label(&self) -> &str {
        self.node.as_deref().unwrap_or(&self.host)
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.node {
            Some(node) => write!(f, "{node} on {}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

/// A step's failure on one target (the [`Outcome`] names the target): which step, and why, as
/// a value. [`StepError::message`] renders the why: the cause and its sources on one line, then
/// the hint.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{step}")]
pub struct StepError {
    pub step: String,
    #[source]
    pub cause: Cause,
    /// What to do or look at next, when the executor knows (a server's log).
    pub hint: Option<String>,
}

/// Why a step failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Cause {
    /// The SSH layer: connecting, running or uploading (boxed: it is large, and rare).
    #[error(transparent)]
    Transport(Box<crate::transport::Error>),
    /// The remote command ended unsuccessfully: how, and the end of what it printed.
    #[error("{status}: {tail}")]
    Exit { status: crate::transport::ExitStatus, tail: String },
    /// Ctrl-C came before the step started.
    #[error("not started: interrupted")]
    Interrupted,
    /// What pgxc-deploy itself found wrong: output it cannot read, a state it refuses.
    #[error("{0}")]
    Found(String),
}

impl From<crate::transport::Error> for Cause {
    fn from(err: crate::transport::Error) -> Cause {
        Cause::Transport(Box::new(err))
    }
}

impl Cause {
    /// `err` and its sources, rendered (for errors of this process: a parse, a local read).
    pub fn found(err: &(dyn std::error::Error + 'static)) -> Cause {
        Cause::Found(crate::errors::chain(err))
    }
}

impl StepError {
    pub fn new(step: impl Into<String>, cause: impl Into<Cause>) -> StepError {
        StepError { step: step.into(), cause: cause.into(), hint: None }
    }

    /// A failure pgxc-deploy found itself, said in `text`.
    pub fn found(step: impl Into<String>, text: impl Into<String>) -> StepError {
        StepError::new(step, Cause::Found(text.into()))
    }

    /// With `hint` (what to do or look at next) after the cause.
    pub fn hinted(mut self, hint: impl Into<String>) -> StepError {
        self.hint = Some(hint.into());
        self
    }

    /// Why, as users read it: the cause and its sources, then the hint on a line of its own.
    pub fn message(&self) -> String {
        let cause = crate::errors::chain(&self.cause);
        match &self.hint {
            Some(hint) => format!("{cause}\n  {hint}"),
            None => cause,
        }
    }

    /// Whether the host could not be reached or the connection broke (not a command that ran
    /// and failed).
    pub fn is_transport(&self) -> bool {
        matches!(self.cause, Cause::Transport(_))
    }
}

/// What happened on one target.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub target: Target,
    pub result: Result<Output, StepError>,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        matches!(&self.result, Ok(out) if out.status.success())
    }
}

/// Run `work` for every target, at most `forks` at once. Outcomes come back in target order.
pub async fn run_all<F, Fut>(targets: Vec<Target>, forks: usize, work: F) -> Vec<Outcome>
where
    F: Fn(Target) -> Fut,
    Fut: Future<Output = Result<Output, StepError>>,
{
    let items = targets.into_iter().map(|t| (t, ())).collect();
    run_items(items, forks, |t, ()| work(t)).await
}

/// Like [`run_all`], with a value of its own for each target (a plan step, say).
pub async fn run_items<T, F, Fut>(items: Vec<(Target, T)>, forks: usize, work: F) -> Vec<Outcome>
where
    F: Fn(Target, T) -> Fut,
    Fut: Future<Output = Result<Output, StepError>>,
{
    let work = &work;
    futures::stream::iter(items)
        .map(|(target, item)| async move {
            let start = Instant::now();
            let result = if crate::interrupt::interrupted() {
                Err(StepError::new("start", Cause::Interrupted))
            } else {
                work(target.clone(), item).await
            };
            Outcome { target, result, elapsed: start.elapsed() }
        })
        .buffered(forks.max(1))
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::ExitStatus;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn target(host: &str) -> Target {
        Target { host: host.into(), node: None }
    }

    #[tokio::test]
    async fn keeps_order_limits_concurrency_and_isolates_failures() {
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let targets: Vec<_> = (0..20).map(|i| target(&format!("h{i}"))).collect();
        let outcomes = run_all(targets, 4, |t| {
            let (running, peak) = (&running, &peak);
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                if t.host == "h3" {
                    return Err(StepError::found("connect", "refused"));
                }
                let status = ExitStatus::Code(0);
                Ok(Output { stdout: t.host.into_bytes(), stderr: vec![], status })
            }
        })
        .await;
        assert_eq!(outcomes.len(), 20);
        assert_eq!(peak.load(Ordering::SeqCst), 4);
        for (i, o) in outcomes.iter().enumerate() {
            assert_eq!(o.target.host, format!("h{i}"));
            assert_eq!(o.ok(), i != 3);
        }
    }

    #[test]
    fn a_step_error_keeps_its_cause_and_renders_it_with_its_hint_only_when_printed() {
        use crate::transport::{Error, ErrorKind};
        let timeout = std::time::Duration::from_secs(3);
        let lost = Error {
            host: "h1".into(),
            kind: ErrorKind::ConnectTimeout { addr: "127.0.10.1:22".into(), timeout },
        };
        let e = StepError::new("start", lost).hinted("see the server's log on the host: x.log");
        assert!(e.is_transport());
        assert_eq!(
            e.message(),
            "h1: no answer from 127.0.10.1:22 within 3s (is sshd there and responsive? see \
             --connect-timeout)\n  see the server's log on the host: x.log"
        );
        let exit = Cause::Exit { status: ExitStatus::Code(1), tail: "no such file".into() };
        let e = StepError::new("check", exit);
        assert!(!e.is_transport());
        assert_eq!(e.message(), "exit 1: no such file");
        assert_eq!(crate::errors::chain(&e), "check: exit 1: no such file");
    }
}
