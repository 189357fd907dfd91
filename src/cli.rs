//! The command line: subcommands, shared option groups, output and exit codes.
//!
//! Exit codes are a contract for scripts: 0 imported, 3 conflict, 4 lock timeout,
//! 5 invalid archive, 1 any other failure, and 2 for a usage error (clap's own).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::archive::Limits;
use crate::db::{DEFAULT_DATABASE_URL, Database};
use crate::engine::{Engine, ImportReport, ImportRequest, Outcome, ReportingConfig};

/// Exit code of an import that ended in a conflict.
pub const EXIT_CONFLICT: u8 = 3;
/// Exit code of an import that timed out waiting for the lock.
pub const EXIT_LOCK_TIMEOUT: u8 = 4;
/// Exit code of an import of an invalid archive.
pub const EXIT_INVALID: u8 = 5;
/// Exit code of any other failure.
pub const EXIT_FAILURE: u8 = 1;

/// Imports contact-center tenant archives into a cluster's configuration database.
#[derive(Debug, Parser)]
#[command(name = "tenant-operator", version, about)]
pub struct Cli {
    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "LOG_FORMAT")]
    pub log_format: LogFormat,

    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import a tenant archive into the configuration database.
    Import(ImportArgs),
    /// Export one tenant as a format-3 archive.
    Export(ExportArgs),
    /// Create the configuration database schema, or upgrade it to the current version.
    Migrate(MigrateArgs),
    /// Write a deterministic synthetic tenant archive, for demos, tests and benchmarks.
    Generate(crate::generator::GenerateArgs),
    /// Serve the provider API routes over HTTP.
    Serve(crate::shim::ServeArgs),
    /// Run the Kubernetes controller for TenantImport resources.
    Run(crate::operator::RunArgs),
    /// Print the TenantImport CustomResourceDefinition as YAML.
    Crd,
    /// Print one install manifest: the CRD, namespace, RBAC and Deployment.
    Manifests(crate::deploy::ManifestArgs),
}

/// Log output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Report output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A short human summary.
    Text,
    /// One JSON object.
    Json,
}

/// Options that select the configuration database.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Configuration database URL: `postgres://...` or `sqlite://PATH`. Without it, an
    /// embedded SQLite database in ./tenant-operator-data/ is created on first use.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,

    /// PostgreSQL server URL on which reporting databases are created; defaults to the
    /// configuration database's server.
    #[arg(long, env = "REPORTING_DATABASE_URL", hide_env_values = true)]
    pub reporting_database_url: Option<String>,

    /// Prefix of reporting database names; the tenant GUID in hex follows it.
    #[arg(
        long,
        env = "REPORTING_DATABASE_PREFIX",
        default_value = "tenant_report_"
    )]
    pub reporting_database_prefix: String,
}

/// Archive resource limits.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Maximum size of an archive file, in bytes.
    #[arg(long, env = "ARCHIVE_MAX_BYTES", default_value_t = Limits::default().max_archive_bytes)]
    pub archive_max_bytes: u64,

    /// Maximum total uncompressed size of an archive's entries, in bytes.
    #[arg(long, env = "ARCHIVE_MAX_UNCOMPRESSED_BYTES", default_value_t = Limits::default().max_total_uncompressed_bytes)]
    pub archive_max_uncompressed_bytes: u64,

    /// Maximum uncompressed size of one archive entry, in bytes.
    #[arg(long, env = "ARCHIVE_MAX_ENTRY_BYTES", default_value_t = Limits::default().max_entry_bytes)]
    pub archive_max_entry_bytes: u64,

    /// Maximum ratio of uncompressed to compressed size of one entry.
    #[arg(long, env = "ARCHIVE_MAX_COMPRESSION_RATIO", default_value_t = Limits::default().max_compression_ratio)]
    pub archive_max_compression_ratio: u64,

    /// Maximum number of entries in an archive.
    #[arg(long, env = "ARCHIVE_MAX_ENTRIES", default_value_t = Limits::default().max_entries)]
    pub archive_max_entries: u64,

    /// Maximum nesting depth of a JSON document in an archive.
    #[arg(long, env = "ARCHIVE_MAX_JSON_DEPTH", default_value_t = Limits::default().max_json_depth)]
    pub archive_max_json_depth: u32,

    /// Maximum size of one object, in bytes: one line of a JSON Lines file, one CSV row,
    /// or one element of a format 2 objects array.
    #[arg(long, env = "ARCHIVE_MAX_LINE_BYTES", default_value_t = Limits::default().max_line_bytes)]
    pub archive_max_line_bytes: u64,

    /// Maximum number of access numbers over all ranges of one archive.
    #[arg(long, env = "ARCHIVE_MAX_ACCESS_NUMBERS", default_value_t = Limits::default().max_access_numbers)]
    pub archive_max_access_numbers: u64,
}

/// Options of `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The configuration database.
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Archive limits.
    #[command(flatten)]
    pub limits: LimitArgs,

    /// Seconds to wait for another import to finish before giving up.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub lock_timeout: u64,

    /// An id that makes retries safe: retrying a committed import id reports Imported
    /// again instead of a conflict.
    #[arg(long)]
    pub import_id: Option<String>,

    /// Report format on standard output.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// The tenant archive (ZIP) to import.
    pub archive: PathBuf,
}

/// Options of `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The configuration database.
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// URL of the tenant to export.
    #[arg(long)]
    pub tenant_url: String,

    /// The archive file to write.
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
}

/// Options of `migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The configuration database.
    #[command(flatten)]
    pub database: DatabaseArgs,
}

impl LimitArgs {
    /// Returns the limits these options set.
    pub fn to_limits(&self) -> Limits {
        Limits {
            max_archive_bytes: self.archive_max_bytes,
            max_total_uncompressed_bytes: self.archive_max_uncompressed_bytes,
            max_entry_bytes: self.archive_max_entry_bytes,
            max_compression_ratio: self.archive_max_compression_ratio,
            max_entries: self.archive_max_entries,
            max_json_depth: self.archive_max_json_depth,
            max_line_bytes: self.archive_max_line_bytes,
            max_access_numbers: self.archive_max_access_numbers,
        }
    }
}

impl DatabaseArgs {
    /// Returns the reporting database settings these options set.
    pub fn reporting_config(&self) -> ReportingConfig {
        ReportingConfig {
            server_url: self.reporting_database_url.clone(),
            name_prefix: self.reporting_database_prefix.clone(),
        }
    }

    /// Connects to the configuration database and brings its schema up to date.
    ///
    /// # Errors
    ///
    /// Returns an error when the URL is invalid, the database is unreachable, or a
    /// migration fails.
    pub async fn connect(&self) -> anyhow::Result<Database> {
        let db = Database::connect(&self.database_url).await?;
        db.migrate().await?;
        Ok(db)
    }
}

/// Runs one parsed command line and returns the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::Import(args) => return import(args).await,
        Command::Export(args) => export(args).await,
        Command::Migrate(args) => migrate(args).await,
        Command::Generate(args) => crate::generator::run(&args),
        Command::Serve(args) => crate::shim::serve(args).await,
        Command::Run(args) => crate::operator::run(args).await,
        Command::Crd => crate::operator::print_crd(),
        Command::Manifests(args) => crate::deploy::print_install_manifest(args).map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "command failed");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Returns the exit code for an import verdict.
pub fn exit_code(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Imported => 0,
        Outcome::Conflict => EXIT_CONFLICT,
        Outcome::LockTimeout => EXIT_LOCK_TIMEOUT,
        Outcome::Invalid => EXIT_INVALID,
    }
}

async fn import(args: ImportArgs) -> ExitCode {
    let output = args.output;
    match run_import(args).await {
        Ok(report) => {
            print_report(&report, output);
            ExitCode::from(exit_code(report.outcome))
        }
        Err(error) => {
            let message = format!("{error:#}");
            tracing::error!(error = message, "import failed");
            if output == OutputFormat::Json {
                let failed = serde_json::json!({"outcome": "Failed", "message": message});
                write_stdout(&failed.to_string());
            }
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

async fn run_import(args: ImportArgs) -> anyhow::Result<ImportReport> {
    let db = args.database.connect().await?;
    let lock = db.standalone_lock();
    let engine = Engine::new(
        db,
        args.limits.to_limits(),
        args.database.reporting_config(),
    );
    let request = ImportRequest {
        archive: args.archive,
        import_id: args.import_id,
        lock_timeout: Duration::from_secs(args.lock_timeout),
    };
    Ok(engine.import(&request, &lock).await?)
}

async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let db = args.database.connect().await?;
    let summary = crate::export::export_tenant(&db, &args.tenant_url, &args.output).await?;
    tracing::info!(
        tenant_url = args.tenant_url,
        objects = summary.objects,
        numbers = summary.numbers,
        path = %args.output.display(),
        "tenant exported"
    );
    Ok(())
}

async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let db = Database::connect(&args.database.database_url).await?;
    db.migrate().await?;
    tracing::info!(
        schema_version = crate::db::SCHEMA_VERSION,
        "database schema is current"
    );
    Ok(())
}

fn print_report(report: &ImportReport, output: OutputFormat) {
    match output {
        OutputFormat::Json => match serde_json::to_string(report) {
            Ok(json) => write_stdout(&json),
            Err(error) => tracing::error!(error = %error, "failed to encode the report"),
        },
        OutputFormat::Text => write_stdout(&text_summary(report)),
    }
}

/// Formats the short human summary of an import.
pub fn text_summary(report: &ImportReport) -> String {
    let mut lines = vec![format!("{:?}: {}", report.outcome, report.message)];
    if let Some(tenant) = &report.tenant {
        lines.push(format!(
            "  tenant            {} ({}, {})",
            tenant.url, tenant.name, tenant.guid
        ));
    }
    if report.outcome == Outcome::Imported {
        let numbers = &report.access_numbers;
        lines.push(format!("  objects           {}", report.objects));
        lines.push(format!(
            "  access numbers    {} created, {} assigned, {} skipped",
            numbers.created, numbers.assigned, numbers.skipped
        ));
        for range in &report.skipped_ranges {
            lines.push(format!(
                "  skipped range     {}-{}",
                range.first, range.last
            ));
        }
        if let Some(name) = &report.reporting_database {
            lines.push(format!("  reporting db      {name}"));
        }
    }
    lines.join("\n")
}

#[allow(clippy::print_stdout)]
fn write_stdout(text: &str) {
    println!("{text}");
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
