//! `wharf run`'s value parsers: `-v` SPECs, `--volumes-from`, byte sizes,
//! the resource flags together, `--network`, a record's RFC 3339 times
//! (which print back to themselves), and the chroot-style path
//! resolution of a mount target. Fields are NUL-separated. Nothing may
//! panic; a parsed volume target is absolute and free of `..`; a resolved
//! target never leaves the root.
#![no_main]

use std::path::{Component, Path};

use control::container::network::NetworkMode;
use control::container::resources::{parse_bytes, ResourceFlags, Resources};
use control::volume::{parse_volumes_from, secure_join, VolumeSpec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let fields: Vec<&str> = text.split('\0').collect();
    let field = |i: usize| fields.get(i).copied();
    if let Ok(spec) = VolumeSpec::parse(fields[0]) {
        let target = spec.target();
        assert!(target.is_absolute(), "{target:?}");
        assert!(!target.components().any(|c| c == Component::ParentDir), "{target:?}");
        // A root that does not exist: resolution stays lexical, and inside.
        let root = Path::new("/nonexistent-wharf-fuzz-root");
        if let Ok(resolved) = secure_join(root, target) {
            assert!(resolved.starts_with(root), "{resolved:?}");
        }
    }
    // A record's timestamps: what parses prints back to the same time.
    if let Some(time) = control::state::parse_rfc3339(fields[0]) {
        assert_eq!(control::state::parse_rfc3339(&control::state::rfc3339(time)), Some(time), "{:?}", fields[0]);
    }
    let _ = parse_volumes_from(fields[0]);
    let _ = parse_bytes(fields[0]);
    let _ = NetworkMode::parse(fields[0]);
    let flags = ResourceFlags {
        memory: field(0),
        memory_swap: field(1),
        cpus: field(2),
        cpu_shares: field(3).and_then(|v| v.parse().ok()),
        pids_limit: field(4).and_then(|v| v.parse().ok()),
    };
    if let Ok(resources) = Resources::from_flags(&flags, 2) {
        assert!(resources.memory_swap == -1 || resources.memory_swap == 0 || resources.memory_swap >= resources.memory);
        let _ = resources.oci();
    }
});
