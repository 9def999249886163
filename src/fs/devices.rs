//! Device nodes without device files.
//!
//! A volume never holds a real device node: a zone could not create one,
//! and a client that could would own a door into the server. MKNOD of a
//! character or block device (`device_nodes: emulate`, the default) makes
//! an empty regular placeholder and marks it with the device's type and
//! number (`sys::write_device_mark`: an extended attribute on Linux, a named
//! attribute on illumos). Every attribute the server reports for a marked
//! placeholder says NF3CHR/NF3BLK with that specdata; it cannot be read,
//! written or truncated through NFS (it is not a regular file to the
//! client), while chmod, chown, utimes, rename, link and remove act on the
//! placeholder as on any file. The mark lives in the dataset, so it travels
//! with snapshots, rollback and `zfs send`, and NFSv3 has no way to set or
//! forge it (no xattr operations).
//!
//! Only empty regular files can be placeholders, so only their mark is
//! looked up, and the answer is remembered per (inode, generation).

use std::ffi::CStr;
use std::os::fd::BorrowedFd;
use std::sync::Arc;

use super::cache::LruMap;
use super::{lock, ExportFs, Stat};
use crate::sys;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceNodes {
    /// Placeholders served as device nodes.
    #[default]
    Emulate,
    /// MKNOD of a device is refused (NFS3ERR_PERM).
    Refuse,
}

/// What a placeholder stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceMark {
    pub block: bool,
    pub major: u32,
    pub minor: u32,
}

const PREFIX: &str = "volnfs-device v1 ";

impl DeviceMark {
    pub fn encode(&self) -> Vec<u8> {
        let t = if self.block { 'b' } else { 'c' };
        format!("{PREFIX}{t} {} {}", self.major, self.minor).into_bytes()
    }

    /// `None` for anything but a well-formed mark.
    pub fn decode(b: &[u8]) -> Option<DeviceMark> {
        let s = std::str::from_utf8(b).ok()?.strip_prefix(PREFIX)?;
        let mut f = s.split(' ');
        let block = match f.next()? {
            "b" => true,
            "c" => false,
            _ => return None,
        };
        let major = f.next()?.parse().ok()?;
        let minor = f.next()?.parse().ok()?;
        f.next().is_none().then_some(DeviceMark {
            block,
            major,
            minor,
        })
    }

    /// `st` (the placeholder's attributes) as the device node it stands for.
    pub fn apply(&self, st: &Stat) -> Stat {
        let kind = if self.block {
            libc::S_IFBLK
        } else {
            libc::S_IFCHR
        };
        Stat {
            mode: (st.mode & !libc::S_IFMT) | kind,
            rdev_major: self.major,
            rdev_minor: self.minor,
            size: 0,
            used: 0,
            ..*st
        }
    }
}

/// Placeholder answers remembered per (inode, generation).
pub(super) type MarkCache = std::sync::Mutex<LruMap<(u64, Option<DeviceMark>)>>;

pub(super) fn new_cache() -> MarkCache {
    std::sync::Mutex::new(LruMap::new(64 * 1024))
}

fn could_be_placeholder(st: &Stat) -> bool {
    st.is_reg() && st.size == 0
}

impl ExportFs {
    /// The attributes clients see for `name` in `dir`, given what the
    /// filesystem says (`st`): a marked placeholder becomes its device.
    pub(super) fn device_view(&self, dir: BorrowedFd<'_>, name: &CStr, st: Stat) -> Stat {
        if self.devices != DeviceNodes::Emulate || !could_be_placeholder(&st) {
            return st;
        }
        if let Some(hit) = lock(&self.marks).get(st.ino) {
            if hit.0 == st.gen {
                return hit.1.map_or(st, |m| m.apply(&st));
            }
        }
        let mark = sys::read_device_mark_at(dir, name).and_then(|b| DeviceMark::decode(&b));
        lock(&self.marks).insert(st.ino, Arc::new((st.gen, mark)));
        mark.map_or(st, |m| m.apply(&st))
    }

    /// The same for an object this server just made, whose mark (or its
    /// lack) is known: no system call, and remembered for the next look.
    pub(super) fn device_view_known(&self, st: Stat, mark: Option<DeviceMark>) -> Stat {
        if self.devices != DeviceNodes::Emulate || !could_be_placeholder(&st) {
            return st;
        }
        lock(&self.marks).insert(st.ino, Arc::new((st.gen, mark)));
        mark.map_or(st, |m| m.apply(&st))
    }

    /// The same without any system call: `None` when the answer is not
    /// remembered (the caller takes the ordinary path).
    pub(super) fn device_view_nowait(&self, st: Stat) -> Option<Stat> {
        if self.devices != DeviceNodes::Emulate || !could_be_placeholder(&st) {
            return Some(st);
        }
        let hit = lock(&self.marks).get(st.ino)?;
        (hit.0 == st.gen).then(|| hit.1.map_or(st, |m| m.apply(&st)))
    }

    /// Forgets what is known of placeholders (after a rollback).
    pub(super) fn forget_marks(&self) {
        lock(&self.marks).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_round_trip_and_garbage_is_no_mark() {
        let m = DeviceMark {
            block: true,
            major: 8,
            minor: 1,
        };
        assert_eq!(DeviceMark::decode(&m.encode()), Some(m));
        for bad in [
            &b"volnfs-device v1 x 1 2"[..],
            b"volnfs-device v1 c 1",
            b"c 1 2",
            b"volnfs-device v1 c 1 2 3",
            b"",
        ] {
            assert_eq!(DeviceMark::decode(bad), None);
        }
    }
}
