//! The network step of starting a container, as a pluggable stage.
//!
//! A container's network mode decides two things: which network namespace
//! the OCI bundle asks runc for (a new one, the host's, or another
//! container's), and what is done to that namespace between `runc create`
//! and `runc start` — nothing for the modes here (`none` leaves only `lo`,
//! which runc brings up), and a veth and an address for the bridge and user
//! networks that the next control issue adds as another [`NetworkStage`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `--network` values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetworkMode {
    /// Its own namespace with only `lo`.
    None,
    /// The host's namespace.
    Host,
    /// Another container's namespace, by the reference given.
    Container(String),
}

impl NetworkMode {
    /// Parses `--network`.
    pub fn parse(value: &str) -> Result<NetworkMode, String> {
        match value {
            "none" => Ok(NetworkMode::None),
            "host" => Ok(NetworkMode::Host),
            _ => match value.strip_prefix("container:") {
                Some("") => Err("--network container: needs a container name or id".into()),
                Some(reference) => Ok(NetworkMode::Container(reference.to_string())),
                None => {
                    Err(format!("network {value} not found: this wharf has the modes none, host and container:NAME"))
                }
            },
        }
    }

    /// Docker's HostConfig.NetworkMode string.
    pub fn docker_word(&self) -> String {
        match self {
            NetworkMode::None => "none".into(),
            NetworkMode::Host => "host".into(),
            NetworkMode::Container(reference) => format!("container:{reference}"),
        }
    }
}

/// Which network namespace the bundle asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Namespace {
    /// A new namespace.
    New,
    /// The host's: no network namespace entry at all.
    Host,
    /// Join the namespace at this path (`/proc/PID/ns/net`).
    Join(PathBuf),
}

/// One network mode's part in starting and stopping a container.
pub trait NetworkStage {
    /// The namespace for the bundle.
    fn namespace(&self) -> Namespace;
    /// Wires the created (not yet started) container whose init process is
    /// `pid` into its network.
    fn attach(&self, pid: u32) -> Result<(), String>;
    /// Undoes [`attach`](NetworkStage::attach) after the container stopped;
    /// what is already gone counts as done.
    fn detach(&self) -> Result<(), String>;
}

/// The stage for `none`, `host` and `container:` (resolved to a pid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceOnly(pub Namespace);

impl NetworkStage for NamespaceOnly {
    fn namespace(&self) -> Namespace {
        self.0.clone()
    }

    fn attach(&self, _pid: u32) -> Result<(), String> {
        Ok(())
    }

    fn detach(&self) -> Result<(), String> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_flags_parse_like_dockers() {
        assert_eq!(NetworkMode::parse("none"), Ok(NetworkMode::None));
        assert_eq!(NetworkMode::parse("host"), Ok(NetworkMode::Host));
        assert_eq!(NetworkMode::parse("container:web"), Ok(NetworkMode::Container("web".into())));
        assert!(NetworkMode::parse("container:").is_err());
        assert!(NetworkMode::parse("bridge").unwrap_err().contains("network bridge not found"));
        assert_eq!(NetworkMode::Container("web".into()).docker_word(), "container:web");
    }
}
