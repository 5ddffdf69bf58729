//! Secret files as the node reads them (`fsc_node::keys::read_secret`): created with mode 0600,
//! never readable by others, not even for a moment.

use crate::error::Error;

/// Writes a secret file with mode 0600 (created so, never world-readable in between).
pub fn write_secret(path: &std::path::Path, contents: &str) -> Result<(), Error> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| Error::Config(format!("cannot write {}: {e}", path.display())))?;
    file.write_all(contents.as_bytes())
        .and_then(|_| file.write_all(b"\n"))
        .map_err(|e| Error::Config(format!("cannot write {}: {e}", path.display())))
}
