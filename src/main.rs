//! The `volnfs` command: `serve`, `check-config`, `zone-config`, `zone-setup`.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use tokio::signal::unix::{signal, SignalKind};

use volnfs::access::{Access, Cidr, ClientRule, Squash};
use volnfs::config::{self, Config, ConfigError};

#[derive(Parser)]
#[command(
    name = "volnfs",
    version,
    about = "Userland NFSv3 server for ZFS volumes"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
    /// JSON lines with bunyan's fields (v, level, name, hostname, pid, time, msg).
    Bunyan,
}

/// Names as in exports(5).
#[allow(clippy::enum_variant_names)]
#[derive(Clone, Copy, ValueEnum)]
enum SquashArg {
    RootSquash,
    NoRootSquash,
    AllSquash,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve exports: from a config file, or one directory with --export.
    Serve {
        /// JSON config file (see README "Configuration").
        #[arg(long, conflicts_with = "export")]
        config: Option<PathBuf>,
        /// Directory to export (zero-config mode).
        #[arg(long, required_unless_present = "config")]
        export: Option<PathBuf>,
        /// Export name clients mount [default: DIR's absolute path].
        #[arg(long)]
        name: Option<String>,
        /// Address to listen on (repeatable) [default: 127.0.0.1].
        #[arg(long)]
        listen: Vec<IpAddr>,
        /// NFS port [default: 2049 as root, 12049 otherwise; 0 = any].
        #[arg(long)]
        nfs_port: Option<u16>,
        /// MOUNT port [default: 20048 as root, 12048 otherwise; 0 = any].
        #[arg(long)]
        mount_port: Option<u16>,
        /// Portmapper port [default: 111 as root; off otherwise; 0 = any].
        #[arg(long)]
        portmap_port: Option<u16>,
        /// Do not run the built-in portmapper.
        #[arg(long)]
        no_portmap: bool,
        /// Client address or CIDR allowed to mount (repeatable) [default: loopback only].
        #[arg(long)]
        allow: Vec<String>,
        /// Export read-only.
        #[arg(long)]
        ro: bool,
        /// Reply to namespace changes before they are on stable storage
        /// (exports(5) `async`; faster, but a server crash can lose them).
        #[arg(long = "async")]
        async_namespace: bool,
        /// How caller identities map [default: no_root_squash in zero-config mode].
        #[arg(long, value_enum)]
        squash: Option<SquashArg>,
        /// Keep handle keys and the handle index in memory only: handles do
        /// not survive a restart (benchmarks, throwaway servers).
        #[arg(long, conflicts_with = "state_dir")]
        no_state: bool,
        /// Directory for server state (handle keys and index) outside the export
        /// [default: /var/lib/volnfs/<dir>-<hash> as root, ~/.local/state/volnfs/... otherwise].
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Do not serve the lock manager (NLM): clients must mount with `nolock`.
        #[arg(long)]
        no_lock: bool,
        /// Seconds only lock reclaims are granted after a restart that lost locks.
        #[arg(long, default_value_t = volnfs::config::DEFAULT_GRACE_SECONDS)]
        lock_grace: u64,
        #[arg(long, value_enum, default_value = "human")]
        log_format: LogFormat,
    },
    /// Talk to a running server's control socket (see README "Control socket").
    Ctl {
        /// The control socket.
        #[arg(long, default_value = volnfs::config::DEFAULT_CONTROL_SOCKET)]
        socket: PathBuf,
        /// Print the whole JSON reply (for scripts).
        #[arg(long)]
        json: bool,
        /// status | clients list | exports reload | snapshot create|delete|rollback NAME |
        /// snapshot list | quota get | quota set BYTES | OP.NAME [JSON-ARGS]
        #[arg(required = true, num_args = 1..)]
        words: Vec<String>,
    },
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
        #[arg(long, default_value = volnfs::zfs::DEFAULT_ZFS_PATH)]
        zfs: PathBuf,
        #[arg(long, default_value = volnfs::zone::EXPORTS_ROOT)]
        exports_root: PathBuf,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    if let LogFormat::Bunyan = format {
        return volnfs::logging::init_bunyan("volnfs", filter);
    }
    // Colours only for a person at a terminal, not in SMF or boot logs.
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => b.json().flatten_event(true).init(),
        LogFormat::Human | LogFormat::Bunyan => b.init(),
    }
}

struct ZeroConfig {
    export: PathBuf,
    name: Option<String>,
    listen: Vec<IpAddr>,
    nfs_port: Option<u16>,
    mount_port: Option<u16>,
    portmap_port: Option<u16>,
    no_portmap: bool,
    allow: Vec<String>,
    ro: bool,
    squash: Option<SquashArg>,
    state_dir: Option<PathBuf>,
    no_state: bool,
    async_namespace: bool,
    no_lock: bool,
    lock_grace: u64,
}

fn zero_config(z: ZeroConfig) -> anyhow::Result<Config> {
    let root = nix::unistd::geteuid().is_root();
    let dir = std::fs::canonicalize(&z.export).with_context(|| {
        format!(
            "--export {}: cannot resolve the directory",
            z.export.display()
        )
    })?;
    let name = match z.name {
        Some(n) => n,
        None => dir
            .to_str()
            .context("--export: the path is not UTF-8; give --name")?
            .to_string(),
    };
    if let Err(m) = config::validate_export_name(&name) {
        bail!("--name {name:?}: {m}");
    }
    let access = if z.ro { Access::Ro } else { Access::Rw };
    let squash = match z.squash {
        None | Some(SquashArg::NoRootSquash) => Squash::NoRootSquash,
        Some(SquashArg::RootSquash) => Squash::RootSquash,
        Some(SquashArg::AllSquash) => Squash::AllSquash,
    };
    let rules = if z.allow.is_empty() {
        config::loopback_rules(access, squash)
    } else {
        let mut rules = Vec::new();
        for a in &z.allow {
            let cidr: Cidr = a.parse().with_context(|| format!("--allow {a}"))?;
            rules.push(ClientRule {
                cidr,
                access,
                squash,
            });
        }
        rules
    };
    let (nfs_default, mount_default) = if root { (2049, 20048) } else { (12049, 12048) };
    let portmap_port = if z.no_portmap {
        None
    } else {
        match z.portmap_port {
            Some(p) => Some(p),
            None if root => Some(config::DEFAULT_PORTMAP_PORT),
            None => None,
        }
    };
    let state_dir = match (z.state_dir, z.no_state) {
        (_, true) => None,
        (Some(d), false) => Some(d),
        (None, false) => Some(default_state_dir(root, &dir)),
    };
    Ok(Config {
        listen: if z.listen.is_empty() {
            vec!["127.0.0.1".parse()?]
        } else {
            z.listen
        },
        nfs_port: z.nfs_port.unwrap_or(nfs_default),
        mount_port: z.mount_port.unwrap_or(mount_default),
        portmap_port,
        state_dir,
        control_socket: None,
        zfs_path: volnfs::zfs::DEFAULT_ZFS_PATH.into(),
        snapshot_limit: None,
        exports: vec![config::Export {
            sync: !z.async_namespace,
            dataset: None,
            name,
            path: dir,
            policy: volnfs::access::ExportPolicy {
                rules,
                anon_uid: config::NOBODY,
                anon_gid: config::NOBODY,
                secure: false,
            },
        }],
        limits: Default::default(),
        lock_grace: (!z.no_lock).then(|| std::time::Duration::from_secs(z.lock_grace)),
    })
}

/// Where zero-config mode keeps handle keys and the index: per exported
/// directory, under /var/lib/volnfs as root or the user's state directory.
fn default_state_dir(root: bool, export: &std::path::Path) -> PathBuf {
    use std::hash::Hasher;
    let base = if root {
        PathBuf::from("/var/lib/volnfs")
    } else if let Some(x) = std::env::var_os("XDG_STATE_HOME") {
        PathBuf::from(x).join("volnfs")
    } else if let Some(h) = std::env::var_os("HOME") {
        PathBuf::from(h).join(".local/state/volnfs")
    } else {
        std::env::temp_dir().join("volnfs-state")
    };
    // A fixed-key hash: the directory must be the same after an upgrade.
    let mut h = siphasher::sip::SipHasher13::new_with_keys(0, 0);
    h.write(export.as_os_str().as_encoded_bytes());
    let leaf = export
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into());
    base.join(format!("{leaf}-{:016x}", h.finish()))
}

fn mount_hint(cfg: &Config, h: &volnfs::app::ServerHandle) -> String {
    let host = h.nfs_addr().ip();
    let name = &cfg.exports[0].name;
    if h.portmap_addr().map(|a| a.port()) == Some(111) {
        format!("mount -t nfs -o vers=3 {host}:{name} /mnt")
    } else {
        format!(
            "mount -t nfs -o vers=3,proto=tcp,port={},mountport={},mountproto=tcp,nolock {host}:{name} /mnt",
            h.nfs_addr().port(),
            h.mount_addr().port()
        )
    }
}

async fn serve(cfg: Config, config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let handle = volnfs::app::start_with(cfg.clone(), config_path.clone()).await?;
    let pm = handle.portmap_addr().map(|a| a.port()).unwrap_or(0);
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "ready nfs_port={} mount_port={} portmap_port={pm}",
            handle.nfs_addr().port(),
            handle.mount_addr().port()
        )?;
        out.flush()?;
    }
    tracing::info!("mount it with: {}", mount_hint(&cfg, &handle));
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => match handle.state.reload() {
                Ok(_) => {}
                Err(e) => tracing::error!("SIGHUP: reload failed, keeping the current rules: {e}"),
            },
        }
    }
    tracing::info!("shutting down: draining in-flight requests");
    handle.shutdown().await;
    Ok(())
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

fn ctl(socket: &std::path::Path, json: bool, words: &[String]) -> ExitCode {
    let (op, args) = match volnfs::control::request_from_words(words) {
        Ok(v) => v,
        Err(usage) => {
            eprintln!("volnfs ctl: {usage}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("volnfs ctl: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let reply = match rt.block_on(volnfs::control::call(socket, &op, args)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("volnfs ctl: {}", volnfs::error_chain(&e));
            return ExitCode::FAILURE;
        }
    };
    let ok = reply["ok"].as_bool() == Some(true);
    if json {
        println!("{reply}");
    } else if ok {
        print!("{}", volnfs::control::render_human(&reply["result"]));
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        if !json {
            eprintln!(
                "volnfs ctl: {op} failed: {} ({})",
                reply["error"]["message"].as_str().unwrap_or("no message"),
                reply["error"]["code"].as_str().unwrap_or("no code")
            );
        }
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Ctl {
            socket,
            json,
            words,
        } => ctl(&socket, json, &words),
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
            init_logging(LogFormat::Human);
            report(volnfs::zone::zone_setup_command(
                &metadata,
                &zfs,
                &exports_root,
            ))
        }
        Cmd::CheckConfig { file } => match Config::load(&file) {
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
        },
        Cmd::Serve {
            config,
            export,
            name,
            listen,
            nfs_port,
            mount_port,
            portmap_port,
            no_portmap,
            allow,
            ro,
            squash,
            state_dir,
            no_state,
            async_namespace,
            no_lock,
            lock_grace,
            log_format,
        } => {
            init_logging(log_format);
            let cfg = match (&config, export) {
                (Some(path), _) => Config::load(path).map_err(anyhow::Error::from),
                (None, Some(export)) => zero_config(ZeroConfig {
                    export,
                    name,
                    listen,
                    nfs_port,
                    mount_port,
                    portmap_port,
                    no_portmap,
                    allow,
                    ro,
                    squash,
                    state_dir,
                    no_state,
                    async_namespace,
                    no_lock,
                    lock_grace,
                }),
                (None, None) => Err(anyhow::anyhow!("give --config FILE or --export DIR")),
            };
            let cfg = match cfg {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("volnfs: {e:#}");
                    // SMF_EXIT_ERR_CONFIG: restarting cannot fix a bad config,
                    // so SMF puts the service in maintenance instead of looping.
                    return ExitCode::from(96);
                }
            };
            let workers = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .max(2)
                * 2;
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("volnfs: starting the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(serve(cfg, config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("volnfs: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
