//! One connection to the agent: the `hello` line, then requests read and
//! run concurrently (each its own task, owned by the channel so that it
//! outlives the connection), replies written as they finish, in any order.
//! Ends when the agent closes the stream, a read or write fails, the socket
//! file is replaced, or the server stops — then the replies of what is
//! still running are written before the connection closes (bounded).

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use tokio::io::BufReader;
use tokio::net::unix::OwnedReadHalf;
use tokio::net::UnixStream;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use super::policy::Identity;
use super::results::{result_args, result_body, Results};
use super::{socket, Shared, DRAIN_LIMIT, RESULT_OP};
use crate::control::lines::{self, Line};
use crate::control::protocol::{
    error_reply, execute, line_too_long_reply, op_err, parse_request, ErrorCode, Request, OPS,
    PROTOCOL_VERSION,
};
use crate::service::ServerState;

/// Replies waiting for the writer; past this, request tasks wait (and so,
/// through the in-flight limit, does reading).
const REPLY_QUEUE: usize = 64;

/// Why a connection ended.
#[derive(Debug)]
pub enum End {
    /// The agent closed the stream.
    Closed,
    /// Reading or writing failed.
    Lost(std::io::Error),
    /// The socket file is no longer the one connected through.
    Replaced,
    /// The server is stopping; in-flight replies were written until `deadline`.
    Shutdown { deadline: tokio::time::Instant },
}

/// The first line volnfs sends on every connection: who it is, what it
/// can do, and which earlier requests are running or have results.
pub fn hello(state: &ServerState, results: &Results) -> Value {
    let exports: Vec<String> = state
        .exports
        .all()
        .iter()
        .map(|e| e.fs.name.clone())
        .collect();
    let mut capabilities: Vec<&str> = OPS.to_vec();
    capabilities.push(RESULT_OP);
    json!({"v": PROTOCOL_VERSION, "hello": {
        "protocol": PROTOCOL_VERSION,
        "version": env!("CARGO_PKG_VERSION"),
        "pid": std::process::id(),
        "volume": {
            "kind": state.dataset.kind(),
            "dataset": state.dataset.name(),
            "exports": exports,
        },
        "capabilities": capabilities,
        "running": results.running(),
        "results": results.remembered(),
    }})
}

pub async fn serve(
    stream: UnixStream,
    identity: Identity,
    shared: &Arc<Shared>,
    shutdown: &mut watch::Receiver<bool>,
) -> End {
    let (rd, mut wr) = stream.into_split();
    let greeting = hello(&shared.state, &shared.results());
    if let Err(e) = lines::write_line(&mut wr, &greeting).await {
        return End::Lost(e);
    }
    let (tx, mut rx) = mpsc::channel::<Value>(REPLY_QUEUE);
    let writing = async move {
        while let Some(reply) = rx.recv().await {
            lines::write_line(&mut wr, &reply).await?;
        }
        Ok::<(), std::io::Error>(())
    };
    tokio::pin!(writing);
    let mut reading = Box::pin(read_requests(rd, tx, shared.clone()));
    let replaced = socket::replaced(&shared.path, identity);
    tokio::pin!(replaced);
    let end = tokio::select! {
        r = &mut reading => match r {
            Ok(()) => End::Closed,
            Err(e) => End::Lost(e),
        },
        r = &mut writing => match r {
            Ok(()) => End::Closed,
            Err(e) => End::Lost(e),
        },
        () = &mut replaced => End::Replaced,
        _ = shutdown.changed() => End::Shutdown {
            deadline: tokio::time::Instant::now() + DRAIN_LIMIT,
        },
    };
    if let End::Shutdown { deadline } = end {
        // No new requests; the writer ends once every running request of
        // this connection has sent its reply (they hold the queue's senders).
        drop(reading);
        let _ = tokio::time::timeout_at(deadline, &mut writing).await;
    }
    end
}

/// Queues a reply; false when the writer is gone (the connection ended).
async fn send(tx: &mpsc::Sender<Value>, reply: Value) -> bool {
    tx.send(reply).await.is_ok()
}

async fn read_requests(
    rd: OwnedReadHalf,
    tx: mpsc::Sender<Value>,
    shared: Arc<Shared>,
) -> std::io::Result<()> {
    let mut rd = BufReader::new(rd);
    let mut line = Vec::new();
    loop {
        let reply = match lines::read_line(&mut rd, &mut line).await? {
            Line::Eof => return Ok(()),
            Line::TooLong => Some(line_too_long_reply()),
            Line::Complete => match parse_request(&line) {
                Err(rejected) => Some(rejected.reply()),
                Ok(req) if req.id.is_null() => Some(error_reply(
                    Value::Null,
                    op_err(
                        ErrorCode::BadRequest,
                        "on the control channel every request needs an \"id\" (replies come in any order)",
                    ),
                )),
                Ok(req) => start(req, &tx, &shared).await,
            },
        };
        if let Some(reply) = reply {
            if !send(&tx, reply).await {
                return Ok(());
            }
        }
    }
}

/// Starts one request as a task of the channel; returns a reply only when
/// it cannot start.
async fn start(req: Request, tx: &mpsc::Sender<Value>, shared: &Arc<Shared>) -> Option<Value> {
    // Waiting here (too many running) stops reading: the agent's writes
    // wait in the socket buffer.
    let Ok(permit) = shared.inflight.clone().acquire_owned().await else {
        return Some(error_reply(
            req.id,
            op_err(ErrorCode::Internal, "the control channel is stopping"),
        ));
    };
    let ticket = match shared.results().begin(&req, Instant::now()) {
        Ok(t) => t,
        Err(e) => return Some(error_reply(req.id, e)),
    };
    let span = tracing::info_span!("request", id = %req.id, op = %req.op);
    let (owner, tx) = (shared.clone(), tx.clone());
    let task = async move {
        let reply = if req.op == RESULT_OP {
            result(&owner, &req).await
        } else {
            execute(&owner.state, &req).await
        };
        owner
            .results()
            .finish(ticket, reply.clone(), Instant::now());
        // The connection may be gone: then the reply waits for `result`.
        let _ = tx.send(reply).await;
        drop(permit);
    };
    shared.tasks.spawn(task.instrument(span));
    None
}

/// `result`: how an earlier request ended (or that it is still running).
async fn result(shared: &Shared, req: &Request) -> Value {
    let (id, wait) = match result_args(req) {
        Ok(a) => a,
        Err(e) => return error_reply(req.id.clone(), e),
    };
    let Some(found) = shared.results().lookup(&id) else {
        return error_reply(
            req.id.clone(),
            op_err(
                ErrorCode::UnknownRequest,
                format!(
                    "no request {id} is running or remembered (replies of operations that change something are kept {} s, the last {}; read-only ones are not: ask again)",
                    super::results::REMEMBER_FOR.as_secs(),
                    super::results::REMEMBER,
                ),
            ),
        );
    };
    let mut rx = found.reply;
    if wait && rx.wait_for(|r| r.is_some()).await.is_err() {
        return error_reply(
            req.id.clone(),
            op_err(
                ErrorCode::Internal,
                format!("request {id} ended without a reply (volnfs is stopping)"),
            ),
        );
    }
    let reply = rx.borrow().clone();
    json!({"v": PROTOCOL_VERSION, "id": req.id, "ok": true,
        "result": result_body(&id, &found.op, reply.as_deref())})
}
