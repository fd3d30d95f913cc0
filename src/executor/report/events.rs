//! `--json` of apply and the operations (docs/json.md): while it is on, every finished step is
//! a JSON object on stdout, what a running step finds worth saying a `note` object, and the
//! command ends with a `summary` object; the lines for people go to stderr instead
//! ([`people`]). Process-wide, like the terminal the lines go to: the command line turns it on
//! once, before any work ([`crate::commands::run`]).

use std::io::{self, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use super::Outcome;
use crate::plan::step::Step;

static ON: AtomicBool = AtomicBool::new(false);
static STEPS: AtomicUsize = AtomicUsize::new(0);
static FAILED: AtomicUsize = AtomicUsize::new(0);
/// The phase the steps that finish belong to (the last [`super::phase_header`]).
static PHASE: Mutex<Option<String>> = Mutex::new(None);

/// Turn JSON events on (for the whole process).
pub fn json_events() {
    ON.store(true, Ordering::SeqCst);
}

fn on() -> bool {
    ON.load(Ordering::SeqCst)
}

/// Where the lines for people go: stdout, or stderr while JSON events own stdout.
pub fn people() -> super::live::Lines {
    super::live::lines(!on())
}

fn emit(value: serde_json::Value) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

pub(super) fn phase(name: &str) {
    if on() {
        *PHASE.lock().unwrap_or_else(|e| e.into_inner()) = Some(name.to_string());
    }
}

/// A finished step: the fields of `plan --json`'s step objects, and how it went.
pub(super) fn step(step: &Step, outcome: &Outcome) {
    if !on() {
        return;
    }
    STEPS.fetch_add(1, Ordering::SeqCst);
    if !outcome.ok() {
        FAILED.fetch_add(1, Ordering::SeqCst);
    }
    let phase = PHASE.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let error = outcome
        .result
        .as_ref()
        .err()
        .map(|e| serde_json::json!({ "step": e.step, "message": e.message() }));
    emit(serde_json::json!({
        "phase": phase,
        "host": step.host,
        "node": step.node.as_ref().map(|n| n.to_string()),
        "action": step.action.kind(),
        "text": step.to_string(),
        "ok": outcome.ok(),
        "elapsed_ms": outcome.elapsed.as_millis() as u64,
        "error": error,
    }));
}

/// What a running step, or the command, found worth saying.
pub(super) fn note(host: Option<&str>, node: Option<&str>, text: &str) {
    if on() {
        emit(serde_json::json!({ "note": { "host": host, "node": node, "text": text } }));
    }
}

/// The last line: the command, its exit status, and its error (the chain of causes, one line).
pub fn json_summary(command: &str, exit_code: u8, error: Option<&str>, elapsed: Duration) {
    if !on() {
        return;
    }
    emit(serde_json::json!({
        "summary": {
            "command": command,
            "ok": exit_code == 0,
            "exit_code": exit_code,
            "error": error,
            "steps": STEPS.load(Ordering::SeqCst),
            "failed_steps": FAILED.load(Ordering::SeqCst),
            "elapsed_ms": elapsed.as_millis() as u64,
        }
    }));
}
