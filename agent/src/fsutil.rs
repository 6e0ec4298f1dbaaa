//! Files written outside the store: temp file, fsync, rename, fsync the directory.

use std::io::Write;
use std::path::Path;

/// Rename `tmp` over `dest` durably: fsync the file, rename, fsync the directory.
pub fn durable_rename(tmp: &Path, dest: &Path) -> std::io::Result<()> {
    std::fs::File::open(tmp)?.sync_all()?;
    std::fs::rename(tmp, dest)?;
    if let Some(dir) = dest.parent() {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Write a whole file durably.
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dest.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
    }
    durable_rename(&tmp, dest)
}
