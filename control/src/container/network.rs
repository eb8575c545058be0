//! The network step of starting a container, as a pluggable stage.
//!
//! A container's network mode decides two things: which network namespace
//! the OCI bundle asks runc for (a new one, the host's, or another
//! container's), and what is done to that namespace between `runc create`
//! and `runc start` — nothing for `none` (only `lo`, which runc brings up),
//! `host` and `container:`; a veth and an address on each of its networks
//! for the bridge mode ([`crate::network::stage::BridgeStage`]).

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
    /// Its own namespace, on wharf bridge networks: the default `bridge` or
    /// a user network by name (the container's `networks` say which).
    Bridge(String),
}

impl NetworkMode {
    /// Parses `--network`.
    pub fn parse(value: &str) -> Result<NetworkMode, String> {
        match value {
            "none" => Ok(NetworkMode::None),
            "host" => Ok(NetworkMode::Host),
            "" => Err("--network needs a value: none, host, bridge, container:NAME or a network's name".into()),
            "default" => Ok(NetworkMode::Bridge("bridge".into())),
            _ => match value.strip_prefix("container:") {
                Some("") => Err("--network container: needs a container name or id".into()),
                Some(reference) => Ok(NetworkMode::Container(reference.to_string())),
                None => Ok(NetworkMode::Bridge(value.to_string())),
            },
        }
    }

    /// Docker's HostConfig.NetworkMode string.
    pub fn docker_word(&self) -> String {
        match self {
            NetworkMode::None => "none".into(),
            NetworkMode::Host => "host".into(),
            NetworkMode::Container(reference) => format!("container:{reference}"),
            NetworkMode::Bridge(name) => name.clone(),
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
        assert_eq!(NetworkMode::parse("bridge"), Ok(NetworkMode::Bridge("bridge".into())));
        assert_eq!(NetworkMode::parse("default"), Ok(NetworkMode::Bridge("bridge".into())));
        assert_eq!(NetworkMode::parse("my_net"), Ok(NetworkMode::Bridge("my_net".into())));
        assert!(NetworkMode::parse("").is_err());
        assert_eq!(NetworkMode::Container("web".into()).docker_word(), "container:web");
    }
}
