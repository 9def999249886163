//! `volnfs ctl`: one request to a running server's control socket.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use volnfs::control::ctl;

#[derive(Args)]
pub struct CtlArgs {
    /// The control socket [default: $VOLNFS_CONTROL_SOCKET, else
    /// /var/run/volnfs/control.sock if a server answers there, else the one
    /// running volnfs of this user].
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Print the whole JSON reply (for scripts).
    #[arg(long)]
    json: bool,
    /// status | clients list | exports reload | snapshot create|delete|rollback NAME |
    /// snapshot list | quota get | quota set BYTES | OP.NAME [JSON-ARGS]
    #[arg(required = true, num_args = 1..)]
    words: Vec<String>,
}

pub fn run(a: &CtlArgs) -> ExitCode {
    let (op, args) = match ctl::request_from_words(&a.words) {
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
    let socket = match &a.socket {
        Some(s) => s.clone(),
        None => match volnfs::control::discovery::find(std::path::Path::new(
            volnfs::config::DEFAULT_CONTROL_SOCKET,
        )) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("volnfs ctl: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let reply = match rt.block_on(ctl::call(&socket, &op, args)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("volnfs ctl: {}", volnfs::error_chain(&e));
            return ExitCode::FAILURE;
        }
    };
    let ok = reply["ok"].as_bool() == Some(true);
    if a.json {
        println!("{reply}");
    } else if ok {
        print!("{}", ctl::render_human(&reply["result"]));
    }
    if ok {
        return ExitCode::SUCCESS;
    }
    if !a.json {
        eprintln!(
            "volnfs ctl: {op} failed: {} ({})",
            reply["error"]["message"].as_str().unwrap_or("no message"),
            reply["error"]["code"].as_str().unwrap_or("no code")
        );
    }
    ExitCode::FAILURE
}
