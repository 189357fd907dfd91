//! The HTTP shim: the provider API routes over the import engine.

/// Options of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

/// Runs `serve`.
///
/// # Errors
///
/// Returns an error when the server cannot start.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let _ = args;
    anyhow::bail!("the HTTP shim is not built yet")
}
