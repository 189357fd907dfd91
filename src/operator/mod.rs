//! The Kubernetes operator: the TenantImport resource and its controller.

pub mod crd;
pub mod fetch;
pub mod lease;

/// Options of `run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {}

/// Runs the controller.
///
/// # Errors
///
/// Returns an error when the controller cannot start.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let _ = args;
    anyhow::bail!("the controller is not built yet")
}

/// Prints the CRD as YAML.
///
/// # Errors
///
/// Returns an error when the CRD cannot be encoded.
pub fn print_crd() -> anyhow::Result<()> {
    let yaml = crd::crd_yaml()?;
    write_stdout(&yaml);
    Ok(())
}

#[allow(clippy::print_stdout)]
fn write_stdout(text: &str) {
    print!("{text}");
}
