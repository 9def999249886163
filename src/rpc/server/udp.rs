//! UDP: one datagram per call, one per reply. A reply that the socket will
//! not take now is dropped: the client retransmits.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{debug, Instrument};

use super::{Ticket, Transports};
use crate::rpc::{canonical_addr, Parsed, ReplyBytes, Sink, Transport};

/// Replies to one datagram's sender.
struct ReplyTo {
    socket: Arc<UdpSocket>,
    peer: SocketAddr,
}

impl Sink for ReplyTo {
    fn deliver(&self, reply: ReplyBytes, _ticket: Ticket) {
        let datagram = reply.concat();
        // The first four bytes are the (TCP) record mark's room.
        if let Err(e) = self.socket.try_send_to(&datagram[4..], self.peer) {
            debug!(peer = %self.peer, error = %e, "udp send failed");
        }
    }
}

pub(super) async fn serve(t: Transports, socket: UdpSocket) {
    let socket = Arc::new(socket);
    let local = socket.local_addr().ok().map(canonical_addr);
    let max_inflight = t.limits.max_inflight_per_conn;
    let inflight = Arc::new(Semaphore::new(max_inflight));
    let mut shutdown = t.shutdown.clone();
    let mut calls = JoinSet::new();
    loop {
        while calls.try_join_next().is_some() {}
        let Ok(permit) = inflight.clone().acquire_owned().await else {
            break;
        };
        let mut buf = vec![0u8; 65536];
        let received = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            _ = shutdown.changed() => break,
        };
        let (n, peer) = match received {
            Ok(v) => v,
            Err(e) => {
                debug!(error = %e, "udp receive failed");
                continue;
            }
        };
        let peer_c = canonical_addr(peer);
        if n < 8 {
            continue;
        }
        if !(t.admit)(peer_c.ip()) {
            t.log_refusal(peer_c);
            continue;
        }
        buf.truncate(n);
        let to: Arc<dyn Sink> = Arc::new(ReplyTo {
            socket: socket.clone(),
            peer,
        });
        let ticket = Ticket {
            _inflight: permit,
            room: None,
        };
        match t.dispatcher.parse(peer_c, local, Transport::Udp, buf) {
            Parsed::Close | Parsed::Nothing => {}
            Parsed::Answer(head) => to.deliver(ReplyBytes { head, tail: None }, ticket),
            Parsed::Call { call, program, .. } => {
                let d = t.dispatcher.clone();
                if program.runs_in_line(&call.ctx.header) {
                    d.run(call, program, to, ticket).await;
                } else {
                    calls.spawn(
                        async move { d.run(call, program, to, ticket).await }.in_current_span(),
                    );
                }
            }
        }
    }
    let all = u32::try_from(max_inflight).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(t.limits.drain, inflight.acquire_many(all)).await;
    calls.abort_all();
    while calls.join_next().await.is_some() {}
}
