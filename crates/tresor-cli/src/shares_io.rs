//! Reading shares from files or from the terminal without echo, and writing them with 0600.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use tresor_core::seal::Share;

/// Write a secret file readable only by its owner.
pub fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")?;
    Ok(())
}

/// Read shares: from the given files, else from standard input (one per line; prompted
/// without echo on a terminal) until `needed` shares are read. `check` is called on each share
/// as it is read, so a bad share is named at once.
pub fn read_shares(
    files: &[std::path::PathBuf],
    needed: usize,
    check: impl Fn(&Share) -> Result<()>,
) -> Result<Vec<Share>> {
    let mut out = Vec::new();
    for f in files {
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(f)
                .with_context(|| format!("cannot read share file {}", f.display()))?,
        );
        let share =
            Share::parse(text.trim()).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        check(&share).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        out.push(share);
    }
    if !files.is_empty() {
        return Ok(out);
    }
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    let mut lines = stdin.lock().lines();
    while out.len() < needed {
        let text = if tty {
            zeroize::Zeroizing::new(rpassword::prompt_password(format!(
                "Share {} of {needed}: ",
                out.len() + 1
            ))?)
        } else {
            match lines.next() {
                Some(l) => zeroize::Zeroizing::new(l?),
                None => bail!(
                    "standard input ended after {} of {needed} shares",
                    out.len()
                ),
            }
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        match Share::parse(text).and_then(|s| {
            check(&s).map_err(|e| {
                tresor_core::Error::new(
                    tresor_core::Rv::Vendor(tresor_core::error::vendor::BAD_SHARE),
                    e.to_string(),
                )
            })?;
            Ok(s)
        }) {
            Ok(s) => out.push(s),
            Err(e) if tty => eprintln!("rejected: {e}"),
            Err(e) => bail!("{e}"),
        }
    }
    Ok(out)
}
