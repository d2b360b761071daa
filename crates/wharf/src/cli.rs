//! The command line: distribution's commands (`serve`, `garbage-collect`) plus `htpasswd` and
//! `config check`. The only place besides `main.rs` that uses `anyhow`.

pub mod htpasswd;
pub mod logging;
pub mod progress;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{Config, Loaded};

/// wharf: a container image registry, drop-in successor to CNCF distribution.
#[derive(Debug, Parser)]
#[command(name = "wharf", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the registry API (no CONFIG: filesystem storage in ./wharf-data, port 5000).
    Serve {
        /// distribution's config.yml (version 0.1); REGISTRY_* variables override it.
        config: Option<PathBuf>,
    },
    /// Delete blobs no manifest references. Run it with writes stopped (read-only mode); the
    /// `gc:` section collects while serving instead. A progress bar shows on a terminal.
    GarbageCollect {
        /// Only report what would be deleted.
        #[arg(short = 'd', long)]
        dry_run: bool,
        /// Also delete manifests that no tag points at.
        #[arg(short = 'm', long)]
        delete_untagged: bool,
        /// Print only the summary.
        #[arg(short = 'q', long)]
        quiet: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// The registry's config.yml.
        config: PathBuf,
    },
    /// Print an htpasswd line, like Apache's `htpasswd -Bbn USER PASS`.
    Htpasswd(htpasswd::Args),
    /// Inspect configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigAction {
    /// Validate CONFIG (with REGISTRY_* overrides) and print the effective configuration,
    /// secrets masked.
    Check {
        /// The config.yml to check.
        config: PathBuf,
    },
}

fn load(path: Option<&PathBuf>) -> anyhow::Result<Loaded> {
    let loaded = match path {
        Some(p) => Config::load(p).with_context(|| format!("configuration {}", p.display()))?,
        None => Config::load_default().context("default configuration")?,
    };
    Ok(loaded)
}

fn report(loaded: &Loaded) {
    for w in &loaded.warnings {
        tracing::warn!("config: {w}");
    }
    for key in loaded.config.unsupported() {
        tracing::warn!(key = %key, "config: set but not supported by wharf yet; ignored");
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { config } => {
            let loaded = load(config.as_ref())?;
            let otel: Vec<(String, String)> = std::env::vars()
                .filter(|(k, _)| k.starts_with("OTEL_"))
                .collect();
            let mut reporting = crate::reporting::Reporting::start(&loaded.config, &otel)?;
            logging::init(&loaded.config.log, reporting.take_layers())?;
            report(&loaded);
            for note in reporting.notes() {
                tracing::info!("reporting: {note}");
            }
            tracing::info!(version = env!("CARGO_PKG_VERSION"), "starting wharf");
            let served =
                runtime()?.block_on(crate::server::serve(loaded.config, reporting.requests()));
            reporting.shutdown();
            served
        }
        Command::GarbageCollect {
            dry_run,
            delete_untagged,
            quiet,
            json,
            config,
        } => {
            let loaded = load(Some(&config))?;
            logging::init(&loaded.config.log, Vec::new())?;
            report(&loaded);
            let options = crate::gc::Options {
                dry_run,
                delete_untagged,
                keep_after: None,
            };
            let report = runtime()?.block_on(async {
                let registry = crate::server::build_registry(&loaded.config).await?;
                let progress = progress::for_stderr(quiet);
                anyhow::Ok(crate::gc::collect(&registry, options, progress.as_ref()).await?)
            })?;
            print_gc_report(&report, quiet, json)
        }
        Command::Htpasswd(args) => htpasswd::run(&args),
        Command::Config {
            action: ConfigAction::Check { config },
        } => {
            let loaded = load(Some(&config))?;
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            for key in loaded.config.unsupported() {
                eprintln!("warning: {key} is set but not supported by wharf yet; ignored");
            }
            print!("{}", loaded.config.redacted_yaml());
            Ok(())
        }
    }
}

fn print_gc_report(report: &crate::gc::Report, quiet: bool, json: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, report)?;
        writeln!(out)?;
        return Ok(());
    }
    if !quiet {
        for (repo, digest) in &report.manifests_deleted {
            writeln!(out, "{repo}: manifest eligible for deletion: {digest}")?;
        }
        for (digest, _) in &report.blobs_deleted {
            writeln!(out, "blob eligible for deletion: {digest}")?;
        }
    }
    writeln!(
        out,
        "{} blobs marked, {} blobs and {} manifests eligible for deletion, {} bytes{}",
        report.blobs_marked,
        report.blobs_deleted.len(),
        report.manifests_deleted.len(),
        report.bytes_freed,
        if report.dry_run {
            " (dry run: nothing deleted)"
        } else {
            " freed"
        }
    )?;
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
