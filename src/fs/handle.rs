//! Wire file handles (ARCHITECTURE §4).
//!
//! Layout, 48 bytes (NFSv3 allows 64):
//! ```text
//!  0      version (1)
//!  1..4   reserved, zero
//!  4..8   export id      (stable: derived from the export name)
//!  8..16  filesystem id  (statvfs f_fsid of the export root: stable per dataset)
//! 16..24  object number  (inode)
//! 24..32  generation     (birth time: tells a reused inode number apart)
//! 32..48  MAC            (SipHash-1-3 128 over bytes 0..32, keyed per export)
//! ```
//! The MAC key is kept with the export's state, so a forged or bit-flipped
//! handle never names an object, and a handle minted for one export is refused
//! by another. Nothing in the handle depends on the server's start time.

use siphasher::sip128::{Hasher128, SipHasher13};
use std::hash::Hasher;

pub const HANDLE_LEN: usize = 48;
pub const HANDLE_VERSION: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileHandle {
    pub export_id: u32,
    pub fsid: u64,
    pub ino: u64,
    pub gen: u64,
}

/// A 128-bit MAC key.
#[derive(Clone, Copy)]
pub struct HandleKey(pub [u8; 16]);

impl std::fmt::Debug for HandleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HandleKey(..)")
    }
}

impl HandleKey {
    pub fn random() -> std::io::Result<HandleKey> {
        let mut k = [0u8; 16];
        getrandom::getrandom(&mut k).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(HandleKey(k))
    }

    fn mac(&self, body: &[u8]) -> [u8; 16] {
        let mut h = SipHasher13::new_with_key(&self.0);
        h.write(body);
        h.finish128().as_bytes()
    }
}

/// Why an export refused a wire handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a handle of ours, or its MAC does not verify (NFS3ERR_BADHANDLE).
    Bad,
    /// One of ours, of a filesystem or export that is no longer the one
    /// served under that id (NFS3ERR_STALE).
    Stale,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleError {
    /// Wrong length or version: not one of ours at all.
    Malformed,
    /// Well-formed but the MAC does not verify for this export.
    BadMac,
}

impl FileHandle {
    pub fn encode(&self, key: &HandleKey) -> [u8; HANDLE_LEN] {
        let mut b = [0u8; HANDLE_LEN];
        b[0] = HANDLE_VERSION;
        b[4..8].copy_from_slice(&self.export_id.to_be_bytes());
        b[8..16].copy_from_slice(&self.fsid.to_be_bytes());
        b[16..24].copy_from_slice(&self.ino.to_be_bytes());
        b[24..32].copy_from_slice(&self.gen.to_be_bytes());
        let mac = key.mac(&b[..32]);
        b[32..48].copy_from_slice(&mac);
        b
    }

    /// The export id of a handle, read before its MAC can be checked (the
    /// key is per export).
    pub fn peek_export_id(bytes: &[u8]) -> Result<u32, HandleError> {
        if bytes.len() != HANDLE_LEN || bytes[0] != HANDLE_VERSION || bytes[1..4] != [0, 0, 0] {
            return Err(HandleError::Malformed);
        }
        Ok(u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]))
    }

    pub fn decode(bytes: &[u8], key: &HandleKey) -> Result<FileHandle, HandleError> {
        let export_id = Self::peek_export_id(bytes)?;
        let mac = key.mac(&bytes[..32]);
        // Constant-time comparison: the MAC is the only secret here.
        let diff = mac
            .iter()
            .zip(&bytes[32..48])
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return Err(HandleError::BadMac);
        }
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&bytes[i..i + 8]);
            u64::from_be_bytes(a)
        };
        Ok(FileHandle {
            export_id,
            fsid: u64_at(8),
            ino: u64_at(16),
            gen: u64_at(24),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fh() -> FileHandle {
        FileHandle {
            export_id: 7,
            fsid: 0x1122,
            ino: 42,
            gen: 99,
        }
    }

    #[test]
    fn round_trips() {
        let k = HandleKey([3; 16]);
        let b = fh().encode(&k);
        assert_eq!(FileHandle::decode(&b, &k), Ok(fh()));
    }

    #[test]
    fn every_flipped_bit_is_refused() {
        let k = HandleKey([3; 16]);
        let b = fh().encode(&k);
        for i in 0..HANDLE_LEN * 8 {
            let mut f = b;
            f[i / 8] ^= 1 << (i % 8);
            assert!(FileHandle::decode(&f, &k).is_err(), "bit {i}");
        }
    }

    #[test]
    fn another_exports_key_is_refused() {
        let b = fh().encode(&HandleKey([3; 16]));
        assert_eq!(
            FileHandle::decode(&b, &HandleKey([4; 16])),
            Err(HandleError::BadMac)
        );
    }

    #[test]
    fn wrong_length_is_malformed() {
        let k = HandleKey([3; 16]);
        assert_eq!(
            FileHandle::decode(&[1; 20], &k),
            Err(HandleError::Malformed)
        );
    }
}
