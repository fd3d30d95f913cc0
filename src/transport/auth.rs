//! Public-key authentication as OpenSSH does it: ssh-agent's keys (unless IdentitiesOnly), then
//! the identity files (the inventory's or the OpenSSH client configuration's, else
//! ~/.ssh/id_ed25519, id_ecdsa and id_rsa). A key that cannot be loaded (encrypted: load it
//! into ssh-agent) is skipped; it is the error when no key could be tried.

use std::path::PathBuf;
use std::sync::Arc;

use russh::client::Handle;
use russh::keys::agent::client::AgentClient;
use russh::keys::{PrivateKeyWithHashAlg, load_secret_key};

use super::{Client, Endpoint, ErrorKind};

pub(super) async fn authenticate(
    handle: &mut Handle<Client>,
    ep: &Endpoint,
    addr: &str,
) -> Result<(), ErrorKind> {
    let ssh = |e| ErrorKind::ssh(addr, e);
    let rsa_hash = handle.best_supported_rsa_hash().await.map_err(ssh)?.flatten();
    let mut tried = Vec::new();

    // As OpenSSH: the agent's keys first (unless IdentitiesOnly names the files to use), then
    // the identity files (the defaults when none is named).
    let only_files = ep.identities_only && !ep.identity_files.is_empty();
    if !only_files
        && std::env::var_os("SSH_AUTH_SOCK").is_some()
        && agent(handle, ep, rsa_hash, &mut tried).await?
    {
        return Ok(());
    }
    let files = match ep.identity_files.is_empty() {
        true => default_identities(),
        false => ep.identity_files.clone(),
    };
    let mut unreadable = None;
    for path in files {
        let key = match load_secret_key(&path, None) {
            Ok(key) => key,
            Err(e) => {
                // An encrypted key (or a missing file) may not be needed: the next key may do.
                tracing::debug!(path = %path.display(), error = %e, "identity not loaded");
                unreadable.get_or_insert(ErrorKind::Identity { path, source: Arc::new(e) });
                continue;
            }
        };
        let key = PrivateKeyWithHashAlg::new(Arc::new(key), rsa_hash);
        let result = handle.authenticate_publickey(&ep.user, key).await.map_err(ssh)?;
        if result.success() {
            return Ok(());
        }
        tried.push(path.display().to_string());
    }
    if let Some(unreadable) = unreadable.filter(|_| tried.is_empty()) {
        return Err(unreadable);
    }
    if tried.is_empty() {
        return Err(ErrorKind::NoIdentity);
    }
    Err(ErrorKind::AuthRefused {
        user: ep.user.clone(),
        addr: addr.to_string(),
        tried: format!("tried {}", tried.join(", ")),
    })
}

/// Try every key the agent holds; `Ok(true)` once one is accepted.
async fn agent(
    handle: &mut Handle<Client>,
    ep: &Endpoint,
    rsa_hash: Option<russh::keys::HashAlg>,
    tried: &mut Vec<String>,
) -> Result<bool, ErrorKind> {
    let agent_err = |e| ErrorKind::Agent { source: Arc::new(e) };
    let mut agent = AgentClient::connect_env().await.map_err(agent_err)?;
    let identities = agent.request_identities().await.map_err(agent_err)?;
    for identity in identities {
        let russh::keys::agent::AgentIdentity::PublicKey { key, comment } = identity else {
            continue;
        };
        let hash = if key.algorithm().is_rsa() { rsa_hash } else { None };
        match handle.authenticate_publickey_with(&ep.user, key, hash, &mut agent).await {
            Ok(result) if result.success() => return Ok(true),
            Ok(_) => tried.push(format!("agent key {comment}")),
            Err(e) => tracing::debug!(error = %e, "agent could not sign"),
        }
    }
    Ok(false)
}

fn default_identities() -> Vec<PathBuf> {
    let Some(home) = std::env::var_os("HOME") else { return Vec::new() };
    let ssh = PathBuf::from(home).join(".ssh");
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .map(|f| ssh.join(f))
        .filter(|p| p.exists())
        .collect()
}
