//! NLM v4's wire vocabulary (XNFS, chapter 10): procedure numbers, status
//! codes and the nlm4_lock structure.

use super::locks::{self, Lock};
use crate::xdr::{Reader, Writer, XdrError};

/// LM_MAXSTRLEN and MAXNETOBJ_SZ.
pub(super) const MAX_STR: u32 = 1024;
pub(super) const MAX_NETOBJ: u32 = 1024;

/// nlm4_stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    Granted = 0,
    Denied = 1,
    DeniedNoLocks = 2,
    Blocked = 3,
    DeniedGracePeriod = 4,
    StaleFh = 7,
    Failed = 9,
}

pub(super) const PROC_TEST: u32 = 1;
pub(super) const PROC_LOCK: u32 = 2;
pub(super) const PROC_CANCEL: u32 = 3;
pub(super) const PROC_UNLOCK: u32 = 4;
pub(super) const PROC_GRANTED: u32 = 5;
pub(super) const PROC_TEST_MSG: u32 = 6;
pub(super) const PROC_UNLOCK_MSG: u32 = 9;
pub(super) const PROC_GRANTED_MSG: u32 = 10;
pub(super) const PROC_RES_FIRST: u32 = 11;
pub(super) const PROC_GRANTED_RES: u32 = 15;
pub(super) const PROC_SHARE: u32 = 20;
pub(super) const PROC_UNSHARE: u32 = 21;
pub(super) const PROC_NM_LOCK: u32 = 22;
pub(super) const PROC_FREE_ALL: u32 = 23;

/// nlm4_lock as it arrives.
pub(super) struct WireLock<'a> {
    pub caller: &'a [u8],
    pub fh: &'a [u8],
    pub oh: &'a [u8],
    pub svid: i32,
    pub offset: u64,
    pub len: u64,
}

pub(super) fn decode_lock<'a>(r: &mut Reader<'a>) -> Result<WireLock<'a>, XdrError> {
    Ok(WireLock {
        caller: r.string(MAX_STR)?,
        fh: r.opaque(MAX_NETOBJ)?,
        oh: r.opaque(MAX_NETOBJ)?,
        svid: r.i32()?,
        offset: r.u64()?,
        len: r.u64()?,
    })
}

pub(super) fn encode_lock(w: &mut Writer, l: &Lock, fh: &[u8]) {
    let (offset, len) = locks::offset_len(l.start, l.end);
    w.string(&l.owner.caller);
    w.opaque(fh);
    w.opaque(&l.oh);
    w.i32(l.owner.svid);
    w.u64(offset);
    w.u64(len);
}
