//! POSIX permission checks for a caller, as a local filesystem would make
//! them. Pure functions over attributes and a credential.
//!
//! The server runs as root, so the kernel checks nothing on the caller's
//! behalf: every procedure asks here first.

use super::cred::Cred;
use crate::sys::Stat;

pub const READ: u32 = 4;
pub const WRITE: u32 = 2;
pub const EXEC: u32 = 1;

/// The rwx bits that apply to `cred` for an object.
fn class_bits(st: &Stat, cred: &Cred) -> u32 {
    if st.uid == cred.uid {
        (st.mode >> 6) & 7
    } else if cred.in_group(st.gid) {
        (st.mode >> 3) & 7
    } else {
        st.mode & 7
    }
}

/// Whether `cred` holds every right in `want` (READ|WRITE|EXEC) on `st`.
/// Root may read and write anything, and execute anything that has an
/// execute bit or is a directory.
pub fn allowed(st: &Stat, cred: &Cred, want: u32) -> bool {
    if cred.uid == 0 {
        return want & EXEC == 0 || st.is_dir() || st.mode & 0o111 != 0;
    }
    class_bits(st, cred) & want == want
}

pub fn is_owner(st: &Stat, cred: &Cred) -> bool {
    cred.uid == 0 || st.uid == cred.uid
}

/// READ on a file: read permission, or execute permission (a client runs a
/// binary by reading it), or ownership (the client checked at open time and
/// the file may since have been made unreadable, as knfsd allows).
pub fn may_read_data(st: &Stat, cred: &Cred) -> bool {
    allowed(st, cred, READ) || allowed(st, cred, EXEC) || st.uid == cred.uid
}

/// WRITE on a file: write permission or ownership (a file created 0444 by
/// `open(O_CREAT|O_WRONLY, 0444)` must still take the creator's writes).
pub fn may_write_data(st: &Stat, cred: &Cred) -> bool {
    allowed(st, cred, WRITE) || st.uid == cred.uid
}

/// Adding or removing entries in a directory needs write and search.
pub fn may_modify_dir(dir: &Stat, cred: &Cred) -> bool {
    allowed(dir, cred, WRITE | EXEC)
}

/// Sticky directories: only the entry's owner, the directory's owner or
/// root may remove or rename an entry.
pub fn may_delete_entry(dir: &Stat, entry: &Stat, cred: &Cred) -> bool {
    if !may_modify_dir(dir, cred) {
        return false;
    }
    if dir.mode & libc::S_ISVTX == 0 {
        return true;
    }
    cred.uid == 0 || entry.uid == cred.uid || dir.uid == cred.uid
}

/// The ACCESS3 bits (RFC 1813 §3.3.4) that `cred` holds on `st`.
pub fn access_bits(st: &Stat, cred: &Cred, read_only: bool) -> u32 {
    const ACCESS3_READ: u32 = 0x01;
    const ACCESS3_LOOKUP: u32 = 0x02;
    const ACCESS3_MODIFY: u32 = 0x04;
    const ACCESS3_EXTEND: u32 = 0x08;
    const ACCESS3_DELETE: u32 = 0x10;
    const ACCESS3_EXECUTE: u32 = 0x20;
    let mut bits = 0;
    if allowed(st, cred, READ) {
        bits |= ACCESS3_READ;
    }
    if !read_only && allowed(st, cred, WRITE) {
        bits |= ACCESS3_MODIFY | ACCESS3_EXTEND;
        if st.is_dir() {
            bits |= ACCESS3_DELETE;
        }
    }
    if allowed(st, cred, EXEC) {
        bits |= if st.is_dir() {
            ACCESS3_LOOKUP
        } else {
            ACCESS3_EXECUTE
        };
    }
    if st.is_dir() && !allowed(st, cred, EXEC) {
        // Without search permission nothing in the directory can be changed.
        bits &= !(ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE);
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::Time;

    fn st(mode: u32, uid: u32, gid: u32) -> Stat {
        let t = Time { sec: 0, nsec: 0 };
        Stat {
            mode,
            nlink: 1,
            uid,
            gid,
            size: 0,
            used: 0,
            rdev_major: 0,
            rdev_minor: 0,
            dev: 0,
            ino: 1,
            atime: t,
            mtime: t,
            ctime: t,
            gen: 0,
        }
    }

    fn user(uid: u32, gid: u32, groups: &[u32]) -> Cred {
        Cred::new(uid, gid, groups)
    }

    #[test]
    fn owner_group_other_classes() {
        let f = st(libc::S_IFREG | 0o640, 1000, 100);
        assert!(allowed(&f, &user(1000, 1, &[]), READ | WRITE));
        assert!(allowed(&f, &user(2000, 1, &[100]), READ));
        assert!(!allowed(&f, &user(2000, 1, &[100]), WRITE));
        assert!(!allowed(&f, &user(2000, 1, &[]), READ));
    }

    #[test]
    fn owner_class_does_not_fall_through_to_group() {
        // mode 0077: the owner has no rights even though the group does.
        let f = st(libc::S_IFREG | 0o077, 1000, 100);
        assert!(!allowed(&f, &user(1000, 100, &[]), READ));
    }

    #[test]
    fn root_executes_only_with_an_x_bit() {
        let f = st(libc::S_IFREG | 0o600, 1000, 100);
        let root = user(0, 0, &[]);
        assert!(allowed(&f, &root, READ | WRITE));
        assert!(!allowed(&f, &root, EXEC));
        assert!(allowed(&st(libc::S_IFDIR | 0o700, 5, 5), &root, EXEC));
    }

    #[test]
    fn sticky_directory_protects_other_users_entries() {
        let tmp = st(libc::S_IFDIR | 0o1777, 0, 0);
        let mine = st(libc::S_IFREG | 0o644, 1000, 100);
        assert!(may_delete_entry(&tmp, &mine, &user(1000, 100, &[])));
        assert!(!may_delete_entry(&tmp, &mine, &user(1001, 100, &[])));
        assert!(may_delete_entry(&tmp, &mine, &user(0, 0, &[])));
    }

    #[test]
    fn owner_may_write_a_read_only_file_it_created() {
        let f = st(libc::S_IFREG | 0o444, 1000, 100);
        assert!(may_write_data(&f, &user(1000, 100, &[])));
        assert!(!may_write_data(&f, &user(1001, 100, &[])));
    }

    #[test]
    fn access_reflects_read_only_exports() {
        let f = st(libc::S_IFREG | 0o666, 1000, 100);
        assert_eq!(
            access_bits(&f, &user(1000, 100, &[]), false),
            0x01 | 0x04 | 0x08
        );
        assert_eq!(access_bits(&f, &user(1000, 100, &[]), true), 0x01);
    }
}
