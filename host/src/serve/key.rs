//! The gateway key: `HERMES_HOME/serve.key`, made on the first `hermes serve`, 0600, stable
//! across restarts so a tool configured once keeps working; `--rotate-key` replaces it.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use crate::config::Paths;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::secret::Secret;

/// Every key starts with this, so a leaked one is recognisable (and scannable) as a hermes key.
const PREFIX: &str = "hermes-gw-";
/// The key file is a few dozen bytes; anything larger is not ours.
const MAX_LEN: u64 = 256;

/// The key in `paths`, made (or, with `rotate`, replaced) when needed.
pub fn load_or_create(paths: &Paths, rotate: bool) -> Result<Secret> {
    let path = paths.home.join("serve.key");
    if !rotate {
        if let Some(k) = read(&path)? {
            return Ok(k);
        }
    }
    fsutil::create_private_dir(&paths.home)
        .map_err(|e| Error::io(format!("cannot create {}", paths.home.display()), e))?;
    let key = format!("{PREFIX}{}", crate::secret::random_hex(32)?);
    fsutil::write_atomic(&path, format!("{key}\n").as_bytes(), 0o600)
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    Ok(Secret::new(key))
}

/// The key in `path`; `None` when there is none yet. A key file that is not a private regular
/// file of this user, or does not hold a key, is refused rather than trusted or overwritten.
fn read(path: &Path) -> Result<Option<Secret>> {
    let fix = "replace it with `hermes serve --rotate-key`";
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::io(format!("cannot open {}", path.display()), e).with_help(fix))
        }
    };
    let meta = file
        .metadata()
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    if !meta.is_file() || meta.len() > MAX_LEN {
        return Err(
            Error::msg(format!("{} is not a gateway key file", path.display())).with_help(fix),
        );
    }
    if meta.mode() & 0o077 != 0 {
        return Err(Error::msg(format!(
            "{} can be read by other users, so the gateway key may be known to them",
            path.display()
        ))
        .with_help(fix));
    }
    let mut text = String::new();
    file.take(MAX_LEN)
        .read_to_string(&mut text)
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    let key = text.trim();
    let valid = key.len() == PREFIX.len() + 64
        && key.starts_with(PREFIX)
        && key[PREFIX.len()..].bytes().all(|b| b.is_ascii_hexdigit());
    if !valid {
        return Err(
            Error::msg(format!("{} does not hold a gateway key", path.display())).with_help(fix),
        );
    }
    Ok(Some(Secret::new(key)))
}
