//! `pgxc-deploy lab up|down|status`: local sshd hosts for trying the tool and for its tests.

use std::io::Write;

use crate::cli::LabCommand;
use crate::lab::{self, Lab, UpOptions};

use super::{Error, Status};

pub async fn run(cmd: LabCommand) -> Result<Status, Error> {
    let mut out = std::io::stdout();
    match cmd {
        LabCommand::Up { hosts, dir, port } => {
            let lab = lab::up(&UpOptions { dir, hosts, port }).await?;
            write!(out, "{}", lab::hosts_table(&lab))?;
            writeln!(
                out,
                "# {} lab hosts up; this table is also in {}",
                lab.hosts.len(),
                lab.dir.join("hosts.toml").display()
            )?;
        }
        LabCommand::Down { dir, purge } => {
            let lab = lab::down(&dir, purge).await?;
            writeln!(out, "{} lab hosts stopped ({})", lab.hosts.len(), dir.display())?;
        }
        LabCommand::Status { dir } => {
            let lab = lab::status(&dir)?;
            print_status(&lab, &mut out)?;
            if lab.hosts.iter().any(|h| !h.running) {
                return Ok(Status::Failed);
            }
        }
    }
    Ok(Status::Ok)
}

fn print_status(lab: &Lab, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "{:<6} {:<20} {:>8}  state", "host", "address", "pid")?;
    for h in &lab.hosts {
        let pid = h.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
        let state = if h.running { "running" } else { "stopped" };
        writeln!(
            out,
            "{:<6} {:<20} {:>8}  {state}",
            h.name,
            format!("{}:{}", h.address, h.port),
            pid
        )?;
    }
    Ok(())
}
