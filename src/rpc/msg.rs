//! ONC RPC v2 message headers (RFC 5531 §9): decoding calls and encoding replies.
//!
//! Pure functions over byte slices. The call decoder validates the header and
//! the credential; everything after the verifier is left to the program as a
//! borrowed slice. Replies are built in a buffer whose first four bytes are
//! reserved for the TCP record mark so a reply can be sent in one write.

use crate::xdr::{Reader, Writer, XdrError};

pub const RPC_VERSION: u32 = 2;
pub const MSG_CALL: u32 = 0;
pub const MSG_REPLY: u32 = 1;

pub const AUTH_NONE: u32 = 0;
pub const AUTH_SYS: u32 = 1;

/// Credentials and verifiers are at most 400 bytes (RFC 5531 §8.2).
pub const MAX_AUTH_BYTES: u32 = 400;
/// AUTH_SYS machine names are at most 255 bytes, and at most 16 groups.
pub const MAX_MACHINE_NAME: u32 = 255;
pub const MAX_AUTH_SYS_GIDS: u32 = 16;

/// Bytes reserved at the start of every reply buffer for the record mark.
pub const RECORD_MARK_LEN: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptStat {
    Success = 0,
    ProgUnavail = 1,
    ProgMismatch = 2,
    ProcUnavail = 3,
    GarbageArgs = 4,
    SystemErr = 5,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthStat {
    Ok = 0,
    BadCred = 1,
    RejectedCred = 2,
    BadVerf = 3,
    RejectedVerf = 4,
    TooWeak = 5,
}

/// AUTH_SYS credentials (RFC 5531 appendix A). Groups are held inline: the
/// count is bounded at 16 before anything is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthSys {
    pub uid: u32,
    pub gid: u32,
    gids: [u32; MAX_AUTH_SYS_GIDS as usize],
    ngids: u8,
}

impl AuthSys {
    pub fn new(uid: u32, gid: u32, groups: &[u32]) -> Self {
        let mut gids = [0u32; MAX_AUTH_SYS_GIDS as usize];
        let n = groups.len().min(gids.len());
        gids[..n].copy_from_slice(&groups[..n]);
        AuthSys {
            uid,
            gid,
            gids,
            ngids: n as u8,
        }
    }

    pub fn groups(&self) -> &[u32] {
        &self.gids[..self.ngids as usize]
    }

    /// True when `gid` is the primary group or one of the supplementary groups.
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups().contains(&gid)
    }
}

/// The caller's credential as presented on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    None,
    Sys(AuthSys),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallHeader {
    pub xid: u32,
    pub prog: u32,
    pub vers: u32,
    pub proc_: u32,
    pub auth: Auth,
}

/// Why a call could not be accepted at the header stage.
#[derive(Debug, PartialEq, Eq)]
pub enum CallError {
    /// Not even an xid and message type: nothing to reply to.
    Unparseable(XdrError),
    /// A REPLY arrived on a server socket: ignore it.
    NotACall { xid: u32 },
    /// rpcvers != 2: reply RPC_MISMATCH.
    RpcMismatch { xid: u32 },
    /// Malformed or unsupported credential: reply AUTH_ERROR.
    Auth { xid: u32, stat: AuthStat },
    /// The header itself is cut short after the xid.
    Garbage { xid: u32 },
}

/// Decodes a call header; on success returns it and the argument bytes.
pub fn decode_call(msg: &[u8]) -> Result<(CallHeader, &[u8]), CallError> {
    let mut r = Reader::new(msg);
    let xid = r.u32().map_err(CallError::Unparseable)?;
    let mtype = r.u32().map_err(CallError::Unparseable)?;
    if mtype != MSG_CALL {
        return Err(CallError::NotACall { xid });
    }
    let rpcvers = r.u32().map_err(|_| CallError::Garbage { xid })?;
    if rpcvers != RPC_VERSION {
        return Err(CallError::RpcMismatch { xid });
    }
    let garbage = |_| CallError::Garbage { xid };
    let prog = r.u32().map_err(garbage)?;
    let vers = r.u32().map_err(garbage)?;
    let proc_ = r.u32().map_err(garbage)?;
    let cred_flavor = r.u32().map_err(garbage)?;
    let cred_body = r.opaque(MAX_AUTH_BYTES).map_err(|e| match e {
        XdrError::TooLong { .. } => CallError::Auth {
            xid,
            stat: AuthStat::BadCred,
        },
        _ => CallError::Garbage { xid },
    })?;
    let _verf_flavor = r.u32().map_err(garbage)?;
    let _verf_body = r.opaque(MAX_AUTH_BYTES).map_err(|e| match e {
        XdrError::TooLong { .. } => CallError::Auth {
            xid,
            stat: AuthStat::BadVerf,
        },
        _ => CallError::Garbage { xid },
    })?;
    let auth = match cred_flavor {
        AUTH_NONE => Auth::None,
        AUTH_SYS => Auth::Sys(decode_auth_sys(cred_body).ok_or(CallError::Auth {
            xid,
            stat: AuthStat::BadCred,
        })?),
        // AUTH_SHORT, AUTH_DH, RPCSEC_GSS and anything else: we do not speak
        // them, so the credential cannot be checked.
        _ => {
            return Err(CallError::Auth {
                xid,
                stat: AuthStat::BadCred,
            })
        }
    };
    Ok((
        CallHeader {
            xid,
            prog,
            vers,
            proc_,
            auth,
        },
        r.rest(),
    ))
}

fn decode_auth_sys(body: &[u8]) -> Option<AuthSys> {
    let mut r = Reader::new(body);
    let _stamp = r.u32().ok()?;
    let _machine = r.string(MAX_MACHINE_NAME).ok()?;
    let uid = r.u32().ok()?;
    let gid = r.u32().ok()?;
    let n = r.u32().ok()?;
    if n > MAX_AUTH_SYS_GIDS {
        return None;
    }
    let mut gids = [0u32; MAX_AUTH_SYS_GIDS as usize];
    for g in gids.iter_mut().take(n as usize) {
        *g = r.u32().ok()?;
    }
    if r.remaining() != 0 {
        return None;
    }
    Some(AuthSys {
        uid,
        gid,
        gids,
        ngids: n as u8,
    })
}

/// Starts a reply buffer: record-mark space, xid, REPLY.
fn reply_start(xid: u32, capacity: usize) -> Writer {
    let mut w = Writer::with_buffer(Vec::with_capacity(capacity.max(64)));
    w.u32(0); // record mark, filled in by the TCP transport
    w.u32(xid);
    w.u32(MSG_REPLY);
    w
}

/// An accepted reply with the given status; the caller appends the results
/// (for SUCCESS) or nothing else.
pub fn accepted(xid: u32, stat: AcceptStat, capacity: usize) -> Writer {
    let mut w = reply_start(xid, capacity);
    w.u32(0); // MSG_ACCEPTED
    w.u32(AUTH_NONE); // verifier
    w.u32(0);
    w.u32(stat as u32);
    w
}

/// Offset of the accept_stat word in a buffer made by [`accepted`].
pub const ACCEPT_STAT_OFFSET: usize = RECORD_MARK_LEN + 4 * 5;
/// Length of the header written by [`accepted`] (results follow).
pub const ACCEPTED_HEADER_LEN: usize = RECORD_MARK_LEN + 4 * 6;

pub fn prog_mismatch(xid: u32, low: u32, high: u32) -> Vec<u8> {
    let mut w = accepted(xid, AcceptStat::ProgMismatch, 40);
    w.u32(low);
    w.u32(high);
    w.into_inner()
}

pub fn accept_error(xid: u32, stat: AcceptStat) -> Vec<u8> {
    accepted(xid, stat, 32).into_inner()
}

pub fn rpc_mismatch(xid: u32) -> Vec<u8> {
    let mut w = reply_start(xid, 32);
    w.u32(1); // MSG_DENIED
    w.u32(0); // RPC_MISMATCH
    w.u32(RPC_VERSION);
    w.u32(RPC_VERSION);
    w.into_inner()
}

pub fn auth_error(xid: u32, stat: AuthStat) -> Vec<u8> {
    let mut w = reply_start(xid, 32);
    w.u32(1); // MSG_DENIED
    w.u32(1); // AUTH_ERROR
    w.u32(stat as u32);
    w.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(rpcvers: u32, flavor: u32, cred: &[u8]) -> Vec<u8> {
        let mut w = Writer::new();
        w.u32(7);
        w.u32(MSG_CALL);
        w.u32(rpcvers);
        w.u32(100003);
        w.u32(3);
        w.u32(0);
        w.u32(flavor);
        w.opaque(cred);
        w.u32(0);
        w.u32(0);
        w.u32(0xdead);
        w.into_inner()
    }

    fn sys_cred(ngids: u32, gids: &[u32]) -> Vec<u8> {
        let mut w = Writer::new();
        w.u32(0);
        w.string(b"host");
        w.u32(1000);
        w.u32(100);
        w.u32(ngids);
        for g in gids {
            w.u32(*g);
        }
        w.into_inner()
    }

    #[test]
    fn decodes_auth_sys_call_and_leaves_args() {
        let msg = call(2, AUTH_SYS, &sys_cred(2, &[5, 6]));
        let (h, args) = decode_call(&msg).unwrap();
        assert_eq!(h.xid, 7);
        assert_eq!((h.prog, h.vers, h.proc_), (100003, 3, 0));
        match h.auth {
            Auth::Sys(s) => {
                assert_eq!((s.uid, s.gid), (1000, 100));
                assert_eq!(s.groups(), &[5, 6]);
                assert!(s.in_group(6) && s.in_group(100) && !s.in_group(7));
            }
            Auth::None => panic!("expected AUTH_SYS"),
        }
        assert_eq!(args, &0xdeadu32.to_be_bytes());
    }

    #[test]
    fn huge_gid_count_is_bad_credential() {
        let msg = call(2, AUTH_SYS, &sys_cred(0xFFFF_FFFF, &[]));
        assert_eq!(
            decode_call(&msg).unwrap_err(),
            CallError::Auth {
                xid: 7,
                stat: AuthStat::BadCred
            }
        );
    }

    #[test]
    fn wrong_rpc_version_is_mismatch() {
        let msg = call(3, AUTH_NONE, &[]);
        assert_eq!(
            decode_call(&msg).unwrap_err(),
            CallError::RpcMismatch { xid: 7 }
        );
    }

    #[test]
    fn unknown_flavor_is_bad_credential() {
        let msg = call(2, 6, &[0, 0, 0, 0]);
        assert!(matches!(
            decode_call(&msg).unwrap_err(),
            CallError::Auth {
                stat: AuthStat::BadCred,
                ..
            }
        ));
    }

    #[test]
    fn accepted_header_layout_matches_offsets() {
        let w = accepted(9, AcceptStat::Success, 0);
        assert_eq!(w.len(), ACCEPTED_HEADER_LEN);
        assert_eq!(
            &w.buf[ACCEPT_STAT_OFFSET..ACCEPT_STAT_OFFSET + 4],
            &[0, 0, 0, 0]
        );
    }
}
