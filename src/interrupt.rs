//! Ctrl-C, handled once for the whole process. The first SIGINT asks every command to start
//! no new work: running steps finish, and the command says what it left undone and ends with
//! status 130. A second SIGINT ends the process at once (130), leaving running remote work to
//! the hosts. [`watch`] is spawned by `main`; everything else only asks [`interrupted`].

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Whether Ctrl-C was pressed: start nothing new.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Wait for SIGINTs for as long as the process runs.
pub async fn watch() {
    let Ok(mut sigint) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
    else {
        return;
    };
    while sigint.recv().await.is_some() {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            eprintln!("interrupted again: stopping now");
            std::process::exit(130);
        }
        eprintln!(
            "interrupted: starting no new steps, letting the running ones finish \
             (Ctrl-C again stops at once)"
        );
    }
}
