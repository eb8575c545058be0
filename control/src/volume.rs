//! Volumes: the `-v` and `--volumes-from` specifications (Docker's forms),
//! managed volumes under `WHARF_ROOT/volumes/NAME/{_data,volume.json}`,
//! Docker's copy-up of an image's content into a fresh volume, and
//! [`secure_join`], which resolves a path inside a root filesystem the way
//! the kernel would inside a chroot.
//!
//! It does not mount anything, and does not know which containers use a
//! volume: the caller checks that before [`VolumeStore::remove`], and holds
//! the state lock throughout. A volume is created in a staging directory and
//! renamed into place; copy-up fills a staging directory and renames it over
//! the empty `_data`; removal renames the volume out of sight first. So a
//! crash leaves a volume whole or absent, and only leftovers that
//! [`VolumeStore::reconcile`] removes.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{lchown, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use serde::{Deserialize, Serialize};

use crate::image::{record_names, remove_leftovers, rename_noreplace};
use crate::state::{self, Root};

/// One `-v` value, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VolumeSpec {
    /// `/host:/ctr[:ro|:rw]`.
    Bind { source: PathBuf, target: PathBuf, read_only: bool },
    /// `name:/ctr[:ro|:rw]`.
    Named { name: String, target: PathBuf, read_only: bool },
    /// `/ctr`: a new anonymous volume.
    Anonymous { target: PathBuf },
}

impl VolumeSpec {
    /// Parses a `-v` value as Docker does on Linux: `SOURCE:TARGET[:MODE]`
    /// or `TARGET`. SOURCE is an absolute host path (bind) or a volume name;
    /// TARGET is absolute, not `/`, without `..` (it is returned cleaned of
    /// `.`, repeated and trailing slashes); MODE is `ro` or `rw`.
    pub fn parse(spec: &str) -> Result<VolumeSpec, VolumeError> {
        let invalid = || VolumeError::InvalidSpec(spec.to_string());
        let parts: Vec<&str> = spec.split(':').collect();
        let (source, target, mode) = match parts[..] {
            [target] => (None, target, None),
            // "/ctr:ro" would be a mode on an anonymous volume: Docker refuses it.
            [_, mode] if mode == "ro" || mode == "rw" => return Err(invalid()),
            [source, target] => (Some(source), target, None),
            [source, target, mode] => (Some(source), target, Some(mode)),
            _ => return Err(invalid()),
        };
        let target = clean_target(target).ok_or_else(invalid)?;
        let read_only = match mode {
            None | Some("rw") => false,
            Some("ro") => true,
            Some(_) => return Err(invalid()),
        };
        match source {
            None => Ok(VolumeSpec::Anonymous { target }),
            Some(source) if source.starts_with('/') => {
                Ok(VolumeSpec::Bind { source: PathBuf::from(source), target, read_only })
            }
            Some(name) if valid_volume_name(name) => {
                Ok(VolumeSpec::Named { name: name.to_string(), target, read_only })
            }
            Some(_) => Err(invalid()),
        }
    }

    /// Where it is mounted inside the container.
    pub fn target(&self) -> &Path {
        match self {
            VolumeSpec::Bind { target, .. } | VolumeSpec::Named { target, .. } | VolumeSpec::Anonymous { target } => {
                target
            }
        }
    }

    /// Whether the mount is read-only (`:ro`).
    pub fn read_only(&self) -> bool {
        match self {
            VolumeSpec::Bind { read_only, .. } | VolumeSpec::Named { read_only, .. } => *read_only,
            VolumeSpec::Anonymous { .. } => false,
        }
    }
}

/// An absolute container path, cleaned; None if it is relative, `/`, or has `..`.
fn clean_target(target: &str) -> Option<PathBuf> {
    let path = Path::new(target);
    if !path.is_absolute() {
        return None;
    }
    let mut clean = PathBuf::from("/");
    for part in path.components() {
        match part {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => clean.push(part),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    (clean != Path::new("/")).then_some(clean)
}

/// Parses a `--volumes-from` value, `CONTAINER[:ro|:rw]`: the container, and
/// the mode that overrides each mount's own (None: keep theirs).
pub fn parse_volumes_from(spec: &str) -> Result<(String, Option<bool>), VolumeError> {
    let invalid = || VolumeError::InvalidSpec(spec.to_string());
    let (container, read_only) = match spec.split_once(':') {
        None => (spec, None),
        Some((container, "ro")) => (container, Some(true)),
        Some((container, "rw")) => (container, Some(false)),
        Some(_) => return Err(invalid()),
    };
    // Container names and ids both match the volume-name pattern.
    if !valid_volume_name(container) {
        return Err(invalid());
    }
    Ok((container.to_string(), read_only))
}

/// The longest volume name accepted.
const MAX_NAME: usize = 128;

/// Whether `name` is a valid volume name: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`
/// (at most 128 characters).
pub fn valid_volume_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= MAX_NAME
        && bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// A managed volume, as recorded in `volumes/NAME/volume.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    /// RFC 3339 time of creation.
    pub created: String,
    /// Made for a `-v /ctr` (removed with its container by `rm -v` / `--rm`).
    pub anonymous: bool,
    /// Copy-up has been decided (done, or not needed): never copy again.
    #[serde(default)]
    pub initialized: bool,
}

/// What can go wrong with volumes.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("invalid volume specification: \"{0}\"")]
    InvalidSpec(String),
    #[error(
        "\"{0}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    )]
    InvalidName(String),
    #[error("no such volume: {0}")]
    NotFound(String),
    #[error("volume {0} already exists")]
    Exists(String),
    #[error("{0}")]
    Io(String),
}

fn io_error(what: &str, path: &Path, e: io::Error) -> VolumeError {
    VolumeError::Io(format!("{what} {}: {e}", path.display()))
}

/// The volumes under `WHARF_ROOT/volumes`.
#[derive(Debug, Clone)]
pub struct VolumeStore {
    dir: PathBuf,
}

impl VolumeStore {
    pub fn new(root: &Root) -> VolumeStore {
        VolumeStore { dir: root.volumes() }
    }

    /// Creates volume NAME (None: an anonymous-style random 64-hex name);
    /// Exists if it is there.
    pub fn create(&self, name: Option<&str>, anonymous: bool) -> Result<Volume, VolumeError> {
        let name = match name {
            Some(name) if valid_volume_name(name) => name.to_string(),
            Some(name) => return Err(VolumeError::InvalidName(name.to_string())),
            None => random()?,
        };
        let dir = self.dir.join(&name);
        if dir.symlink_metadata().is_ok() {
            return Err(VolumeError::Exists(name));
        }
        fs::create_dir_all(&self.dir).map_err(|e| io_error("create", &self.dir, e))?;
        let staging = self.dir.join(format!(".{name}.partial-{}", &random()?[..16]));
        let volume = Volume { name: name.clone(), created: state::now_rfc3339(), anonymous, initialized: false };
        let result = (|| {
            let data = staging.join("_data");
            fs::create_dir(&staging).map_err(|e| io_error("create", &staging, e))?;
            fs::create_dir(&data).map_err(|e| io_error("create", &data, e))?;
            fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).map_err(|e| io_error("chmod", &data, e))?;
            state::write_json(&staging.join("volume.json"), &volume).map_err(|e| VolumeError::Io(e.to_string()))?;
            rename_noreplace(&staging, &dir).map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists | io::ErrorKind::DirectoryNotEmpty => VolumeError::Exists(name.clone()),
                _ => io_error("rename to", &dir, e),
            })
        })();
        if let Err(e) = result {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
        Ok(volume)
    }

    /// Returns volume NAME, creating it (not anonymous) if it is missing.
    pub fn get_or_create(&self, name: &str) -> Result<Volume, VolumeError> {
        match self.get(name) {
            Err(VolumeError::NotFound(_)) => self.create(Some(name), false),
            other => other,
        }
    }

    pub fn get(&self, name: &str) -> Result<Volume, VolumeError> {
        if !valid_volume_name(name) {
            return Err(VolumeError::InvalidName(name.to_string()));
        }
        let dir = self.dir.join(name);
        if dir.symlink_metadata().is_err() {
            return Err(VolumeError::NotFound(name.to_string()));
        }
        state::read_json(&dir.join("volume.json")).map_err(|e| VolumeError::Io(e.to_string()))
    }

    /// Every volume, sorted by name.
    pub fn list(&self) -> Result<Vec<Volume>, VolumeError> {
        let names = record_names(&self.dir).map_err(|e| io_error("read", &self.dir, e))?;
        names.iter().map(|name| self.get(name)).collect()
    }

    /// `volumes/NAME/_data`: what is mounted.
    pub fn mountpoint(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("_data")
    }

    /// Removes volume NAME and its data (the caller has checked it is unused).
    pub fn remove(&self, name: &str) -> Result<(), VolumeError> {
        self.get(name)?;
        let dir = self.dir.join(name);
        let doomed = self.dir.join(format!(".{name}.removing-{}", &random()?[..16]));
        fs::rename(&dir, &doomed).map_err(|e| io_error("rename", &dir, e))?;
        fs::remove_dir_all(&doomed).map_err(|e| io_error("remove", &doomed, e))
    }

    /// Removes what a killed create, removal or copy-up left; returns what
    /// it removed.
    pub fn reconcile(&self) -> Vec<PathBuf> {
        let mut removed = remove_leftovers(&self.dir);
        for name in record_names(&self.dir).unwrap_or_default() {
            let staging = self.dir.join(&name).join(COPY_UP_STAGING);
            if staging.symlink_metadata().is_ok() && fs::remove_dir_all(&staging).is_ok() {
                removed.push(staging);
            }
        }
        removed
    }

    /// Docker's copy-up. If volume NAME is not yet initialised and its
    /// `_data` is empty, copies the directory `source` (in the container's
    /// root filesystem, already resolved with [`secure_join`]; may be
    /// missing) into it: the directory's own owner, mode and mtime, and
    /// everything below, keeping ownership, modes, mtimes, symlinks (as
    /// links, never followed), hard links among the copied files, and
    /// device nodes and FIFOs. Then marks the volume initialised so that
    /// later mounts never copy again; that happens too when `_data` is not
    /// empty or `source` is missing or not a directory. Returns whether it
    /// copied (true also for an empty `source` directory, whose owner and
    /// mode are copied).
    pub fn copy_up(&self, name: &str, source: &Path) -> Result<bool, VolumeError> {
        let mut volume = self.get(name)?;
        if volume.initialized {
            return Ok(false);
        }
        let data = self.mountpoint(name);
        let staging = self.dir.join(name).join(COPY_UP_STAGING);
        if staging.symlink_metadata().is_ok() {
            fs::remove_dir_all(&staging).map_err(|e| io_error("remove", &staging, e))?;
        }
        let copy = is_empty_dir(&data).map_err(|e| io_error("read", &data, e))?
            && match fs::symlink_metadata(source) {
                Ok(meta) => meta.is_dir(),
                Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => false,
                Err(e) => return Err(io_error("inspect", source, e)),
            };
        if copy {
            let result = (|| {
                let mut links = HashMap::new();
                fs::create_dir(&staging).map_err(|e| io_error("create", &staging, e))?;
                copy_tree(source, &staging, &mut links)?;
                let meta = fs::symlink_metadata(source).map_err(|e| io_error("inspect", source, e))?;
                apply(&staging, &meta).map_err(|e| io_error("set attributes of", &staging, e))?;
                crate::image::sync_fs(&staging).map_err(|e| VolumeError::Io(e.to_string()))?;
                // rename(2) replaces an empty directory.
                fs::rename(&staging, &data).map_err(|e| io_error("rename to", &data, e))
            })();
            if let Err(e) = result {
                let _ = fs::remove_dir_all(&staging);
                return Err(e);
            }
        }
        volume.initialized = true;
        let record = self.dir.join(name).join("volume.json");
        state::write_json(&record, &volume).map_err(|e| VolumeError::Io(e.to_string()))?;
        Ok(copy)
    }
}

/// Where copy-up assembles a volume's content before renaming it over `_data`.
const COPY_UP_STAGING: &str = "_data.copy-up";

fn random() -> Result<String, VolumeError> {
    state::random_id().map_err(|e| VolumeError::Io(format!("read /dev/urandom: {e}")))
}

/// Whether `dir` is an empty directory (a missing one counts as empty).
fn is_empty_dir(dir: &Path) -> io::Result<bool> {
    match fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}

/// Copies what directory `from` holds into the existing directory `to`.
/// `links` maps (device, inode) of multiply-linked files already copied to
/// their copy, so that hard links stay hard links.
fn copy_tree(from: &Path, to: &Path, links: &mut HashMap<(u64, u64), PathBuf>) -> Result<(), VolumeError> {
    let entries = fs::read_dir(from).map_err(|e| io_error("read", from, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_error("read", from, e))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let meta = fs::symlink_metadata(&src).map_err(|e| io_error("inspect", &src, e))?;
        let kind = meta.file_type();
        let fail = |e: io::Error| VolumeError::Io(format!("copy {} to {}: {e}", src.display(), dst.display()));
        if kind.is_dir() {
            fs::create_dir(&dst).map_err(fail)?;
            copy_tree(&src, &dst, links)?;
            apply(&dst, &meta).map_err(fail)?;
            continue;
        }
        if meta.nlink() > 1 {
            if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                fs::hard_link(first, &dst).map_err(fail)?;
                continue;
            }
            links.insert((meta.dev(), meta.ino()), dst.clone());
        }
        if kind.is_symlink() {
            let target: OsString = fs::read_link(&src).map_err(fail)?.into();
            std::os::unix::fs::symlink(&target, &dst).map_err(fail)?;
        } else if kind.is_file() {
            let mut input = File::open(&src).map_err(fail)?;
            let mut output = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&dst).map_err(fail)?;
            io::copy(&mut input, &mut output).map_err(fail)?;
        } else if kind.is_fifo() || kind.is_char_device() || kind.is_block_device() {
            let flag = if kind.is_fifo() {
                SFlag::S_IFIFO
            } else if kind.is_char_device() {
                SFlag::S_IFCHR
            } else {
                SFlag::S_IFBLK
            };
            mknod(&dst, flag, Mode::from_bits_truncate(0o600), meta.rdev()).map_err(|e| fail(e.into()))?;
        } else {
            // Sockets belong to a process; there is nothing to copy.
            continue;
        }
        apply(&dst, &meta).map_err(fail)?;
    }
    Ok(())
}

/// Gives `path` the owner, mode (not for symlinks) and times of `meta`;
/// owner first, since chown clears set-id bits.
fn apply(path: &Path, meta: &fs::Metadata) -> io::Result<()> {
    lchown(path, Some(meta.uid()), Some(meta.gid()))?;
    if !meta.file_type().is_symlink() {
        fs::set_permissions(path, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    let atime = TimeSpec::new(meta.atime(), meta.atime_nsec());
    let mtime = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    utimensat(nix::fcntl::AT_FDCWD, path, &atime, &mtime, UtimensatFlags::NoFollowSymlink).map_err(io::Error::from)
}

/// The most symlinks [`secure_join`] follows (Linux's MAXSYMLINKS).
const MAX_SYMLINKS: usize = 40;

/// Resolves `path` (absolute, as seen inside the container; a relative one is
/// taken from the root) against `root` the way the kernel would inside a
/// chroot at `root`: every symlink met is followed relative to `root`, `..`
/// never climbs above `root`, and components that do not exist (or sit under
/// a non-directory) are appended as they are. The result always starts with
/// `root`. More than 40 symlinks is an error (ELOOP), as in the kernel.
///
/// The result is only as good as the moment it was computed: a process that
/// can change the tree under `root` meanwhile can still redirect it.
pub fn secure_join(root: &Path, path: &Path) -> io::Result<PathBuf> {
    // What is left to walk, last component first.
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, path);
    let mut resolved = PathBuf::new();
    let mut followed = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        if part == "/" {
            resolved = PathBuf::new();
            continue;
        }
        let next = resolved.join(&part);
        let meta = match fs::symlink_metadata(root.join(&next)) {
            Ok(meta) => meta,
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
                resolved = next;
                continue;
            }
            Err(e) => return Err(io::Error::new(e.kind(), format!("resolve {}: {e}", root.join(&next).display()))),
        };
        if !meta.file_type().is_symlink() {
            resolved = next;
            continue;
        }
        followed += 1;
        if followed > MAX_SYMLINKS {
            return Err(io::Error::other(format!(
                "resolve {} in {}: too many levels of symbolic links",
                path.display(),
                root.display()
            )));
        }
        let target = fs::read_link(root.join(&next))?;
        push_components(&mut pending, &target);
    }
    if resolved.as_os_str().is_empty() {
        return Ok(root.to_path_buf());
    }
    Ok(root.join(resolved))
}

/// Pushes `path`'s components onto the stack `pending` (so that the first
/// comes off first); an absolute path starts with "/" (back to the root).
fn push_components(pending: &mut Vec<OsString>, path: &Path) {
    for part in path.components().rev() {
        match part {
            Component::RootDir => pending.push("/".into()),
            Component::ParentDir => pending.push("..".into()),
            Component::Normal(part) => pending.push(part.to_os_string()),
            Component::CurDir | Component::Prefix(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Scratch;
    use std::os::unix::fs::symlink;

    impl Scratch {
        fn volumes(&self) -> VolumeStore {
            VolumeStore::new(&self.root())
        }
    }

    fn bind(source: &str, target: &str, read_only: bool) -> VolumeSpec {
        VolumeSpec::Bind { source: source.into(), target: target.into(), read_only }
    }

    fn named(name: &str, target: &str, read_only: bool) -> VolumeSpec {
        VolumeSpec::Named { name: name.into(), target: target.into(), read_only }
    }

    #[test]
    fn specs_parse_as_docker_reads_them() {
        let cases = [
            ("/host:/ctr", bind("/host", "/ctr", false)),
            ("/host:/ctr:ro", bind("/host", "/ctr", true)),
            ("/host:/ctr:rw", bind("/host", "/ctr", false)),
            ("/host/dir/:/ctr/dir/", bind("/host/dir/", "/ctr/dir", false)),
            ("/:/host", bind("/", "/host", false)),
            ("/h:/c//d/./e/", bind("/h", "/c/d/e", false)),
            ("vol1:/data", named("vol1", "/data", false)),
            ("vol1:/data:ro", named("vol1", "/data", true)),
            ("My_vol.2-x:/data:rw", named("My_vol.2-x", "/data", false)),
            ("ro:/data", named("ro", "/data", false)),
            ("/data", VolumeSpec::Anonymous { target: "/data".into() }),
            ("/var/lib/db/", VolumeSpec::Anonymous { target: "/var/lib/db".into() }),
        ];
        for (spec, want) in cases {
            assert_eq!(VolumeSpec::parse(spec).unwrap(), want, "{spec}");
        }
        let spec = VolumeSpec::parse("/h:/c:ro").unwrap();
        assert_eq!((spec.target(), spec.read_only()), (Path::new("/c"), true));
        assert_eq!(VolumeSpec::parse("/c").unwrap().target(), Path::new("/c"));
    }

    #[test]
    fn bad_specs_are_refused() {
        for spec in [
            "",
            ":",
            "::",
            "data",     // anonymous target not absolute
            "./data",   // relative
            "/",        // the root itself
            "/data:ro", // a mode on an anonymous volume
            "/data:rw", // likewise
            "/h:/c:z",  // only ro and rw
            "/h:/c:Z",
            "/h:/c:ro,z",
            "/h:/c:",      // empty mode
            "/h:/c:ro:rw", // too many parts
            "/h:",         // empty target
            ":/c",         // empty source
            "/h:c",        // relative target
            "/h:/",        // target is the root
            "/h:/a/../b",  // ".." in the target
            "/h:/..",
            "/../x",
            "rel/dir:/c", // relative source that is no volume name
            "./dir:/c",
            "../dir:/c",
            ".vol:/c", // names start alphanumeric
            "-vol:/c",
            "my vol:/c",
            "vol/x:/c:ro",
        ] {
            let err = VolumeSpec::parse(spec).unwrap_err();
            assert!(matches!(&err, VolumeError::InvalidSpec(s) if s == spec), "{spec}: {err:?}");
            assert_eq!(err.to_string(), format!("invalid volume specification: \"{spec}\""));
        }
        let long = format!("{}:/c", "v".repeat(129));
        assert!(VolumeSpec::parse(&long).is_err());
    }

    #[test]
    fn volumes_from_takes_a_container_and_a_mode() {
        assert_eq!(parse_volumes_from("web").unwrap(), ("web".to_string(), None));
        assert_eq!(parse_volumes_from("web:ro").unwrap(), ("web".to_string(), Some(true)));
        assert_eq!(parse_volumes_from("web:rw").unwrap(), ("web".to_string(), Some(false)));
        let id = "0123456789abcdef".repeat(4);
        assert_eq!(parse_volumes_from(&id).unwrap(), (id.clone(), None));
        for spec in ["", ":ro", "web:", "web:z", "web:ro:rw", "we b", "/web", "web/x:ro"] {
            let err = parse_volumes_from(spec).unwrap_err();
            assert!(matches!(&err, VolumeError::InvalidSpec(s) if s == spec), "{spec}: {err:?}");
        }
    }

    #[test]
    fn volume_names() {
        for good in ["a", "vol1", "A.b_c-d", &"x".repeat(128), &"f".repeat(64)] {
            assert!(valid_volume_name(good), "{good}");
        }
        for bad in ["", ".a", "_a", "-a", "a/b", "a:b", "a b", "é", &"x".repeat(129)] {
            assert!(!valid_volume_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn secure_join_stays_inside_the_root() {
        let scratch = Scratch::new("join");
        let root = scratch.0.join("rootfs");
        fs::create_dir_all(root.join("srv")).unwrap();
        fs::create_dir_all(root.join("etc/app")).unwrap();
        fs::create_dir_all(root.join("var/lib")).unwrap();
        symlink("/etc", root.join("srv/link")).unwrap();
        symlink("../../../../etc", root.join("var/lib/rel")).unwrap();
        symlink("app", root.join("etc/here")).unwrap();
        symlink("/nowhere/deep", root.join("dangling")).unwrap();
        symlink("loop2", root.join("loop1")).unwrap();
        symlink("/loop1", root.join("loop2")).unwrap();
        fs::write(root.join("file"), b"").unwrap();

        let join = |p: &str| secure_join(&root, Path::new(p)).unwrap();
        assert_eq!(join("/etc/app"), root.join("etc/app"), "plain");
        assert_eq!(join("/"), root, "the root itself");
        assert_eq!(join(""), root);
        assert_eq!(join("/srv/link"), root.join("etc"), "absolute symlink is relative to the root");
        assert_eq!(join("/srv/link/app/x"), root.join("etc/app/x"));
        assert_eq!(join("/var/lib/rel"), root.join("etc"), "relative symlink cannot climb out");
        assert_eq!(join("/var/lib/rel/here"), root.join("etc/app"), "a symlink relative to its directory");
        assert_eq!(join("/../../../etc"), root.join("etc"), "'..' stops at the root");
        assert_eq!(join("etc/./app/../app"), root.join("etc/app"), "relative path from the root");
        assert_eq!(join("/missing/a/b"), root.join("missing/a/b"), "missing tail appended");
        assert_eq!(join("/missing/../etc"), root.join("etc"));
        assert_eq!(join("/dangling/x"), root.join("nowhere/deep/x"), "a dangling link's target");
        assert_eq!(join("/file/under"), root.join("file/under"), "under a non-directory");
        let err = secure_join(&root, Path::new("/loop1/x")).unwrap_err();
        assert!(err.to_string().contains("too many levels of symbolic links"), "{err}");
        // A chain of 40 links is fine; 41 is not.
        for i in 0..41 {
            symlink(format!("c{}", i + 1), root.join(format!("c{i}"))).unwrap();
        }
        fs::create_dir(root.join("c41")).unwrap();
        assert_eq!(join("/c1"), root.join("c41"));
        assert!(secure_join(&root, Path::new("/c0")).is_err());
    }

    #[test]
    fn store_creates_lists_and_removes() {
        let scratch = Scratch::new("store");
        let store = scratch.volumes();
        assert!(store.list().unwrap().is_empty());
        let vol = store.create(Some("vol1"), false).unwrap();
        assert_eq!((vol.name.as_str(), vol.anonymous, vol.initialized), ("vol1", false, false));
        assert!(state::parse_rfc3339(&vol.created).is_some());
        let data = store.mountpoint("vol1");
        assert_eq!(data, scratch.0.join("root/volumes/vol1/_data"));
        assert!(data.is_dir());
        assert_eq!(fs::metadata(&data).unwrap().mode() & 0o7777, 0o755);
        assert_eq!(store.get("vol1").unwrap(), vol);

        let err = store.create(Some("vol1"), false).unwrap_err();
        assert!(matches!(err, VolumeError::Exists(_)), "{err:?}");
        assert!(matches!(store.create(Some("bad/name"), false), Err(VolumeError::InvalidName(_))));
        assert!(matches!(store.create(Some(".."), false), Err(VolumeError::InvalidName(_))));

        let anon = store.create(None, true).unwrap();
        assert!(anon.anonymous && anon.name.len() == 64 && anon.name.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(store.get_or_create("vol1").unwrap(), vol, "existing one returned");
        let made = store.get_or_create("vol2").unwrap();
        assert!(!made.anonymous);

        let mut want = vec![anon.name.clone(), "vol1".to_string(), "vol2".to_string()];
        want.sort();
        let names: Vec<String> = store.list().unwrap().into_iter().map(|v| v.name).collect();
        assert_eq!(names, want);

        fs::write(data.join("file"), b"x").unwrap();
        store.remove("vol1").unwrap();
        assert!(!scratch.0.join("root/volumes/vol1").exists());
        let err = store.get("vol1").unwrap_err();
        assert_eq!(err.to_string(), "no such volume: vol1");
        assert!(matches!(store.remove("vol1"), Err(VolumeError::NotFound(_))));

        // Leftovers of killed commands.
        let partial = scratch.0.join("root/volumes/.vol3.partial-0123456789abcdef");
        let copying = scratch.0.join("root/volumes/vol2/_data.copy-up");
        fs::create_dir_all(partial.join("_data")).unwrap();
        fs::create_dir_all(copying.join("x")).unwrap();
        assert_eq!(store.list().unwrap().len(), 2);
        assert_eq!(store.reconcile(), vec![partial.clone(), copying.clone()]);
        assert!(!partial.exists() && !copying.exists());
    }

    /// A source tree with owners, modes, times, a symlink, a hard link and a FIFO.
    fn seed_tree(src: &Path) {
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::write(src.join("seed.txt"), b"seed\n").unwrap();
        fs::write(src.join("sub/inner"), b"inner").unwrap();
        fs::hard_link(src.join("sub/inner"), src.join("sub/inner-link")).unwrap();
        symlink("/etc/passwd", src.join("link")).unwrap();
        mknod(&src.join("fifo"), SFlag::S_IFIFO, Mode::from_bits_truncate(0o600), 0).unwrap();
        lchown(src.join("seed.txt"), Some(1234), Some(5678)).unwrap();
        fs::set_permissions(src.join("seed.txt"), fs::Permissions::from_mode(0o640)).unwrap();
        lchown(src.join("link"), Some(1234), Some(5678)).unwrap();
        lchown(src.join("sub"), Some(42), Some(43)).unwrap();
        fs::set_permissions(src.join("sub"), fs::Permissions::from_mode(0o2750)).unwrap();
        lchown(src, Some(999), Some(998)).unwrap();
        fs::set_permissions(src, fs::Permissions::from_mode(0o700)).unwrap();
        let t = |s| TimeSpec::new(s, 123);
        for (path, secs) in
            [("seed.txt", 1_600_000_001), ("link", 1_600_000_002), ("sub", 1_600_000_003), ("", 1_600_000_004)]
        {
            let path = if path.is_empty() { src.to_path_buf() } else { src.join(path) };
            utimensat(nix::fcntl::AT_FDCWD, &path, &t(secs), &t(secs), UtimensatFlags::NoFollowSymlink).unwrap();
        }
    }

    #[test]
    fn copy_up_keeps_owners_modes_links_and_times() {
        let scratch = Scratch::new("copyup");
        let store = scratch.volumes();
        let src = scratch.0.join("rootfs/data");
        seed_tree(&src);
        store.create(Some("vol1"), false).unwrap();
        assert!(store.copy_up("vol1", &src).unwrap());
        assert!(store.get("vol1").unwrap().initialized);
        let data = store.mountpoint("vol1");
        let meta = |p: &str| fs::symlink_metadata(data.join(p)).unwrap();

        let root = fs::symlink_metadata(&data).unwrap();
        assert_eq!((root.uid(), root.gid(), root.mode() & 0o7777), (999, 998, 0o700), "the directory's own owner");
        assert_eq!((root.mtime(), root.mtime_nsec()), (1_600_000_004, 123));
        let seed = meta("seed.txt");
        assert_eq!((seed.uid(), seed.gid(), seed.mode() & 0o7777), (1234, 5678, 0o640));
        assert_eq!((seed.mtime(), seed.mtime_nsec()), (1_600_000_001, 123));
        assert_eq!(fs::read(data.join("seed.txt")).unwrap(), b"seed\n");
        let link = meta("link");
        assert!(link.file_type().is_symlink(), "copied as a link, not followed");
        assert_eq!(fs::read_link(data.join("link")).unwrap(), Path::new("/etc/passwd"));
        assert_eq!((link.uid(), link.gid(), link.mtime()), (1234, 5678, 1_600_000_002));
        let sub = meta("sub");
        assert_eq!((sub.uid(), sub.gid(), sub.mode() & 0o7777, sub.mtime()), (42, 43, 0o2750, 1_600_000_003));
        assert_eq!(meta("sub/inner").ino(), meta("sub/inner-link").ino(), "hard link kept");
        assert_ne!(meta("sub/inner").ino(), fs::metadata(src.join("sub/inner")).unwrap().ino());
        assert!(meta("fifo").file_type().is_fifo());
        assert!(!store.dir.join("vol1").join(COPY_UP_STAGING).exists());

        // Initialised: never again, even once emptied.
        fs::remove_dir_all(&data).unwrap();
        fs::create_dir(&data).unwrap();
        assert!(!store.copy_up("vol1", &src).unwrap());
        assert_eq!(fs::read_dir(&data).unwrap().count(), 0);
    }

    #[test]
    fn copy_up_leaves_a_used_volume_alone() {
        let scratch = Scratch::new("nonempty");
        let store = scratch.volumes();
        let src = scratch.0.join("rootfs/data");
        seed_tree(&src);
        store.create(Some("full"), false).unwrap();
        let data = store.mountpoint("full");
        fs::write(data.join("mine"), b"mine").unwrap();
        assert!(!store.copy_up("full", &src).unwrap());
        let names: Vec<OsString> = fs::read_dir(&data).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["mine"]);
        assert_eq!(fs::metadata(&data).unwrap().mode() & 0o7777, 0o755, "owner and mode unchanged");
        assert!(store.get("full").unwrap().initialized);
    }

    #[test]
    fn copy_up_from_nothing_marks_the_volume() {
        let scratch = Scratch::new("missing");
        let store = scratch.volumes();
        store.create(Some("empty"), false).unwrap();
        assert!(!store.copy_up("empty", &scratch.0.join("rootfs/no/such/dir")).unwrap());
        assert!(store.get("empty").unwrap().initialized);
        assert_eq!(fs::read_dir(store.mountpoint("empty")).unwrap().count(), 0);
        // Later content in the image is not copied either.
        let src = scratch.0.join("rootfs/no/such/dir");
        seed_tree(&src);
        assert!(!store.copy_up("empty", &src).unwrap());
        assert_eq!(fs::read_dir(store.mountpoint("empty")).unwrap().count(), 0);
        // A file where a directory would be is nothing to copy.
        store.create(Some("other"), false).unwrap();
        assert!(!store.copy_up("other", &src.join("seed.txt")).unwrap());
        assert!(store.get("other").unwrap().initialized);
        assert!(matches!(store.copy_up("nope", &src), Err(VolumeError::NotFound(_))));
    }
}
