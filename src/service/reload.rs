//! Re-reading the config file (SIGHUP, `exports.reload`): new client rules
//! apply to the next request, connections from addresses no export admits
//! any more are closed, and their locks released (they could never unlock).

use serde::Serialize;

use super::ServerState;
use crate::config::Config;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReloadReport {
    pub reloaded: Vec<String>,
    /// Exports new in the file: they need a restart to be served.
    pub needs_restart: Vec<String>,
    pub closed_connections: usize,
    pub clients_unlocked: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("zero-config mode: there is no config file to reload")]
    NoConfigFile,
    #[error("reloading the config; the running rules are unchanged")]
    Config(#[source] crate::config::ConfigError),
}

impl ServerState {
    pub fn reload(&self) -> Result<ReloadReport, ReloadError> {
        let path = self.config_path.as_ref().ok_or(ReloadError::NoConfigFile)?;
        let cfg = Config::load(path).map_err(ReloadError::Config)?;
        let mut reloaded = Vec::new();
        let mut needs_restart = Vec::new();
        for e in &cfg.exports {
            match self.exports.by_name(&e.name) {
                Some(live) => {
                    *live.policy.write().unwrap_or_else(|p| p.into_inner()) = e.policy.clone();
                    reloaded.push(e.name.clone());
                }
                None => needs_restart.push(e.name.clone()),
            }
        }
        for name in &needs_restart {
            tracing::warn!(export = %name, "new export in the config: restart volnfs to serve it");
        }
        let closed_connections = self.clients.close_unless(|ip| self.exports.admits(ip));
        let clients_unlocked = self
            .nlm
            .as_ref()
            .map(|n| n.release_unless(|ip| self.exports.admits(ip)))
            .unwrap_or(0);
        tracing::info!(exports = ?reloaded, closed_connections, clients_unlocked, "export rules reloaded");
        Ok(ReloadReport {
            reloaded,
            needs_restart,
            closed_connections,
            clients_unlocked,
        })
    }
}
