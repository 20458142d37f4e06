//! The plugins folder, walked without following links.
//!
//! `plugins.json` names each library by a path relative to `HERMES_HOME`. That text is not
//! trusted: a hand edit, a bad merge or another program can make it say anything. Every path
//! taken from it goes through this module, which:
//!
//! - accepts only `plugins/<name>/…/<file>` made of plain names (no `..`, no `.`, no root);
//! - opens `HERMES_HOME/plugins` and then each component below it with `openat` and
//!   `O_NOFOLLOW`, so a symbolic link anywhere below `plugins/` is refused, never followed;
//! - refuses a folder or library that is writable by group or others or owned by another user
//!   (anyone who can write it could swap the code hermes runs);
//! - removes only the library file a record names (and then its folders, if empty), through
//!   the same walk, so a removal can never reach outside `plugins/`;
//! - creates install staging files with a random name and `O_EXCL`, inside `plugins/`.

use std::ffi::{CString, OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why a library path was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The library (or a folder on the way) does not exist.
    Missing(PathBuf),
    /// The path or what it leads to is unsafe; one line saying what and why.
    Unsafe(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Missing(p) => write!(f, "{} does not exist", p.display()),
            Refused::Unsafe(m) => f.write_str(m),
        }
    }
}

/// What a file looked like: enough to tell that it has not changed (the inode change time
/// cannot be set back from user space, so any write, rename or chmod shows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, ns.
    pub mtime_ns: i64,
    /// Inode change time, ns.
    pub ctime_ns: i64,
}

impl Identity {
    /// The identity of an open file (`fstat`).
    pub fn of(file: &File) -> io::Result<Identity> {
        Ok(Identity::from_meta(&file.metadata()?))
    }
    fn from_meta(m: &std::fs::Metadata) -> Identity {
        Identity {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: m
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(m.mtime_nsec()),
            ctime_ns: m
                .ctime()
                .saturating_mul(1_000_000_000)
                .saturating_add(m.ctime_nsec()),
        }
    }
    /// Same file with the same bytes: everything but the change time, which a rename in the
    /// same folder may update.
    pub fn same_content(&self, other: &Identity) -> bool {
        (self.dev, self.ino, self.size, self.mtime_ns)
            == (other.dev, other.ino, other.size, other.mtime_ns)
    }
}

/// The components below `plugins/` of a record's library path: at least a folder and a file,
/// each a plain name.
pub fn split(rel: &str) -> Result<Vec<&OsStr>, String> {
    let bad = || {
        format!(
            "its library path {:?} is not a plain path inside the plugins folder",
            crate::text::line(rel, 120)
        )
    };
    if rel.contains('\0') {
        return Err(bad());
    }
    let mut comps = Path::new(rel).components();
    if comps.next() != Some(Component::Normal(OsStr::new("plugins"))) {
        return Err(bad());
    }
    let rest = comps
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(()),
        })
        .collect::<Result<Vec<_>, ()>>()
        .map_err(|_| bad())?;
    // Path::components drops interior `.`; refuse it rather than silently normalise.
    if rest.len() < 2 || rel.split('/').any(|s| s == "." || s == "..") {
        return Err(bad());
    }
    Ok(rest)
}

fn cstr(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// `openat` that never follows a link in the last component (and, with `O_DIRECTORY`, opens
/// only a folder).
fn openat(dir: RawFd, name: &OsStr, flags: i32, mode: libc::mode_t) -> io::Result<File> {
    let c = cstr(name)?;
    // SAFETY: plain FFI call with a valid NUL-terminated name; the returned fd is owned below.
    let fd = unsafe {
        libc::openat(
            dir,
            c.as_ptr(),
            flags | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            libc::c_uint::from(mode),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

fn euid() -> u32 {
    // SAFETY: geteuid cannot fail and has no preconditions.
    unsafe { libc::geteuid() }
}

/// Refuse a folder or file that another user owns or that group or others may write.
fn check_owner_and_mode(m: &std::fs::Metadata, shown: &Path) -> Result<(), Refused> {
    if m.uid() != euid() {
        return Err(Refused::Unsafe(format!(
            "{} is owned by another user (uid {}); it was not loaded",
            shown.display(),
            m.uid()
        )));
    }
    let mode = m.mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(Refused::Unsafe(format!(
            "{} is writable by other users (mode {mode:o}); it was not loaded",
            shown.display()
        )));
    }
    Ok(())
}

fn walk_error(e: io::Error, shown: &Path, what: &str) -> Refused {
    // O_DIRECTORY | O_NOFOLLOW on a link gives ENOTDIR; name the link for what it is (the
    // path is looked at only to word the refusal).
    let link = || std::fs::symlink_metadata(shown).is_ok_and(|m| m.file_type().is_symlink());
    match e.raw_os_error() {
        Some(libc::ENOENT) => Refused::Missing(shown.to_path_buf()),
        Some(libc::ELOOP) | Some(libc::ENOTDIR)
            if e.raw_os_error() == Some(libc::ELOOP) || link() =>
        {
            Refused::Unsafe(format!(
                "{} is a symbolic link; hermes does not follow links inside the plugins folder",
                shown.display()
            ))
        }
        Some(libc::ENOTDIR) => Refused::Unsafe(format!("{} is not a {what}", shown.display())),
        _ => Refused::Unsafe(format!("cannot open {}: {e}", shown.display())),
    }
}

/// `HERMES_HOME/plugins`, open.
pub struct PluginsDir {
    dir: File,
    path: PathBuf,
}

impl PluginsDir {
    /// Open `HERMES_HOME/plugins` (not a link, owned by this user, not writable by others).
    pub fn open(home: &Path) -> Result<PluginsDir, Refused> {
        let path = home.join("plugins");
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| walk_error(e, &path, "folder"))?;
        let m = dir
            .metadata()
            .map_err(|e| Refused::Unsafe(format!("cannot read {}: {e}", path.display())))?;
        check_owner_and_mode(&m, &path)?;
        Ok(PluginsDir { dir, path })
    }

    /// Create `HERMES_HOME/plugins` (0700) when missing, then open it.
    pub fn create(home: &Path) -> Result<PluginsDir, Refused> {
        let path = home.join("plugins");
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                crate::fsutil::create_private_dir(&path).map_err(|e| {
                    Refused::Unsafe(format!("cannot create {}: {e}", path.display()))
                })?;
            }
            _ => {}
        }
        PluginsDir::open(home)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Walk to the folder holding `rel`'s file, checking each folder on the way; with
    /// `create`, make missing folders (0700).
    fn leaf_dir(&self, rel: &str, create: bool) -> Result<(File, OsString, PathBuf), Refused> {
        let comps = split(rel).map_err(Refused::Unsafe)?;
        let (file, dirs) = comps
            .split_last()
            .expect("split gives at least two components");
        let mut cur = self
            .dir
            .try_clone()
            .map_err(|e| Refused::Unsafe(format!("cannot open {}: {e}", self.path.display())))?;
        let mut shown = self.path.clone();
        for d in dirs {
            shown.push(d);
            if create {
                let c = cstr(d).map_err(|e| walk_error(e, &shown, "folder"))?;
                // SAFETY: plain FFI call with a valid fd and NUL-terminated name.
                let r = unsafe { libc::mkdirat(cur.as_raw_fd(), c.as_ptr(), 0o700) };
                if r != 0 {
                    let e = io::Error::last_os_error();
                    if e.raw_os_error() != Some(libc::EEXIST) {
                        return Err(walk_error(e, &shown, "folder"));
                    }
                }
            }
            let next = openat(cur.as_raw_fd(), d, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                .map_err(|e| walk_error(e, &shown, "folder"))?;
            let m = next
                .metadata()
                .map_err(|e| Refused::Unsafe(format!("cannot read {}: {e}", shown.display())))?;
            check_owner_and_mode(&m, &shown)?;
            cur = next;
        }
        shown.push(file);
        Ok((cur, file.to_os_string(), shown))
    }

    /// Open the library `rel` names for reading and loading.
    pub fn open_library(&self, rel: &str) -> Result<Library, Refused> {
        let (dir, name, shown) = self.leaf_dir(rel, false)?;
        let file = openat(dir.as_raw_fd(), &name, libc::O_RDONLY, 0)
            .map_err(|e| walk_error(e, &shown, "file"))?;
        let m = file
            .metadata()
            .map_err(|e| Refused::Unsafe(format!("cannot read {}: {e}", shown.display())))?;
        if !m.file_type().is_file() {
            return Err(Refused::Unsafe(format!(
                "{} is not a regular file",
                shown.display()
            )));
        }
        check_owner_and_mode(&m, &shown)?;
        Ok(Library {
            identity: Identity::from_meta(&m),
            file,
            path: shown,
        })
    }

    /// Create a staging file for an install, called `file_name` (a library may look at its
    /// own file name), in a new folder with a random name: both made with `O_EXCL` semantics
    /// (an existing file or link at either name is an error, never written through), 0700.
    /// Removed on drop unless placed.
    pub fn staging(&self, file_name: &OsStr) -> io::Result<Staging<'_>> {
        for _ in 0..8 {
            let hex = crate::secret::random_hex(12)
                .map_err(|e| io::Error::other(e.message().to_string()))?;
            match self.staging_named(OsStr::new(&format!(".staging-{hex}")), file_name) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                r => return r,
            }
        }
        Err(io::Error::from(io::ErrorKind::AlreadyExists))
    }

    /// [`PluginsDir::staging`] with a given folder name.
    pub fn staging_named(&self, dir_name: &OsStr, file_name: &OsStr) -> io::Result<Staging<'_>> {
        let plain = Path::new(file_name).components().count() == 1
            && matches!(
                Path::new(file_name).components().next(),
                Some(Component::Normal(_))
            );
        let file_name = if plain {
            file_name
        } else {
            OsStr::new("plugin.so")
        };
        let c = cstr(dir_name)?;
        // SAFETY: plain FFI call with a valid fd and NUL-terminated name. mkdir never follows
        // a link: an existing entry of that name is EEXIST.
        if unsafe { libc::mkdirat(self.dir.as_raw_fd(), c.as_ptr(), 0o700) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let cleanup = |e: io::Error| {
            // SAFETY: valid fd and name; removes only the (empty) folder just made.
            unsafe { libc::unlinkat(self.dir.as_raw_fd(), c.as_ptr(), libc::AT_REMOVEDIR) };
            e
        };
        let folder = openat(
            self.dir.as_raw_fd(),
            dir_name,
            libc::O_RDONLY | libc::O_DIRECTORY,
            0,
        )
        .map_err(cleanup)?;
        // The folder's own lock says "an install is using this": a cleanup under the plugins
        // lock leaves a locked staging folder alone (see [`clean_staging`]).
        // SAFETY: flock on a valid fd.
        unsafe { libc::flock(folder.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        let file = openat(
            folder.as_raw_fd(),
            file_name,
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL,
            0o700,
        )
        .map_err(cleanup)?;
        use std::os::unix::fs::PermissionsExt;
        let staging = Staging {
            dir: self,
            folder_name: dir_name.to_os_string(),
            folder,
            name: file_name.to_os_string(),
            file,
            placed: false,
        };
        // The mode given to open() is filtered by the umask.
        staging
            .file
            .set_permissions(std::fs::Permissions::from_mode(0o700))?;
        Ok(staging)
    }

    /// Remove the library `rel` names, then its folders while they are empty. Never follows a
    /// link: a link on the way, or in place of the library, is refused and left alone.
    /// Returns false when there was nothing to remove.
    pub fn remove_library(&self, rel: &str) -> Result<bool, Refused> {
        let comps = split(rel).map_err(Refused::Unsafe)?;
        let (file, dirs) = comps
            .split_last()
            .expect("split gives at least two components");
        let mut chain = vec![self
            .dir
            .try_clone()
            .map_err(|e| Refused::Unsafe(format!("cannot open {}: {e}", self.path.display())))?];
        let mut shown = self.path.clone();
        for d in dirs {
            shown.push(d);
            let parent = chain.last().expect("chain starts non-empty").as_raw_fd();
            match openat(parent, d, libc::O_RDONLY | libc::O_DIRECTORY, 0) {
                Ok(f) => chain.push(f),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(false),
                Err(e) => return Err(walk_error(e, &shown, "folder")),
            }
        }
        shown.push(file);
        let leaf = chain.last().expect("chain starts non-empty").as_raw_fd();
        let c = cstr(file).map_err(|e| walk_error(e, &shown, "file"))?;
        // SAFETY: a zeroed stat is a valid out-buffer; fd and name are valid.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::fstatat(leaf, c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
        let removed = if r != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ENOENT) {
                return Err(walk_error(e, &shown, "file"));
            }
            false
        } else {
            if st.st_mode & libc::S_IFMT != libc::S_IFREG {
                return Err(Refused::Unsafe(format!(
                    "{} is not a regular file; it was left alone",
                    shown.display()
                )));
            }
            // SAFETY: valid fd and name; unlinkat never follows the last component.
            if unsafe { libc::unlinkat(leaf, c.as_ptr(), 0) } != 0 {
                return Err(Refused::Unsafe(format!(
                    "cannot remove {}: {}",
                    shown.display(),
                    io::Error::last_os_error()
                )));
            }
            true
        };
        // Folders, deepest first, while empty (rmdir refuses a non-empty one).
        for (i, d) in dirs.iter().enumerate().rev() {
            let Ok(c) = cstr(d) else { break };
            // SAFETY: valid fd and name.
            if unsafe { libc::unlinkat(chain[i].as_raw_fd(), c.as_ptr(), libc::AT_REMOVEDIR) } != 0
            {
                break;
            }
        }
        Ok(removed)
    }
}

/// How old an unlocked staging folder must be before [`clean_staging`] removes it: an install
/// locks its folder right after making it, so only a folder younger than this can be a live
/// one that has not locked it yet.
const STAGING_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Remove what killed installs left in `plugins/`: `.staging-*` folders that no install holds
/// (an install keeps its folder locked until it is done) and that are older than
/// [`STAGING_GRACE`]. Only regular files inside such a folder and the folder itself are
/// removed, through the folder's own descriptor; a link is removed as a link, never followed.
/// Call it under the plugins lock. Best effort: what cannot be removed stays.
pub fn clean_staging(home: &Path) {
    let Ok(dir) = PluginsDir::open(home) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(&dir.path) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.as_bytes().starts_with(b".staging-") {
            continue;
        }
        let Ok(c) = cstr(&name) else { continue };
        let folder = match openat(
            dir.dir.as_raw_fd(),
            &name,
            libc::O_RDONLY | libc::O_DIRECTORY,
            0,
        ) {
            Ok(f) => f,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTDIR) | Some(libc::ELOOP)) => {
                // SAFETY: valid fd and name; unlinkat never follows the last component.
                unsafe { libc::unlinkat(dir.dir.as_raw_fd(), c.as_ptr(), 0) };
                continue;
            }
            Err(_) => continue,
        };
        // SAFETY: flock on a valid fd.
        if unsafe { libc::flock(folder.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            continue; // an install is using it
        }
        let young = folder
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_none_or(|age| age < STAGING_GRACE);
        if young {
            continue;
        }
        if let Ok(inner) = std::fs::read_dir(dir.path.join(&name)) {
            for e in inner.flatten() {
                if let Ok(ci) = cstr(&e.file_name()) {
                    // SAFETY: valid fd and name; removes an entry of this very folder (a
                    // folder inside is refused by unlinkat without AT_REMOVEDIR).
                    unsafe { libc::unlinkat(folder.as_raw_fd(), ci.as_ptr(), 0) };
                }
            }
        }
        // SAFETY: valid fd and name; rmdir removes the folder only when empty.
        unsafe { libc::unlinkat(dir.dir.as_raw_fd(), c.as_ptr(), libc::AT_REMOVEDIR) };
    }
}

/// A library opened through the confined walk.
pub struct Library {
    /// The open file (what gets hashed and loaded).
    pub file: File,
    /// Its path, for messages.
    pub path: PathBuf,
    /// Its identity when opened.
    pub identity: Identity,
}

/// A staging file in a private folder in `plugins/`; removed on drop unless placed.
pub struct Staging<'a> {
    dir: &'a PluginsDir,
    folder_name: OsString,
    folder: File,
    name: OsString,
    file: File,
    placed: bool,
}

impl Staging<'_> {
    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }
    /// Its path (for the trial load in a child process).
    pub fn path(&self) -> PathBuf {
        self.dir.path.join(&self.folder_name).join(&self.name)
    }
    /// Rename it to `rel` (folders created 0700 as needed, none of them a link). Returns the
    /// open file, now at its place.
    pub fn place(mut self, rel: &str) -> Result<File, Refused> {
        let (leaf, name, shown) = self.dir.leaf_dir(rel, true)?;
        let from = cstr(&self.name).map_err(|e| walk_error(e, &shown, "file"))?;
        let to = cstr(&name).map_err(|e| walk_error(e, &shown, "file"))?;
        // SAFETY: valid fds and NUL-terminated names.
        let r = unsafe {
            libc::renameat(
                self.folder.as_raw_fd(),
                from.as_ptr(),
                leaf.as_raw_fd(),
                to.as_ptr(),
            )
        };
        if r != 0 {
            return Err(Refused::Unsafe(format!(
                "cannot move the new library to {}: {}",
                shown.display(),
                io::Error::last_os_error()
            )));
        }
        // SAFETY: valid fd.
        unsafe { libc::fsync(leaf.as_raw_fd()) };
        self.placed = true;
        self.file
            .try_clone()
            .map_err(|e| Refused::Unsafe(format!("cannot reopen {}: {e}", shown.display())))
    }
}

impl Drop for Staging<'_> {
    fn drop(&mut self) {
        if !self.placed {
            if let Ok(c) = cstr(&self.name) {
                // SAFETY: valid fd and name; removes only the staging file itself.
                unsafe { libc::unlinkat(self.folder.as_raw_fd(), c.as_ptr(), 0) };
            }
        }
        if let Ok(c) = cstr(&self.folder_name) {
            // SAFETY: valid fd and name; rmdir removes the folder only when empty.
            unsafe { libc::unlinkat(self.dir.dir.as_raw_fd(), c.as_ptr(), libc::AT_REMOVEDIR) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn home() -> (tempfile::TempDir, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let h = t.path().join("home");
        std::fs::create_dir(&h).unwrap();
        (t, h)
    }

    #[test]
    fn only_plain_paths_inside_plugins_are_accepted() {
        assert!(split("plugins/a/1.0/liba.so").is_ok());
        for bad in [
            "plugins/../x/liba.so",
            "plugins/a/../../x",
            "/etc/passwd",
            "plugins/liba.so",
            "other/a/liba.so",
            "plugins/./a/liba.so",
            "plugins/a/1.0/lib\0a.so",
            "",
        ] {
            assert!(split(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn a_staging_file_is_never_created_through_an_existing_link() {
        let (t, h) = home();
        let dir = PluginsDir::create(&h).unwrap();
        let victim = t.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        symlink(&victim, h.join("plugins/.staging-planted")).unwrap();
        let e = dir
            .staging_named(OsStr::new(".staging-planted"), OsStr::new("liba.so"))
            .err()
            .expect("an existing name is refused");
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        // A random name is created, 0700, and removed when dropped.
        let s = dir.staging(OsStr::new("liba.so")).unwrap();
        let p = s.path();
        assert_eq!(p.file_name().unwrap(), "liba.so");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o700
        );
        drop(s);
        assert!(!p.exists());
        assert!(!p.parent().unwrap().exists());
    }

    #[test]
    fn removal_never_follows_a_link() {
        let (t, h) = home();
        let dir = PluginsDir::create(&h).unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("liba.so"), b"x").unwrap();
        symlink(&outside, h.join("plugins/a")).unwrap();
        let e = dir.remove_library("plugins/a/liba.so").unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(outside.join("liba.so").exists());
        // A link in place of the library is not followed either.
        std::fs::remove_file(h.join("plugins/a")).unwrap();
        std::fs::create_dir_all(h.join("plugins/b/1")).unwrap();
        symlink(outside.join("liba.so"), h.join("plugins/b/1/libb.so")).unwrap();
        assert!(dir.remove_library("plugins/b/1/libb.so").is_err());
        assert!(outside.join("liba.so").exists());
    }

    #[test]
    fn loose_folders_are_refused() {
        let (_t, h) = home();
        let dir = PluginsDir::create(&h).unwrap();
        std::fs::create_dir_all(h.join("plugins/a/1")).unwrap();
        std::fs::write(h.join("plugins/a/1/liba.so"), b"x").unwrap();
        std::fs::set_permissions(
            h.join("plugins/a/1/liba.so"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        std::fs::set_permissions(h.join("plugins/a"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        std::fs::set_permissions(
            h.join("plugins/a/1"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        assert!(dir.open_library("plugins/a/1/liba.so").is_ok());
        std::fs::set_permissions(h.join("plugins/a"), std::fs::Permissions::from_mode(0o777))
            .unwrap();
        let e = dir.open_library("plugins/a/1/liba.so").err().unwrap();
        assert!(e.to_string().contains("writable by other users"), "{e}");
    }
}
