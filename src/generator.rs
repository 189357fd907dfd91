//! A deterministic generator of synthetic tenant archives.

use std::path::PathBuf;

/// Options of `generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// The archive file to write.
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
}

/// Runs `generate`.
///
/// # Errors
///
/// Returns an error when the archive cannot be written.
pub fn run(args: &GenerateArgs) -> anyhow::Result<()> {
    let _ = args;
    anyhow::bail!("the generator is not built yet")
}
