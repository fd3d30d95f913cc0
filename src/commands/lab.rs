//! `pgxc-deploy lab up|down|status`: local sshd hosts for trying the tool and for its tests.

use crate::cli::LabCommand;
use crate::executor::report;
use crate::lab::{self, UpOptions};

use super::{Error, Status};

pub async fn run(cmd: LabCommand) -> Result<Status, Error> {
    let mut out = std::io::stdout();
    match cmd {
        LabCommand::Up { hosts, dir, port, netns } => {
            let lab = lab::up(&UpOptions { dir, hosts, port, netns }).await?;
            report::lab_up(&lab, &mut out)?;
        }
        LabCommand::Down { dir, purge } => {
            let lab = lab::down(&dir, purge).await?;
            report::lab_down(&lab, &dir, &mut out)?;
        }
        LabCommand::Status { dir, json } => {
            let lab = lab::status(&dir)?;
            match json {
                true => report::lab_status_json(&lab, &mut out)?,
                false => report::lab_status(&lab, &mut out)?,
            }
            if lab.hosts.iter().any(|h| !h.running) {
                return Ok(Status::Failed);
            }
        }
    }
    Ok(Status::Ok)
}
