//! A container's root filesystem: an overlay whose lower layer is the image
//! (never written) and whose upper layer is the container's own, mounted at
//! `containers/ID/rootfs` while the container runs. The mount system calls
//! sit behind [`Mounter`]: [`Kernel`] does them, [`Recording`] writes them
//! down for unit tests.

use std::cell::RefCell;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// The directories of one container's overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlay {
    pub lower: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
}

impl Overlay {
    /// The layout under a container's directory, over `image` (the image's rootfs).
    pub fn for_container(container_dir: &Path, image: &Path) -> Overlay {
        Overlay {
            lower: image.to_path_buf(),
            upper: container_dir.join("upper"),
            work: container_dir.join("work"),
            merged: container_dir.join("rootfs"),
        }
    }
}

/// Mounts and unmounts.
pub trait Mounter {
    /// Mounts `overlay` (creating its upper, work and merged directories).
    fn mount_overlay(&self, overlay: &Overlay) -> io::Result<()>;
    /// Unmounts `target` (lazily); not mounted counts as done.
    fn unmount(&self, target: &Path) -> io::Result<()>;
}

/// The kernel's mount(2).
#[derive(Debug, Clone, Copy, Default)]
pub struct Kernel;

impl Mounter for Kernel {
    fn mount_overlay(&self, overlay: &Overlay) -> io::Result<()> {
        for dir in [&overlay.upper, &overlay.work, &overlay.merged] {
            fs::create_dir_all(dir).map_err(|e| io::Error::new(e.kind(), format!("create {}: {e}", dir.display())))?;
        }
        if is_mounted(&overlay.merged) {
            return Ok(());
        }
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            overlay.lower.display(),
            overlay.upper.display(),
            overlay.work.display()
        );
        mount(Some("overlay"), &overlay.merged, Some("overlay"), MsFlags::empty(), Some(options.as_str())).map_err(
            |e| {
                io::Error::other(format!(
                    "mount the overlay root filesystem at {} (is WHARF_ROOT on a file system overlayfs accepts as \
                     upper layer, such as ext4 or xfs?): {e}",
                    overlay.merged.display()
                ))
            },
        )
    }

    fn unmount(&self, target: &Path) -> io::Result<()> {
        match umount2(target, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
            Err(e) => Err(io::Error::other(format!("unmount {}: {e}", target.display()))),
        }
    }
}

/// Whether something is mounted exactly at `path` (per /proc/self/mountinfo).
pub fn is_mounted(path: &Path) -> bool {
    mounts_under(path).iter().any(|p| p == path)
}

/// Every mount point at or below `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else { return Vec::new() };
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|point| point.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape_mountinfo(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b)) {
            out.push((bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(out))
}

/// A mounter that writes down what it was asked, for unit tests.
#[derive(Debug, Default)]
pub struct Recording {
    pub calls: RefCell<Vec<String>>,
    pub fail_mount: bool,
}

impl Mounter for Recording {
    fn mount_overlay(&self, overlay: &Overlay) -> io::Result<()> {
        self.calls.borrow_mut().push(format!("mount {}", overlay.merged.display()));
        if self.fail_mount {
            return Err(io::Error::other("mount failed as the test asked"));
        }
        Ok(())
    }

    fn unmount(&self, target: &Path) -> io::Result<()> {
        self.calls.borrow_mut().push(format!("unmount {}", target.display()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_mountinfo(r"/a\040b"), PathBuf::from("/a b"));
        assert_eq!(unescape_mountinfo(r"/plain"), PathBuf::from("/plain"));
        assert_eq!(unescape_mountinfo(r"/x\04"), PathBuf::from(r"/x\04"));
    }

    #[test]
    fn the_overlay_lives_in_the_container_directory() {
        let overlay = Overlay::for_container(Path::new("/w/containers/c"), Path::new("/w/images/busybox/rootfs"));
        assert_eq!(overlay.merged, PathBuf::from("/w/containers/c/rootfs"));
        assert_eq!(overlay.upper, PathBuf::from("/w/containers/c/upper"));
        assert_eq!(overlay.lower, PathBuf::from("/w/images/busybox/rootfs"));
    }

    #[test]
    fn proc_is_a_mount_point_and_unmounting_nothing_is_fine() {
        assert!(is_mounted(Path::new("/proc")));
        assert!(!is_mounted(Path::new("/proc/self")));
        let missing = std::env::temp_dir().join("wharf-not-a-mount-point");
        assert!(Kernel.unmount(&missing).is_ok());
    }
}
