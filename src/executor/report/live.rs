//! On a terminal, one live line under the step lines, redrawn twice a second: the steps that
//! run, for how long, and for work that can be measured (a build's compiled files, a
//! pg_basebackup's kilobytes, a redistribution's bytes against the rate of the tables moved
//! before it) its share done and an ETA. Elsewhere (a pipe, a file, `--json`, `-v`) nothing of
//! it is printed: the `ok`/`FAIL` lines and the build's stage lines are the progress.
//!
//! Every line for people that goes to stderr while it is on goes through [`stderr`], which
//! clears the live line first (the next tick draws it again under the new line).

use std::io::{self, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Live {
    on: bool,
    /// The live line is on the screen now.
    shown: bool,
    tasks: Vec<Task>,
}

/// A step that runs, as the live line shows it.
#[derive(Clone, Debug)]
pub struct Task {
    id: u64,
    label: String,
    started: Instant,
    /// The share done (0..1), when the work can be measured.
    done: Option<f64>,
    /// How long it should take, when that can be told from work like it.
    expected: Option<Duration>,
}

static LIVE: Mutex<Live> = Mutex::new(Live { on: false, shown: false, tasks: Vec::new() });
static NEXT: AtomicU64 = AtomicU64::new(0);
const TICK: Duration = Duration::from_millis(500);

fn live() -> std::sync::MutexGuard<'static, Live> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Draw the live line from now on when stderr is a terminal (not `dumb`) and nothing else
/// wants it quiet: `quiet` is `-v` (log lines flow) or `--json`.
pub fn live_line(quiet: bool) {
    use std::io::IsTerminal;
    let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
    if quiet || dumb || !io::stderr().is_terminal() {
        return;
    }
    live().on = true;
    std::thread::spawn(|| {
        loop {
            std::thread::sleep(TICK);
            draw();
        }
    });
}

fn draw() {
    let mut live = live();
    if !live.on {
        return;
    }
    let mut err = io::stderr().lock();
    let line = render(&live.tasks, Instant::now(), width());
    let _ = match line {
        Some(line) => write!(err, "\r\x1b[K{line}"),
        None if live.shown => write!(err, "\r\x1b[K"),
        None => return,
    };
    let _ = err.flush();
    live.shown = !live.tasks.is_empty();
}

/// The terminal's width as the shell says it (`COLUMNS`), else 80.
fn width() -> usize {
    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).filter(|w| *w > 20).unwrap_or(80)
}

/// A step that runs from now until the guard is dropped.
pub fn running(label: String) -> Running {
    let id = NEXT.fetch_add(1, Ordering::SeqCst);
    let mut live = live();
    if live.on {
        let started = Instant::now();
        live.tasks.push(Task { id, label, started, done: None, expected: None });
    }
    Running { id }
}

/// See [`running`].
pub struct Running {
    id: u64,
}

impl Running {
    /// The share of its work done (0..1).
    pub fn done(&self, share: f64) {
        if let Some(task) = live().tasks.iter_mut().find(|t| t.id == self.id) {
            task.done = Some(share.clamp(0.0, 1.0));
        }
    }

    /// How long it should take in all.
    pub fn expect(&self, expected: Duration) {
        if let Some(task) = live().tasks.iter_mut().find(|t| t.id == self.id) {
            task.expected = Some(expected);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        live().tasks.retain(|t| t.id != self.id);
    }
}

/// How long the rest takes at the pace so far, once some of it is done.
pub fn eta(elapsed: Duration, share: f64) -> Option<Duration> {
    (share > 0.0 && share < 1.0).then(|| elapsed.mul_f64((1.0 - share) / share))
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}m{:02}s", s / 60, s % 60)
}

/// The live line: the longest-running step with its time, share and ETA, and how many more
/// run; `None` when nothing runs. Cut to `width` columns.
pub fn render(tasks: &[Task], now: Instant, width: usize) -> Option<String> {
    let first = tasks.iter().min_by_key(|t| t.started)?;
    let elapsed = now.saturating_duration_since(first.started);
    let mut line = format!("  ..    {} ({}", first.label, clock(elapsed));
    let expected = first.expected.filter(|e| !e.is_zero());
    let share =
        first.done.or(expected.map(|e| (elapsed.as_secs_f64() / e.as_secs_f64()).min(0.99)));
    if let Some(share) = share {
        line.push_str(&format!(", {:.0}%", share * 100.0));
        if let Some(eta) = eta(elapsed, share) {
            line.push_str(&format!(", ETA {}", clock(eta)));
        }
    }
    line.push(')');
    if tasks.len() > 1 {
        line.push_str(&format!(" and {} more running", tasks.len() - 1));
    }
    if line.chars().count() >= width {
        line = line.chars().take(width - 2).collect::<String>() + "…";
    }
    Some(line)
}

/// Where the lines for people on stderr go (a [`Lines`]).
pub fn stderr() -> Lines {
    lines(false)
}

/// Lines for people to stdout (`stdout`) or stderr: whole lines, each written after clearing
/// the live line (a line's pieces are kept until its newline, so that a tick cannot come
/// between them).
pub fn lines(stdout: bool) -> Lines {
    Lines { pending: Vec::new(), stdout }
}

/// Lines for people to stdout or stderr, each whole line written after clearing the live line.
pub struct Lines {
    pending: Vec<u8>,
    stdout: bool,
}

impl Lines {
    fn put(&mut self, upto: usize) -> io::Result<()> {
        let mut live = live();
        let mut err = io::stderr().lock();
        if live.shown {
            err.write_all(b"\r\x1b[K")?;
            err.flush()?;
            live.shown = false;
        }
        if self.stdout {
            let mut out = io::stdout().lock();
            out.write_all(&self.pending[..upto])?;
            out.flush()?;
        } else {
            err.write_all(&self.pending[..upto])?;
            err.flush()?;
        }
        self.pending.drain(..upto);
        Ok(())
    }
}

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if let Some(last) = self.pending.iter().rposition(|b| *b == b'\n') {
            self.put(last + 1)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.put(self.pending.len())
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let _ = self.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(label: &str, started: Instant, done: Option<f64>) -> Task {
        Task { id: 0, label: label.into(), started, done, expected: None }
    }

    #[test]
    fn the_eta_is_the_rest_at_the_pace_so_far() {
        assert_eq!(eta(Duration::from_secs(30), 0.25), Some(Duration::from_secs(90)));
        assert_eq!(eta(Duration::from_secs(30), 0.0), None);
        assert_eq!(eta(Duration::from_secs(30), 1.0), None);
    }

    #[test]
    fn the_line_shows_the_longest_running_step_its_share_and_eta() {
        let now = Instant::now();
        let t0 = now - Duration::from_secs(75);
        let t1 = now - Duration::from_secs(5);
        assert_eq!(render(&[], now, 80), None);
        let build = task("h1: build", t0, Some(0.75));
        let start = task("dn1 on h2: start", t1, None);
        assert_eq!(
            render(&[start.clone(), build.clone()], now, 80).unwrap(),
            "  ..    h1: build (1m15s, 75%, ETA 0m25s) and 1 more running"
        );
        assert_eq!(render(&[start], now, 80).unwrap(), "  ..    dn1 on h2: start (0m05s)");
        let mut moving = task("coord1 on h1: redistribute public.t", t1, None);
        moving.expected = Some(Duration::from_secs(20));
        assert_eq!(
            render(&[moving], now, 80).unwrap(),
            "  ..    coord1 on h1: redistribute public.t (0m05s, 25%, ETA 0m15s)"
        );
        let cut = render(&[build], now, 24).unwrap();
        assert_eq!(cut, "  ..    h1: build (1m1…");
        assert_eq!(cut.chars().count(), 23);
    }
}
