//! A write load for the tests that hand a node over under clients: writer threads, one row
//! per psql, and the check that every row whose INSERT returned success is there afterwards.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// What one writer did: the ids whose INSERT returned success, how many failed for good, and
/// how many were sent a second time after a failure.
#[derive(Debug, Default)]
pub struct Written {
    pub committed: Vec<i64>,
    pub failed: usize,
    pub retried: usize,
}

/// Writers, one thread per target, each inserting single rows in autocommit with a new psql
/// per row (so a restarted server only costs reconnecting), until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Written>>,
}

impl Load {
    /// `targets`: (address, port) to write to; `env`: for psql (its libraries). A failed row is
    /// not sent again: the writer goes on with the next one.
    pub fn start(psql: &str, targets: &[(&str, u16)], env: &[(&str, &str)]) -> Load {
        let connections = targets
            .iter()
            .map(|(address, port)| format!("host={address} port={port} user=pgxc dbname=postgres"))
            .collect();
        Load::writers(psql, connections, env, None)
    }

    /// One writer per libpq connection string. `retry`: after a failed INSERT, wait this long
    /// and send the same row once more, as a client riding out a hand-over would (the table
    /// has no key: should the first one have committed unseen, the row is there twice).
    pub fn writers(
        psql: &str,
        connections: Vec<String>,
        env: &[(&str, &str)],
        retry: Option<Duration>,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = connections
            .into_iter()
            .enumerate()
            .map(|(t, connection)| {
                let (psql, stop) = (psql.to_string(), stop.clone());
                let env: Vec<(String, String)> =
                    env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                std::thread::spawn(move || {
                    let insert = |id: i64| {
                        Command::new(&psql)
                            .args(["-X", "-q", "-d", &connection])
                            .args(["-c", &format!("insert into roll values ({id})")])
                            .env("PGCONNECT_TIMEOUT", "3")
                            .envs(env.iter().map(|(k, v)| (k, v)))
                            .output()
                            .expect("run psql")
                            .status
                            .success()
                    };
                    let mut w = Written::default();
                    let mut id = (t as i64 + 1) * 1_000_000;
                    while !stop.load(Ordering::SeqCst) {
                        id += 1;
                        let mut ok = insert(id);
                        if let (false, Some(pause)) = (ok, retry) {
                            w.retried += 1;
                            std::thread::sleep(pause);
                            ok = insert(id);
                        }
                        if ok {
                            w.committed.push(id);
                        } else {
                            w.failed += 1;
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                    w
                })
            })
            .collect();
        Load { stop, threads }
    }

    pub fn finish(self) -> Vec<Written> {
        self.stop.store(true, Ordering::SeqCst);
        self.threads.into_iter().map(|t| t.join().expect("writer")).collect()
    }
}

/// The ids in table `roll`, read with `query` through `read`.
pub fn ids(read: impl Fn(&str) -> String) -> BTreeSet<i64> {
    read("select id from roll").lines().map(|l| l.trim().parse().unwrap()).collect()
}

pub fn assert_committed_rows_present(written: &[Written], present: &BTreeSet<i64>) {
    for (t, w) in written.iter().enumerate() {
        let missing: Vec<_> = w.committed.iter().filter(|id| !present.contains(id)).collect();
        assert!(missing.is_empty(), "writer {t}: committed rows missing: {missing:?}");
        assert!(w.committed.len() > 20, "writer {t} wrote during the roll: {w:?}");
        eprintln!(
            "writer {t}: {} rows committed, {} failed statements, {} sent again",
            w.committed.len(),
            w.failed,
            w.retried
        );
    }
}
