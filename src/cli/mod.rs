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
    /// Check saved state (handle keys, the handle index) against the exports'
    /// trees, with the server stopped. Exit 1 if anything is wrong.
    CheckState {
        /// The server's config file (its exports and state_dir).
        #[arg(long, conflicts_with_all = ["export", "state_dir"])]
        config: Option<PathBuf>,
        /// Zero-config mode: the exported directory...
        #[arg(long, requires = "state_dir", required_unless_present = "config")]
        export: Option<PathBuf>,
        /// ...its export name [default: its absolute path]...
        #[arg(long)]
        name: Option<String>,
        /// ...and its state directory.
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Print the reports as JSON.
        #[arg(long)]
        json: bool,
    },
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

fn check_state(
    config: Option<PathBuf>,
    export: Option<PathBuf>,
    name: Option<String>,
    state_dir: Option<PathBuf>,
    json: bool,
) -> ExitCode {
    let (exports, state_dir): (Vec<(String, PathBuf)>, PathBuf) = match (config, export, state_dir)
    {
        (Some(file), _, _) => match Config::load(&file) {
            Ok(c) => match c.state_dir {
                Some(d) => (c.exports.into_iter().map(|e| (e.name, e.path)).collect(), d),
                None => {
                    eprintln!(
                        "volnfs check-state: {}: no state_dir, so no saved state to check",
                        file.display()
                    );
                    return ExitCode::FAILURE;
                }
            },
            Err(e) => {
                eprintln!("volnfs check-state: {e}");
                return ExitCode::FAILURE;
            }
        },
        (None, Some(dir), Some(state)) => {
            let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
            let name = name.unwrap_or_else(|| dir.to_string_lossy().into_owned());
            (vec![(name, dir)], state)
        }
        _ => {
            eprintln!("volnfs check-state: give --config FILE, or --export DIR --state-dir DIR");
            return ExitCode::from(2);
        }
    };
    let reports: Vec<_> = exports
        .iter()
        .map(|(n, p)| volnfs::fs::check::check_export(n, p, &state_dir))
        .collect();
    let ok = reports.iter().all(|r| r.ok());
    if json {
        println!("{}", serde_json::to_string(&reports).unwrap_or_default());
    } else {
        for r in &reports {
            println!(
                "{}: {} ({}): {} entries, {} links current, {} stale (forgotten on use), {} unreachable{}",
                r.export,
                if r.ok() { "OK" } else { "PROBLEMS" },
                if r.clean { "closed cleanly" } else { "not closed cleanly: verified on use" },
                r.entries,
                r.links_current,
                r.links_stale,
                r.entries_unreachable,
                if r.index.as_os_str().is_empty() { String::new() } else { format!("; {}", r.index.display()) }
            );
            for p in &r.problems {
                println!("  {p}");
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

pub fn main() -> ExitCode {
    match Cli::parse().cmd {
        Cmd::Serve(args) => serve::run(args),
        Cmd::Ctl(args) => ctl::run(&args),
        Cmd::CheckConfig { file } => check_config(&file),
        Cmd::CheckState {
            config,
            export,
            name,
            state_dir,
            json,
        } => check_state(config, export, name, state_dir, json),
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
