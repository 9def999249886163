//! `volnfs serve`: from a config file, or zero-config mode's flags
//! (`volnfs::config::zero`). Runs until SIGTERM/SIGINT; SIGHUP reloads.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use tokio::signal::unix::{signal, SignalKind};

use volnfs::access::Squash;
use volnfs::config::zero::ZeroConfig;
use volnfs::config::Config;

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
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

#[derive(Args)]
pub struct ServeArgs {
    /// JSON config file (see README "Configuration").
    #[arg(long, conflicts_with = "export")]
    config: Option<PathBuf>,
    #[command(flatten)]
    zero: ZeroArgs,
    #[arg(long, value_enum, default_value = "human")]
    log_format: LogFormat,
}

/// Zero-config mode: one directory, development defaults.
#[derive(Args)]
struct ZeroArgs {
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
    /// Threads doing file I/O at once [default: 64].
    #[arg(long)]
    io_threads: Option<usize>,
    /// Microseconds a connection whose client waits for each reply stays
    /// awake for its next call; 0 = off [default: 100].
    #[arg(long)]
    busy_poll_us: Option<u64>,
}

impl ZeroArgs {
    fn into_flags(self, export: PathBuf) -> ZeroConfig {
        ZeroConfig {
            export,
            name: self.name,
            listen: self.listen,
            nfs_port: self.nfs_port,
            mount_port: self.mount_port,
            portmap_port: self.portmap_port,
            no_portmap: self.no_portmap,
            allow: self.allow,
            ro: self.ro,
            squash: self.squash.map(|s| match s {
                SquashArg::RootSquash => Squash::RootSquash,
                SquashArg::NoRootSquash => Squash::NoRootSquash,
                SquashArg::AllSquash => Squash::AllSquash,
            }),
            state_dir: self.state_dir,
            no_state: self.no_state,
            async_namespace: self.async_namespace,
            no_lock: self.no_lock,
            lock_grace: self.lock_grace,
            io_threads: self.io_threads,
            busy_poll_us: self.busy_poll_us,
        }
    }
}

pub fn init_logging(format: LogFormat) {
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
            _ = hup.recv() => if let Err(e) = handle.state.reload() {
                tracing::error!("SIGHUP: reload failed, keeping the current rules: {}", volnfs::error_chain(&e));
            },
        }
    }
    tracing::info!("shutting down: draining in-flight requests");
    handle.shutdown().await;
    Ok(())
}

pub fn run(a: ServeArgs) -> ExitCode {
    init_logging(a.log_format);
    let cfg = match (&a.config, a.zero.export.clone()) {
        (Some(path), _) => Config::load(path).map_err(anyhow::Error::from),
        (None, Some(export)) => a
            .zero
            .into_flags(export)
            .into_config(nix::unistd::geteuid().is_root())
            .map_err(anyhow::Error::from),
        (None, None) => Err(anyhow::anyhow!("give --config FILE or --export DIR")),
    };
    let cfg = match cfg {
        Ok(c) => c,
        Err(e) => {
            eprintln!("volnfs: {e:#}");
            // SMF_EXIT_ERR_CONFIG: restarting cannot fix a bad config, so
            // SMF puts the service in maintenance instead of looping.
            return ExitCode::from(96);
        }
    };
    // The async workers receive requests and answer what needs no disk;
    // file I/O has its own pool (`volnfs::iopool`), so a few workers do.
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 8);
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
    match rt.block_on(serve(cfg, a.config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("volnfs: {e:#}");
            // Saved state only the operator can fix (a lost or damaged
            // handle key, an unwritable state_dir at first start): 96 =
            // SMF_EXIT_ERR_CONFIG, maintenance instead of a restart loop.
            match e.downcast_ref::<volnfs::app::AppError>() {
                Some(a) if a.needs_operator() => ExitCode::from(96),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
