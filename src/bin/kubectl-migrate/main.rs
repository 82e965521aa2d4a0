//! `kubectl migrate`: the command line for what YAML is clumsy at. Preview a
//! package, export a workspace, read an import's plan, start it, import
//! again, read the report, commit an object by hand. Everything goes through
//! the Kubernetes API with the user's kubeconfig; see docs/cli.md.
//!
//! Exit codes: 0 done; 1 the import failed, the package was refused or
//! `--wait` timed out; 2 the command line is wrong or the command does not
//! apply; 3 not found, forbidden, or the API server unreachable.

mod cluster;
mod commands;
mod failure;
mod pack;
mod render;
mod table;
mod transfer;

#[cfg(test)]
mod golden;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use ferry::api::{ExportMode, ObjectType};
use k8s_openapi::jiff::Timestamp;

use crate::cluster::Connection;
use crate::commands::{ExportArgs, Format, parse_duration, parse_time, parse_type};
use crate::failure::{Failure, code};

#[derive(Parser, Debug)]
#[command(
    name = "kubectl-migrate",
    bin_name = "kubectl migrate",
    version,
    about = "Move data-development workspace objects between workspaces with Ferry",
    long_about = "Move data-development workspace objects between workspaces with Ferry.\n\nWorks through the Kubernetes API with your kubeconfig, like kubectl. Exit codes: 0 done; 1 import failed, package refused or --wait timed out; 2 usage; 3 not found, forbidden or API server unreachable."
)]
struct Cli {
    #[command(flatten)]
    connection: Connection,
    /// Output format: human-readable tables (default), json or yaml. For
    /// `pack`: the package file to write (a .zip).
    #[arg(short = 'o', long, global = true, value_parser = parse_output, default_value = "table")]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

/// The `--wait` flags.
#[derive(clap::Args, Debug, Clone)]
struct Wait {
    /// Wait until the work finishes, printing progress.
    #[arg(long)]
    wait: bool,
    /// Give up waiting after this long (90s, 10m, 1h; 0 waits forever).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    timeout: Duration,
}

/// `-o`: an output format, or (for `pack`) the package file.
#[derive(Clone, Debug, PartialEq)]
enum Output {
    Format(Format),
    File(PathBuf),
}

fn parse_output(s: &str) -> Result<Output, String> {
    if s.to_ascii_lowercase().ends_with(".zip") {
        return Ok(Output::File(PathBuf::from(s)));
    }
    Format::from_str(s, true)
        .map(Output::Format)
        .map_err(|_| "expected table, json or yaml (or, for pack, the .zip file to write)".into())
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Mode {
    /// Every object.
    Full,
    /// Objects changed since --since.
    Incremental,
    /// Objects selected by --type and --name-filter.
    Custom,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show what a package holds: objects per type, compute resources,
    /// resource groups, source, digest and size; or why it was refused.
    Preview {
        /// The MigrationPackage.
        package: String,
        #[command(flatten)]
        wait: Wait,
    },
    /// Export a workspace's objects into a new MigrationPackage.
    Export {
        /// The source Workspace.
        workspace: String,
        /// Name of the MigrationPackage to create.
        #[arg(long)]
        name: String,
        #[arg(long, value_enum, default_value_t = Mode::Full)]
        mode: Mode,
        /// With --mode incremental: objects changed after this time
        /// (2026-10-01T00:00:00Z or 2026-10-01).
        #[arg(long, value_parser = parse_time)]
        since: Option<Timestamp>,
        /// With --mode custom: an object type to export (repeatable).
        #[arg(long = "type", value_name = "TYPE", value_parser = parse_type)]
        types: Vec<ObjectType>,
        /// With --mode custom: the real name of an object to export (repeatable).
        #[arg(long = "name-filter", value_name = "NAME")]
        names: Vec<String>,
        #[command(flatten)]
        wait: Wait,
    },
    /// Show an import task's plan: objects to create, conflicts, skips.
    Plan {
        /// The ImportTask.
        task: String,
        /// Every object of the plan (type, real name, action, dry-run,
        /// owner after import, project-name replacements, warnings), read
        /// from the task's report ConfigMaps.
        #[arg(long)]
        details: bool,
    },
    /// Start a suspended import task (sets spec.suspend to false).
    Start {
        /// The ImportTask.
        task: String,
        #[command(flatten)]
        wait: Wait,
    },
    /// Import a failed task again, resuming at the phase that failed.
    ImportAgain {
        /// The ImportTask.
        task: String,
        #[command(flatten)]
        wait: Wait,
    },
    /// Show an import's report: basic information, results, details, settings.
    Report {
        /// The ImportTask.
        task: String,
        /// Include every object's record (type, name, action, outcome, ...).
        #[arg(long)]
        details: bool,
    },
    /// Commit (or deploy) a workspace object by hand, for Basic and Standard
    /// editions, which do not commit imported objects automatically.
    Commit {
        /// KIND/NAME, with NAME the Kubernetes name or the real name
        /// (scheduledtask/load_orders).
        object: String,
        /// Deploy as well as commit.
        #[arg(long)]
        deploy: bool,
        #[command(flatten)]
        wait: Wait,
    },
    /// Upload a local package zip (up to 30 MB) and create a MigrationPackage
    /// of it. Through the API server in chunk ConfigMaps by default; to the
    /// operator's artifact endpoint with --endpoint.
    Upload {
        /// The zip file.
        file: PathBuf,
        /// Name of the MigrationPackage to create.
        #[arg(long)]
        name: String,
        /// The operator's artifact endpoint (a port-forward or Ingress)
        /// instead of the API server.
        #[arg(long, env = "FERRY_ARTIFACT_ENDPOINT")]
        endpoint: Option<String>,
    },
    /// Pack FlowSpec files and code files into a package zip (-o FILE.zip),
    /// locally: one document per object, dependencies kept, the manifest
    /// computed, the result verified as an upload would be.
    Pack {
        /// FlowSpec documents (.yaml, .yml, .json) and the scripts' code
        /// files, or directories holding them.
        #[arg(required = true)]
        sources: Vec<PathBuf>,
        /// The source project: nodes without declared outputs get
        /// DataWorks' default output <project>.<name>, and the package's
        /// source.projectName is this.
        #[arg(long)]
        project: Option<String>,
        /// The source tenant, for the manifest.
        #[arg(long)]
        tenant: Option<String>,
        /// The source workspace, for the manifest.
        #[arg(long)]
        workspace: Option<String>,
        /// The source region, for the manifest.
        #[arg(long)]
        region: Option<String>,
    },
    /// Download a package's zip, checked against its digest.
    Download {
        /// The MigrationPackage.
        package: String,
        /// Where to write the zip (default: PACKAGE.zip). Positional, since
        /// `-o` is the output format as in kubectl.
        file: Option<PathBuf>,
        /// The operator's artifact endpoint (a port-forward or Ingress)
        /// instead of the API server.
        #[arg(long, env = "FERRY_ARTIFACT_ENDPOINT")]
        endpoint: Option<String>,
        /// Through the API server: give up waiting for the operator's
        /// chunks after this long (90s, 10m; 0 waits forever).
        #[arg(long, default_value = "5m", value_parser = parse_duration)]
        timeout: Duration,
    },
}

async fn run(cli: Cli) -> Result<i32, Failure> {
    if let Command::Pack {
        sources,
        project,
        tenant,
        workspace,
        region,
    } = &cli.command
    {
        let Output::File(out) = &cli.output else {
            return Err(Failure::usage(
                "pack needs -o FILE.zip, the package to write",
            ));
        };
        let args = pack::PackArgs {
            sources: sources.clone(),
            out: out.clone(),
            project: project.clone(),
            tenant: tenant.clone(),
            workspace: workspace.clone(),
            region: region.clone(),
        };
        let packed = pack::pack(&args)?;
        commands::say(&pack::summary(&args, &packed));
        return Ok(failure::code::OK);
    }
    let format = match &cli.output {
        Output::Format(f) => *f,
        Output::File(f) => {
            return Err(Failure::usage(format!(
                "-o {}: only pack writes a file; -o takes table, json or yaml",
                f.display()
            )));
        }
    };
    // A file that cannot be read, or is over the upload limit, is refused
    // before any connection.
    if let Command::Upload { file, .. } = &cli.command {
        let size = std::fs::metadata(file)
            .map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display())))?
            .len();
        if size > transfer::MAX_UPLOAD_BYTES {
            return Err(Failure::usage(format!(
                "{} is larger than the 30 MB local-upload limit ({} bytes): nothing was sent; put larger packages in an object store",
                file.display(),
                transfer::MAX_UPLOAD_BYTES
            )));
        }
    }

    let c = cli.connection.connect().await?;
    match cli.command {
        Command::Preview { package, wait } => {
            commands::preview(&c, format, &package, wait.wait, wait.timeout).await
        }
        Command::Export {
            workspace,
            name,
            mode,
            since,
            types,
            names,
            wait,
        } => {
            let mode = match mode {
                Mode::Full => ExportMode::Full,
                Mode::Incremental => ExportMode::Incremental,
                Mode::Custom => ExportMode::Custom,
            };
            let args = ExportArgs {
                workspace,
                name,
                mode,
                since,
                types,
                names,
                wait: wait.wait,
                timeout: wait.timeout,
            };
            commands::export(&c, format, args).await
        }
        Command::Plan { task, details } => commands::plan(&c, format, &task, details).await,
        Command::Start { task, wait } => {
            commands::start(&c, format, &task, wait.wait, wait.timeout).await
        }
        Command::ImportAgain { task, wait } => {
            commands::import_again(&c, format, &task, wait.wait, wait.timeout).await
        }
        Command::Report { task, details } => commands::report(&c, format, &task, details).await,
        Command::Commit {
            object,
            deploy,
            wait,
        } => commands::commit(&c, format, &object, deploy, wait.wait, wait.timeout).await,
        Command::Upload {
            file,
            name,
            endpoint,
        } => {
            match endpoint {
                Some(endpoint) => {
                    let digest = transfer::upload(&c, &endpoint, &file, &name).await?;
                    println!(
                        "migrationpackage/{name} created from {} ({digest})",
                        file.display()
                    );
                }
                None => {
                    let (digest, chunks) = transfer::upload_chunks(&c, &file, &name).await?;
                    println!(
                        "migrationpackage/{name} created from {} ({digest}, {}); the operator verifies it next: kubectl migrate preview {name} -n {} --wait",
                        file.display(),
                        ferry_engine::ledger::plural(chunks as usize, "chunk", "chunks"),
                        c.namespace
                    );
                }
            }
            Ok(failure::code::OK)
        }
        Command::Pack { .. } => unreachable!("handled before connecting"),
        Command::Download {
            package,
            file,
            endpoint,
            timeout,
        } => {
            let file = file.unwrap_or_else(|| PathBuf::from(format!("{package}.zip")));
            let digest = match endpoint {
                Some(endpoint) => transfer::download(&c, &endpoint, &package, &file).await?,
                None => {
                    transfer::download_chunks(&c, &package, &file, timeout)
                        .await?
                        .0
                }
            };
            println!("{} written ({digest})", file.display());
            Ok(failure::code::OK)
        }
    }
}

fn main() {
    // clap exits 2 on a usage error and 0 for --help and --version.
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(code::API);
        }
    };
    let exit = match runtime.block_on(run(cli)) {
        Ok(c) => c,
        Err(f) => {
            eprintln!("error: {}", f.message);
            f.code
        }
    };
    drop(runtime);
    std::process::exit(exit);
}

#[cfg(test)]
mod cli_tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn usage_errors_exit_2() {
        let e = Cli::try_parse_from(["kubectl-migrate", "export", "ws"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let e = Cli::try_parse_from(["kubectl-migrate", "start"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli = Cli::try_parse_from([
            "kubectl-migrate",
            "report",
            "q4",
            "-n",
            "sales-prod",
            "--details",
            "-o",
            "json",
            "--context",
            "prod",
        ])
        .unwrap();
        assert_eq!(cli.connection.namespace.as_deref(), Some("sales-prod"));
        assert_eq!(cli.connection.context.as_deref(), Some("prod"));
        assert_eq!(cli.output, Output::Format(Format::Json));
    }

    #[test]
    fn export_takes_repeated_types_and_names() {
        let cli = Cli::try_parse_from([
            "kubectl-migrate",
            "export",
            "sales-dev",
            "--name",
            "q4",
            "--mode",
            "custom",
            "--type",
            "table",
            "--type",
            "ScheduledTask",
            "--name-filter",
            "orders",
        ])
        .unwrap();
        let Command::Export { types, names, .. } = cli.command else {
            panic!("export")
        };
        assert_eq!(types, [ObjectType::Table, ObjectType::ScheduledTask]);
        assert_eq!(names, ["orders"]);
    }
}
