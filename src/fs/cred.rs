//! The identity a file operation runs for: the caller's AUTH_SYS uid, gid and
//! groups after the export's squash rules. The wire credential
//! (`rpc::msg::AuthSys`) is converted once, by the export (`exports::squash`).

/// At most 16 supplementary groups (the AUTH_SYS limit), held inline.
pub const MAX_GROUPS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cred {
    pub uid: u32,
    pub gid: u32,
    groups: [u32; MAX_GROUPS],
    ngroups: u8,
}

impl Cred {
    /// Groups beyond [`MAX_GROUPS`] are dropped (the wire decoder already
    /// refuses more).
    pub fn new(uid: u32, gid: u32, groups: &[u32]) -> Cred {
        let mut g = [0u32; MAX_GROUPS];
        let n = groups.len().min(MAX_GROUPS);
        g[..n].copy_from_slice(&groups[..n]);
        Cred {
            uid,
            gid,
            groups: g,
            ngroups: n as u8,
        }
    }

    pub fn root() -> Cred {
        Cred::new(0, 0, &[])
    }

    pub fn groups(&self) -> &[u32] {
        &self.groups[..self.ngroups as usize]
    }

    /// True when `gid` is the primary group or one of the supplementary ones.
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups().contains(&gid)
    }

    pub fn is_root(&self) -> bool {
        self.uid == 0
    }
}
