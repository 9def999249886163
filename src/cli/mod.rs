//! The command line: `serve`, `ctl`, `check-config`, `zone-config`,
//! `zone-setup`. Parsing is clap's; each command is a thin call into the
//! library.

mod ctl;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use volnfs::config::{Config, ConfigError};

#[derive(Parser)]
#[command(
    name = "volnfs",
    version,
    about = "Userland NFSv3 server for ZFS volumes"
)]
pub struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve exports: from a config file, or one directory with --export.
    Serve(serve::ServeArgs),
    /// Talk to a running server's control socket (see README "Control socket").
    Ctl(ctl::CtlArgs),
    /// Validate a config file and report every problem with its key.
    CheckConfig { file: PathBuf },
    /// Write a config from zone metadata (every boot; see image/README.md).
    ZoneConfig {
        /// JSON object of metadata key -> value, as mdata-get printed it.
        #[arg(long)]
        metadata: PathBuf,
        /// The config file to write (replaced atomically).
        #[arg(long)]
        out: PathBuf,
        /// Where the delegated dataset is mounted.
        #[arg(long, default_value = volnfs::zone::EXPORTS_ROOT)]
        exports_root: PathBuf,
    },
    /// Prepare the delegated dataset (first boot; safe to repeat).
    ZoneSetup {
        #[arg(long)]
        metadata: PathBuf,
        /// The zfs command, by absolute path.
        #[arg(long, default_value = volnfs::sys::zfs::DEFAULT_ZFS_PATH)]
        zfs: PathBuf,
        #[arg(long, default_value = volnfs::zone::EXPORTS_ROOT)]
        exports_root: PathBuf,
    },
}

/// Prints a one-shot command's summary, or its error with the cause chain.
fn report<E: std::error::Error + Send + Sync + 'static>(r: Result<String, E>) -> ExitCode {
    match r {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("volnfs: {:#}", anyhow::Error::from(e));
            ExitCode::FAILURE
        }
    }
}

fn check_config(file: &std::path::Path) -> ExitCode {
    match Config::load(file) {
        Ok(c) => {
            println!("{}: OK ({} export(s))", file.display(), c.exports.len());
            ExitCode::SUCCESS
        }
        Err(ConfigError::Invalid { path, problems }) => {
            eprintln!("{}: {} problem(s):", path.display(), problems.len());
            for p in problems {
                eprintln!("  {p}");
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

pub fn main() -> ExitCode {
    match Cli::parse().cmd {
        Cmd::Serve(args) => serve::run(args),
        Cmd::Ctl(args) => ctl::run(&args),
        Cmd::CheckConfig { file } => check_config(&file),
        Cmd::ZoneConfig {
            metadata,
            out,
            exports_root,
        } => report(volnfs::zone::zone_config_command(
            &metadata,
            &exports_root,
            &out,
        )),
        Cmd::ZoneSetup {
            metadata,
            zfs,
            exports_root,
        } => {
            serve::init_logging(serve::LogFormat::Human);
            report(volnfs::zone::zone_setup_command(
                &metadata,
                &zfs,
                &exports_root,
            ))
        }
    }
}
