//! `pgxc-deploy lab up|down|status`: the hosts table and the lab's state.

use std::io::{self, Write};
use std::path::Path;

use crate::lab::Lab;

/// `lab up`: the hosts table (as written to `DIR/hosts.toml`), then how many hosts are up.
pub fn lab_up(lab: &Lab, out: &mut dyn Write) -> io::Result<()> {
    write!(out, "{}", crate::lab::hosts_table(lab))?;
    writeln!(
        out,
        "# {} lab hosts up; this table is also in {}",
        lab.hosts.len(),
        lab.dir.join("hosts.toml").display()
    )
}

/// `lab down`: how many hosts were stopped, in `dir`.
pub fn lab_down(lab: &Lab, dir: &Path, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "{} lab hosts stopped ({})", lab.hosts.len(), dir.display())
}

/// `lab status`: one row per host, with its sshd's pid and whether it runs.
pub fn lab_status(lab: &Lab, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "{:<6} {:<20} {:>8}  state", "host", "address", "pid")?;
    for h in &lab.hosts {
        let pid = h.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
        let state = if h.running { "running" } else { "stopped" };
        let address = format!("{}:{}", h.address, h.port);
        writeln!(out, "{:<6} {address:<20} {pid:>8}  {state}", h.name)?;
    }
    Ok(())
}

/// `lab status --json`: one object per host, one per line.
pub fn lab_status_json(lab: &Lab, out: &mut dyn Write) -> io::Result<()> {
    for h in &lab.hosts {
        let line = serde_json::json!({
            "host": h.name,
            "address": h.address,
            "port": h.port,
            "pid": h.pid,
            "running": h.running,
        });
        writeln!(out, "{line}")?;
    }
    Ok(())
}
