//! Images: root filesystems imported from tar archives (`wharf image import`,
//! as `docker import`), stored unpacked under `WHARF_ROOT/images/NAME/rootfs`
//! with a record in `WHARF_ROOT/images/NAME/image.json`.
//!
//! An import unpacks into a staging directory (`images/.NAME.partial-<random>`)
//! and renames it into place only when the whole archive is in, so a name is
//! either absent or complete; [`ImageStore::reconcile`] removes what a killed
//! import left. Entries are placed the way the kernel would resolve them
//! inside the container (through [`secure_join`]), so no entry, symlink or
//! hard link can write outside the root filesystem; an entry whose path
//! climbs with `..` refuses the whole archive.
//!
//! This module does not know which containers use an image: the caller checks
//! that before [`ImageStore::remove`], and holds the state lock throughout.
//! Extended attributes (file capabilities, SELinux labels) are not restored.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{lchown, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{makedev, mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use serde::{Deserialize, Serialize};

use crate::state::{self, Root};
use crate::volume::secure_join;

/// An imported image, as recorded in `images/NAME/image.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub name: String,
    /// `sha256:<64 hex>` of the (uncompressed) tar stream.
    pub id: String,
    /// RFC 3339 time of the import.
    pub created: String,
    /// Bytes of regular-file content unpacked.
    pub size: u64,
}

impl Image {
    /// The id's first 12 hex digits, as `image ls` shows it.
    pub fn short_id(&self) -> &str {
        crate::state::short_id(self.id.strip_prefix("sha256:").unwrap_or(&self.id))
    }
}

/// What can go wrong with images.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("no such image: {0}")]
    NotFound(String),
    #[error("image {0} already exists")]
    Exists(String),
    #[error("invalid image name \"{0}\": names match [a-zA-Z0-9][a-zA-Z0-9_.:-]* (at most 128 characters)")]
    InvalidName(String),
    /// `FILE: what is wrong with it`.
    #[error("{0}")]
    Archive(String),
    #[error("{0}")]
    Io(String),
}

/// The longest image name accepted (the staging directory's name must stay
/// under the file system's 255-byte limit).
const MAX_NAME: usize = 128;

/// Whether `name` is a valid image name: `[a-zA-Z0-9][a-zA-Z0-9_.:-]*`, no `/`.
pub fn valid_image_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= MAX_NAME
        && bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
}

/// The images under `WHARF_ROOT/images`.
#[derive(Debug, Clone)]
pub struct ImageStore {
    dir: PathBuf,
}

impl ImageStore {
    pub fn new(root: &Root) -> ImageStore {
        ImageStore { dir: root.images() }
    }

    /// Unpacks FILE (a tar, or a gzip'd tar: detected by its magic bytes) as
    /// image NAME, keeping numeric ownership, modes, symlinks, hard links,
    /// device nodes and mtimes. Absolute entry paths are taken as relative to
    /// the root; an entry that climbs out with `..` refuses the archive. On
    /// any error nothing is left behind. The caller holds the state lock.
    pub fn import(&self, file: &Path, name: &str) -> Result<Image, ImageError> {
        if !valid_image_name(name) {
            return Err(ImageError::InvalidName(name.to_string()));
        }
        let dir = self.dir.join(name);
        if dir.symlink_metadata().is_ok() {
            return Err(ImageError::Exists(name.to_string()));
        }
        let input = File::open(file).map_err(|e| ImageError::Io(format!("open {}: {e}", file.display())))?;
        fs::create_dir_all(&self.dir).map_err(|e| io_error("create", &self.dir, e))?;
        let staging = self.dir.join(format!(".{name}.partial-{}", short_random()?));
        let result = (|| {
            let rootfs = staging.join("rootfs");
            fs::create_dir(&staging).map_err(|e| io_error("create", &staging, e))?;
            fs::create_dir(&rootfs).map_err(|e| io_error("create", &rootfs, e))?;
            fs::set_permissions(&rootfs, fs::Permissions::from_mode(0o755))
                .map_err(|e| io_error("chmod", &rootfs, e))?;
            let (id, size) = unpack(file, input, &rootfs)?;
            let image = Image { name: name.to_string(), id, created: state::now_rfc3339(), size };
            let record = staging.join("image.json");
            state::write_json(&record, &image).map_err(|e| ImageError::Io(e.to_string()))?;
            sync_fs(&staging).map_err(|e| ImageError::Io(e.to_string()))?;
            rename_noreplace(&staging, &dir).map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists | io::ErrorKind::DirectoryNotEmpty => ImageError::Exists(name.to_string()),
                _ => io_error("rename to", &dir, e),
            })?;
            Ok(image)
        })();
        if result.is_err() {
            let _ = fs::remove_dir_all(&staging);
        }
        result
    }

    /// Every image, sorted by name (staging and removal leftovers skipped).
    pub fn list(&self) -> Result<Vec<Image>, ImageError> {
        let mut images = Vec::new();
        for name in record_names(&self.dir).map_err(|e| io_error("read", &self.dir, e))? {
            images.push(self.get(&name)?);
        }
        Ok(images)
    }

    pub fn get(&self, name: &str) -> Result<Image, ImageError> {
        if !valid_image_name(name) {
            return Err(ImageError::InvalidName(name.to_string()));
        }
        let dir = self.dir.join(name);
        if dir.symlink_metadata().is_err() {
            return Err(ImageError::NotFound(name.to_string()));
        }
        state::read_json(&dir.join("image.json")).map_err(|e| ImageError::Io(e.to_string()))
    }

    /// `images/NAME/rootfs`.
    pub fn rootfs(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("rootfs")
    }

    /// Removes image NAME (the caller has checked no container uses it). The
    /// directory is first renamed out of sight, so a crash midway leaves only
    /// a leftover for [`ImageStore::reconcile`].
    pub fn remove(&self, name: &str) -> Result<(), ImageError> {
        self.get(name)?;
        let dir = self.dir.join(name);
        let doomed = self.dir.join(format!(".{name}.removing-{}", short_random()?));
        fs::rename(&dir, &doomed).map_err(|e| io_error("rename", &dir, e))?;
        fs::remove_dir_all(&doomed).map_err(|e| io_error("remove", &doomed, e))
    }

    /// Removes what a killed import or removal left (`.NAME.partial-*`,
    /// `.NAME.removing-*`); returns what it removed.
    pub fn reconcile(&self) -> Vec<PathBuf> {
        remove_leftovers(&self.dir)
    }
}

/// The names of the records in `dir` (entries not starting with '.'), sorted;
/// a missing `dir` holds none.
pub(crate) fn record_names(dir: &Path) -> io::Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in entries {
        let name = entry?.file_name();
        match name.to_str() {
            Some(name) if !name.starts_with('.') => names.push(name.to_string()),
            _ => {}
        }
    }
    names.sort();
    Ok(names)
}

/// Removes `dir/.*.partial-*` and `dir/.*.removing-*`.
pub(crate) fn remove_leftovers(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && (name.contains(".partial-") || name.contains(".removing-")) {
            let path = entry.path();
            let gone = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            if gone.is_ok() {
                removed.push(path);
            }
        }
    }
    removed.sort();
    removed
}

/// Renames `from` to `to`, failing if `to` exists (even as an empty directory).
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
    renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE).map_err(io::Error::from)
}

/// Flushes the file system holding `dir` (what was unpacked or copied there)
/// before it is renamed into place.
pub(crate) fn sync_fs(dir: &Path) -> io::Result<()> {
    let context = |e: io::Error| io::Error::new(e.kind(), format!("sync {}: {e}", dir.display()));
    let handle = File::open(dir).map_err(context)?;
    nix::unistd::syncfs(&handle).map_err(|e| context(e.into()))
}

fn short_random() -> Result<String, ImageError> {
    let id = state::random_id().map_err(|e| ImageError::Io(format!("read /dev/urandom: {e}")))?;
    Ok(id[..16].to_string())
}

fn io_error(what: &str, path: &Path, e: io::Error) -> ImageError {
    ImageError::Io(format!("{what} {}: {e}", path.display()))
}

/// Unpacks the archive read from `input` (named `file`) into `rootfs`;
/// returns the stream's `sha256:` id and the bytes of file content.
fn unpack(file: &Path, input: File, rootfs: &Path) -> Result<(String, u64), ImageError> {
    let archive_error = |what: String| ImageError::Archive(format!("{}: {what}", file.display()));
    let mut input = BufReader::with_capacity(1 << 16, input);
    let head = input.fill_buf().map_err(|e| archive_error(format!("read: {e}")))?;
    if head.is_empty() {
        return Err(archive_error("empty file, not a tar archive".to_string()));
    }
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    let stream: Box<dyn Read> =
        if gzip { Box::new(flate2::bufread::MultiGzDecoder::new(input)) } else { Box::new(input) };
    let mut archive = tar::Archive::new(Hashing { inner: stream, hash: Sha256::new() });

    let mut size = 0u64;
    // Directories get their owner, mode and times last, deepest first, so
    // that entries placed inside them do not change their mtime and a
    // read-only mode does not get in the way.
    let mut directories: BTreeMap<PathBuf, Meta> = BTreeMap::new();
    let mut seen_entry = false;
    let entries = archive.entries().map_err(|e| archive_error(format!("not a tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| {
            archive_error(if seen_entry {
                format!("corrupt tar archive: {e}")
            } else {
                format!("not a tar archive: {e}")
            })
        })?;
        seen_entry = true;
        let header = entry.header();
        let kind = header.entry_type();
        if kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
            || kind.is_gnu_longlink()
        {
            continue;
        }
        let raw_path = entry.path().map_err(|e| archive_error(format!("bad entry name: {e}")))?.into_owned();
        let relative = relative_inside(&raw_path)
            .ok_or_else(|| archive_error(format!("entry {} escapes the root filesystem", raw_path.display())))?;
        let bad_header = |e: io::Error| archive_error(format!("entry {}: bad header: {e}", raw_path.display()));
        let meta = Meta {
            uid: header.uid().ok().and_then(|v| u32::try_from(v).ok()).ok_or_else(|| bad_header(bad("uid")))?,
            gid: header.gid().ok().and_then(|v| u32::try_from(v).ok()).ok_or_else(|| bad_header(bad("gid")))?,
            mode: header.mode().map_err(bad_header)? & 0o7777,
            mtime: header.mtime().map_err(bad_header)?,
        };
        let old_style_dir =
            header.as_ustar().is_none() && header.as_gnu().is_none() && entry.path_bytes().ends_with(b"/");

        if relative.as_os_str().is_empty() {
            // "./": the root directory itself.
            if kind.is_dir() || old_style_dir {
                directories.insert(PathBuf::new(), meta);
            }
            continue;
        }
        let Some(name) = relative.file_name().map(OsStr::to_os_string) else { continue };
        let parent = secure_join(rootfs, relative.parent().unwrap_or(Path::new("")))
            .map_err(|e| archive_error(format!("entry {}: {e}", raw_path.display())))?;
        fs::create_dir_all(&parent).map_err(|e| io_error("create", &parent, e))?;
        let target = parent.join(&name);
        let place =
            |e: io::Error| ImageError::Io(format!("unpack {} to {}: {e}", raw_path.display(), target.display()));

        if kind.is_dir() || old_style_dir {
            match fs::symlink_metadata(&target) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    fs::remove_file(&target).map_err(place)?;
                    fs::create_dir(&target).map_err(place)?;
                }
                Err(_) => fs::create_dir(&target).map_err(place)?,
            }
            let key = target.strip_prefix(rootfs).unwrap_or(&target).to_path_buf();
            directories.insert(key, meta);
            continue;
        }
        clear_for(&target).map_err(place)?;
        if kind.is_hard_link() {
            let link = entry
                .link_name()
                .map_err(|e| archive_error(format!("entry {}: bad link name: {e}", raw_path.display())))?
                .ok_or_else(|| archive_error(format!("hard link {} has no target", raw_path.display())))?
                .into_owned();
            let escapes = || {
                archive_error(format!(
                    "hard link {} -> {} escapes the root filesystem",
                    raw_path.display(),
                    link.display()
                ))
            };
            let link_relative = relative_inside(&link).ok_or_else(escapes)?;
            let link_name = link_relative.file_name().ok_or_else(escapes)?;
            let link_parent = secure_join(rootfs, link_relative.parent().unwrap_or(Path::new("")))
                .map_err(|e| archive_error(format!("entry {}: {e}", raw_path.display())))?;
            let source = link_parent.join(link_name);
            fs::hard_link(&source, &target)
                .map_err(|e| archive_error(format!("hard link {} -> {}: {e}", raw_path.display(), link.display())))?;
            continue;
        }
        if kind.is_symlink() {
            let link = entry
                .link_name()
                .map_err(|e| archive_error(format!("entry {}: bad link name: {e}", raw_path.display())))?
                .ok_or_else(|| archive_error(format!("symlink {} has no target", raw_path.display())))?;
            std::os::unix::fs::symlink(&link, &target).map_err(place)?;
            meta.apply(&target, true).map_err(place)?;
            continue;
        }
        if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            let (flag, dev) = if kind.is_fifo() {
                (SFlag::S_IFIFO, 0)
            } else {
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                let flag = if kind.is_block_special() { SFlag::S_IFBLK } else { SFlag::S_IFCHR };
                (flag, makedev(major.into(), minor.into()))
            };
            match mknod(&target, flag, Mode::from_bits_truncate(0o600), dev) {
                Ok(()) => meta.apply(&target, false).map_err(place)?,
                // Without the right to make device nodes (a user namespace),
                // skip them: the runtime provides /dev.
                Err(nix::errno::Errno::EPERM) => {}
                Err(e) => return Err(place(e.into())),
            }
            continue;
        }
        // Regular files, and (as POSIX says) any type not known.
        let mut out = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&target).map_err(place)?;
        size += copy_entry(&mut entry, &mut out, &raw_path, file, &target)?;
        drop(out);
        meta.apply(&target, false).map_err(place)?;
    }
    // Deepest first: in reverse path order every child comes before its parent.
    for (relative, meta) in directories.iter().rev() {
        let path = rootfs.join(relative);
        meta.apply(&path, false).map_err(|e| io_error("set attributes of", &path, e))?;
    }
    // The hash covers the whole stream, including what follows the
    // end-of-archive blocks.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(|e| archive_error(format!("read: {e}")))?;
    Ok((format!("sha256:{}", hex(&rest.hash.finish())), size))
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{what} out of range"))
}

/// Copies an entry's content; read errors are the archive's, write errors ours.
fn copy_entry(
    entry: &mut impl Read,
    out: &mut File,
    raw: &Path,
    file: &Path,
    target: &Path,
) -> Result<u64, ImageError> {
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = match entry.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(ImageError::Archive(format!("{}: entry {}: {e}", file.display(), raw.display())));
            }
        };
        out.write_all(&buf[..n]).map_err(|e| io_error("write", target, e))?;
        total += n as u64;
    }
}

/// Removes a non-directory at `path` so that a later entry replaces it (as tar does).
fn clear_for(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Err(io::Error::new(io::ErrorKind::AlreadyExists, "a directory is in the way")),
        Ok(_) => fs::remove_file(path),
        Err(_) => Ok(()),
    }
}

/// `path` made relative (a leading `/` and `.` parts dropped), or None if
/// it climbs with `..`.
fn relative_inside(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
            Component::ParentDir => return None,
            Component::Normal(part) => out.push(part),
        }
    }
    Some(out)
}

/// Ownership, mode and mtime of an entry.
#[derive(Debug, Clone, Copy)]
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: u64,
}

impl Meta {
    /// Owner first (chown clears set-id bits), then mode, then times.
    fn apply(&self, path: &Path, symlink: bool) -> io::Result<()> {
        lchown(path, Some(self.uid), Some(self.gid))?;
        if !symlink {
            fs::set_permissions(path, fs::Permissions::from_mode(self.mode))?;
        }
        let secs = nix::libc::time_t::try_from(self.mtime).unwrap_or(nix::libc::time_t::MAX);
        let time = TimeSpec::new(secs, 0);
        utimensat(nix::fcntl::AT_FDCWD, path, &time, &time, UtimensatFlags::NoFollowSymlink).map_err(io::Error::from)
    }
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 (FIPS 180-4), for image ids; no dependency carries it.
#[derive(Clone)]
struct Sha256 {
    state: [u32; 8],
    block: [u8; 64],
    filled: usize,
    length: u64,
}

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
    0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
    0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
    0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
];

impl Sha256 {
    fn new() -> Sha256 {
        Sha256 {
            state: [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19],
            block: [0; 64],
            filled: 0,
            length: 0,
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        self.length = self.length.wrapping_add(data.len() as u64);
        while !data.is_empty() {
            let take = (64 - self.filled).min(data.len());
            self.block[self.filled..self.filled + take].copy_from_slice(&data[..take]);
            self.filled += take;
            data = &data[take..];
            if self.filled == 64 {
                let block = self.block;
                self.compress(&block);
                self.filled = 0;
            }
        }
    }

    fn finish(mut self) -> [u8; 32] {
        let bits = self.length.wrapping_mul(8);
        self.update(&[0x80]);
        while self.filled != 56 {
            self.update(&[0]);
        }
        self.update(&bits.to_be_bytes());
        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_exact_mut(4).zip(self.state) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }

    fn compress(&mut self, block: &[u8; 64]) {
        let mut w = [0u32; 64];
        for (i, chunk) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = self.state;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = h.wrapping_add(s1).wrapping_add(ch).wrapping_add(K[i]).wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            h = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (s, v) in self.state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
            *s = s.wrapping_add(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Scratch;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    impl Scratch {
        fn images(&self) -> ImageStore {
            ImageStore::new(&self.root())
        }

        fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
            let path = self.0.join(name);
            fs::write(&path, bytes).unwrap();
            path
        }

        /// What is in the images directory, leftovers included.
        fn images_dir(&self) -> Vec<String> {
            let mut names: Vec<String> = fs::read_dir(self.0.join("root/images"))
                .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
                .unwrap_or_default();
            names.sort();
            names
        }
    }

    fn header(kind: tar::EntryType, mode: u32, uid: u64, gid: u64, mtime: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(uid);
        header.set_gid(gid);
        header.set_mtime(mtime);
        header.set_size(0);
        header
    }

    /// A small root filesystem: directories, files with owners and set-id
    /// modes, symlinks, a hard link, a device node, an absolute path.
    fn rootfs_tar() -> Vec<u8> {
        use tar::EntryType::*;
        let mut b = tar::Builder::new(Vec::new());
        let mut h = header(Directory, 0o755, 0, 0, 1_500_000_000);
        b.append_data(&mut h, "./", io::empty()).unwrap();
        let mut h = header(Directory, 0o750, 1234, 5678, 1_600_000_000);
        b.append_data(&mut h, "data/", io::empty()).unwrap();
        let mut h = header(Regular, 0o640, 1234, 5678, 1_600_000_001);
        h.set_size(5);
        b.append_data(&mut h, "data/seed.txt", &b"seed\n"[..]).unwrap();
        let mut h = header(Regular, 0o4755, 0, 0, 1_600_000_002);
        h.set_size(3);
        b.append_data(&mut h, "usr/bin/su", &b"su\n"[..]).unwrap();
        let mut h = header(Symlink, 0o777, 1234, 5678, 1_600_000_003);
        b.append_link(&mut h, "bin", "usr/bin").unwrap();
        let mut h = header(Regular, 0o644, 0, 0, 1_600_000_004);
        h.set_size(11);
        b.append_data(&mut h, "etc/passwd", &b"root:x:0:0\n"[..]).unwrap();
        let mut h = header(Link, 0o644, 0, 0, 1_600_000_004);
        b.append_link(&mut h, "etc/passwd-", "etc/passwd").unwrap();
        let mut h = header(Char, 0o666, 0, 0, 1_600_000_005);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        b.append_data(&mut h, "dev/null", io::empty()).unwrap();
        let mut h = header(Regular, 0o600, 7, 8, 1_600_000_006);
        h.set_size(4);
        // Builder::append_data refuses absolute names; write it raw.
        set_raw_name(&mut h, b"/abs.txt");
        b.append(&h, &b"abs\n"[..]).unwrap();
        b.into_inner().unwrap()
    }

    /// Puts `name` into the header as it is (the Builder refuses `..` and `/`).
    fn set_raw_name(h: &mut tar::Header, name: &[u8]) {
        let field = &mut h.as_old_mut().name;
        field.fill(0);
        field[..name.len()].copy_from_slice(name);
        h.set_cksum();
    }

    fn escaping_tar(name: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = header(tar::EntryType::Regular, 0o644, 0, 0, 1);
        h.set_size(2);
        b.append_data(&mut h, "fine.txt", &b"ok"[..]).unwrap();
        let mut h = header(tar::EntryType::Regular, 0o644, 0, 0, 1);
        h.set_size(5);
        set_raw_name(&mut h, name);
        b.append(&h, &b"evil\n"[..]).unwrap();
        b.into_inner().unwrap()
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        let mut h = Sha256::new();
        h.update(bytes);
        hex(&h.finish())
    }

    #[test]
    fn sha256_matches_the_standard_vectors() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(
            sha256_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        // A million 'a's, fed in uneven pieces.
        let mut h = Sha256::new();
        let chunk = [b'a'; 999];
        let mut left = 1_000_000;
        while left > 0 {
            let n = left.min(chunk.len());
            h.update(&chunk[..n]);
            left -= n;
        }
        assert_eq!(hex(&h.finish()), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    }

    #[test]
    fn names_follow_docker_repositories() {
        for good in ["alpine", "alpine:3.20", "my_image.v2-x", "A1", "busybox:latest"] {
            assert!(valid_image_name(good), "{good}");
        }
        for bad in ["", ".hidden", "-x", ":tag", "a/b", "library/alpine", "a b", "a\n", &"x".repeat(129)] {
            assert!(!valid_image_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn import_keeps_owners_modes_links_and_times() {
        let scratch = Scratch::new("keeps");
        let store = scratch.images();
        let bytes = rootfs_tar();
        let file = scratch.write("rootfs.tar", &bytes);
        let image = store.import(&file, "base:1").unwrap();
        assert_eq!(image.name, "base:1");
        assert_eq!(image.id, format!("sha256:{}", sha256_hex(&bytes)), "the id is the tar's hash");
        assert_eq!(image.short_id().len(), 12);
        assert_eq!(image.size, 5 + 3 + 11 + 4);
        assert!(state::parse_rfc3339(&image.created).is_some());
        assert_eq!(scratch.images_dir(), ["base:1"], "no staging left");

        let rootfs = store.rootfs("base:1");
        assert_eq!(rootfs, scratch.0.join("root/images/base:1/rootfs"));
        let meta = |p: &str| fs::symlink_metadata(rootfs.join(p)).unwrap();

        let root = fs::symlink_metadata(&rootfs).unwrap();
        assert_eq!((root.mode() & 0o7777, root.mtime()), (0o755, 1_500_000_000), "./ applies to the root");
        let data = meta("data");
        assert!(data.is_dir());
        assert_eq!((data.uid(), data.gid(), data.mode() & 0o7777), (1234, 5678, 0o750));
        assert_eq!(data.mtime(), 1_600_000_000, "a directory's mtime survives its content");
        let seed = meta("data/seed.txt");
        assert_eq!((seed.uid(), seed.gid(), seed.mode() & 0o7777, seed.mtime()), (1234, 5678, 0o640, 1_600_000_001));
        assert_eq!(fs::read(rootfs.join("data/seed.txt")).unwrap(), b"seed\n");
        assert_eq!(meta("usr/bin/su").mode() & 0o7777, 0o4755, "set-uid kept");

        let bin = meta("bin");
        assert!(bin.file_type().is_symlink());
        assert_eq!((bin.uid(), bin.gid(), bin.mtime()), (1234, 5678, 1_600_000_003), "symlink's own owner");
        assert_eq!(fs::read_link(rootfs.join("bin")).unwrap(), Path::new("usr/bin"));

        assert_eq!(meta("etc/passwd").ino(), meta("etc/passwd-").ino(), "hard link");
        assert_eq!(meta("etc/passwd").nlink(), 2);

        let null = meta("dev/null");
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), makedev(1, 3));

        let abs = meta("abs.txt");
        assert_eq!((abs.uid(), abs.gid(), abs.mode() & 0o7777), (7, 8, 0o600), "absolute made relative");

        assert_eq!(store.get("base:1").unwrap(), image);
    }

    #[test]
    fn gzip_is_detected_and_hashed_uncompressed() {
        use flate2::write::GzEncoder;
        let scratch = Scratch::new("gzip");
        let store = scratch.images();
        let bytes = rootfs_tar();
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&bytes).unwrap();
        let file = scratch.write("rootfs.tar.gz", &gz.finish().unwrap());
        let image = store.import(&file, "zipped").unwrap();
        assert_eq!(image.id, format!("sha256:{}", sha256_hex(&bytes)));
        assert_eq!(fs::read(store.rootfs("zipped").join("data/seed.txt")).unwrap(), b"seed\n");
    }

    #[test]
    fn escaping_entries_refuse_the_archive_and_leave_nothing() {
        let scratch = Scratch::new("escape");
        let store = scratch.images();
        for (i, name) in [&b"../evil.txt"[..], b"a/../../evil.txt", b"/../evil.txt"].into_iter().enumerate() {
            let file = scratch.write(&format!("evil{i}.tar"), &escaping_tar(name));
            let err = store.import(&file, "evil").unwrap_err();
            assert!(matches!(err, ImageError::Archive(_)), "{err:?}");
            let text = err.to_string();
            assert!(text.starts_with(&format!("{}: ", file.display())) && text.contains("escapes"), "{text}");
            assert!(scratch.images_dir().is_empty(), "{:?}", scratch.images_dir());
        }
        assert!(!scratch.0.join("root/evil.txt").exists() && !scratch.0.join("evil.txt").exists());
        assert!(matches!(store.get("evil"), Err(ImageError::NotFound(_))));

        // A hard link to a file outside.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = header(tar::EntryType::Link, 0o644, 0, 0, 1);
        h.set_link_name_literal("../../../../etc/passwd").unwrap();
        set_raw_name(&mut h, b"passwd");
        b.append(&h, io::empty()).unwrap();
        let file = scratch.write("link.tar", &b.into_inner().unwrap());
        let err = store.import(&file, "evil").unwrap_err();
        assert!(matches!(err, ImageError::Archive(_)) && err.to_string().contains("escapes"), "{err}");
        assert!(scratch.images_dir().is_empty());
    }

    #[test]
    fn symlinks_in_the_archive_cannot_lead_outside() {
        let scratch = Scratch::new("symlink");
        let outside = scratch.0.join("outside");
        fs::create_dir(&outside).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = header(tar::EntryType::Symlink, 0o777, 0, 0, 1);
        b.append_link(&mut h, "escape", &outside).unwrap();
        let mut h = header(tar::EntryType::Symlink, 0o777, 0, 0, 1);
        b.append_link(&mut h, "up", "../../../../..").unwrap();
        let mut h = header(tar::EntryType::Regular, 0o644, 0, 0, 1);
        h.set_size(2);
        b.append_data(&mut h, "escape/file", &b"in"[..]).unwrap();
        let mut h = header(tar::EntryType::Regular, 0o644, 0, 0, 1);
        h.set_size(2);
        b.append_data(&mut h, "up/file2", &b"in"[..]).unwrap();
        let file = scratch.write("links.tar", &b.into_inner().unwrap());
        let store = scratch.images();
        store.import(&file, "links").unwrap();
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0, "nothing written through the symlink");
        let rootfs = store.rootfs("links");
        // Resolved as the container would: inside the root filesystem.
        assert_eq!(fs::read(rootfs.join(outside.strip_prefix("/").unwrap()).join("file")).unwrap(), b"in");
        assert_eq!(fs::read(rootfs.join("file2")).unwrap(), b"in");
    }

    #[test]
    fn bad_input_is_refused_without_leftovers() {
        let scratch = Scratch::new("bad");
        let store = scratch.images();
        let text = scratch.write("notes.txt", &b"this is not a tar archive, just some text\n".repeat(40));
        let err = store.import(&text, "x").unwrap_err();
        assert!(matches!(err, ImageError::Archive(_)) && err.to_string().contains("not a tar archive"), "{err}");
        let empty = scratch.write("empty.tar", b"");
        assert!(matches!(store.import(&empty, "x"), Err(ImageError::Archive(_))));
        let truncated = scratch.write("cut.tar", &rootfs_tar()[..700]);
        assert!(matches!(store.import(&truncated, "x"), Err(ImageError::Archive(_))));
        let err = store.import(&scratch.0.join("missing.tar"), "x").unwrap_err();
        assert!(matches!(err, ImageError::Io(_)) && err.to_string().contains("missing.tar"), "{err}");
        assert!(scratch.images_dir().is_empty(), "{:?}", scratch.images_dir());
        let file = scratch.write("ok.tar", &rootfs_tar());
        let err = store.import(&file, "a/b").unwrap_err();
        assert!(matches!(err, ImageError::InvalidName(_)), "{err:?}");
        assert!(matches!(store.import(&file, "../x"), Err(ImageError::InvalidName(_))));
    }

    #[test]
    fn list_get_remove_and_names_in_use() {
        let scratch = Scratch::new("crud");
        let store = scratch.images();
        assert!(store.list().unwrap().is_empty(), "no images directory yet");
        let file = scratch.write("rootfs.tar", &rootfs_tar());
        store.import(&file, "zeta").unwrap();
        store.import(&file, "alpha").unwrap();
        let err = store.import(&file, "alpha").unwrap_err();
        assert!(matches!(err, ImageError::Exists(_)));
        assert_eq!(err.to_string(), "image alpha already exists");
        // A leftover from a killed import is neither listed nor kept.
        let leftover = scratch.0.join("root/images/.beta.partial-0123456789abcdef");
        fs::create_dir_all(leftover.join("rootfs/etc")).unwrap();
        let names: Vec<String> = store.list().unwrap().into_iter().map(|i| i.name).collect();
        assert_eq!(names, ["alpha", "zeta"]);
        assert_eq!(store.reconcile(), vec![leftover]);
        assert_eq!(scratch.images_dir(), ["alpha", "zeta"]);

        store.remove("alpha").unwrap();
        assert_eq!(scratch.images_dir(), ["zeta"]);
        let err = store.get("alpha").unwrap_err();
        assert_eq!(err.to_string(), "no such image: alpha");
        assert!(matches!(store.remove("alpha"), Err(ImageError::NotFound(_))));
        assert!(matches!(store.get("no/such"), Err(ImageError::InvalidName(_))));
        assert_eq!(store.list().unwrap().len(), 1);
    }
}
