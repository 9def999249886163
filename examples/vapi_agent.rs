//! The agent side of volnfs's control channel (README "Control channel"), as small as it
//! gets: listens on SOCKET, prints every line volnfs sends (its hello, then replies) on
//! stdout, and sends each line of stdin as a request — a JSON object as it is, or
//! `OP [JSON-ARGS]`, which gets the id `a<pid>-<n>`. Each request sent is echoed on
//! stderr as `> LINE`. Exits at the end of stdin.
//!
//! ```sh
//! cargo run --example vapi_agent -- /zones/zonecontrol/<uuid>/volnfs.sock
//! status
//! snapshot.rollback {"name":"s1"}
//! result {"id":"a4711-2","wait":true}
//! ```

use std::io::{BufRead, BufReader, Write};
use std::net::Shutdown;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Mutex};

type Current = Arc<Mutex<Option<UnixStream>>>;

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: vapi_agent SOCKET   (then requests on stdin)");
        std::process::exit(2);
    };
    // A socket file nobody answers on is a stale one of an earlier run.
    if UnixStream::connect(&path).is_ok() {
        eprintln!("{path}: another agent is listening there");
        std::process::exit(1);
    }
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap_or_else(|e| {
        eprintln!("listening on {path}: {e}");
        std::process::exit(1)
    });
    // The final mode before volnfs can connect: volnfs reconnects when the file changes.
    if let Err(e) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
        eprintln!("chmod {path}: {e}");
    }
    let current: Current = Arc::default();
    let accepting = current.clone();
    std::thread::spawn(move || accept(listener, accepting));
    let mut n = 0;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let request = if line.starts_with('{') {
            line.to_string()
        } else {
            n += 1;
            let (op, args) = line.split_once(' ').unwrap_or((line, "{}"));
            let args: serde_json::Value = match serde_json::from_str(args) {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("arguments of {op} are not JSON: {e}");
                    continue;
                }
            };
            let id = format!("a{}-{n}", std::process::id());
            serde_json::json!({"v": 1, "id": id, "op": op, "args": args}).to_string()
        };
        let mut conn = current.lock().unwrap_or_else(|p| p.into_inner());
        match conn.as_mut().map(|s| writeln!(s, "{request}")) {
            Some(Ok(())) => eprintln!("> {request}"),
            _ => eprintln!("not sent, volnfs is not connected: {request}"),
        }
    }
}

/// Accepts volnfs's connections; the newest one is where requests go.
fn accept(listener: UnixListener, current: Current) {
    for conn in listener.incoming() {
        let conn = match conn {
            Ok(c) => c,
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        let Ok(replies) = conn.try_clone() else {
            continue;
        };
        eprintln!("volnfs connected");
        let old = current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(conn);
        if let Some(old) = old {
            let _ = old.shutdown(Shutdown::Both);
        }
        std::thread::spawn(move || {
            for line in BufReader::new(replies).lines() {
                let Ok(line) = line else { break };
                println!("{line}");
            }
            eprintln!("volnfs disconnected");
        });
    }
}
