//! XDR (RFC 4506) encoding and decoding over byte slices.
//!
//! The decoder never allocates: variable-length items are returned as borrowed
//! slices of the request buffer after their length has been checked against the
//! bytes actually present *and* against a caller-supplied maximum. This is what
//! keeps a 40-byte hostile record from making the server allocate gigabytes
//! (ARCHITECTURE §2). WRITE payloads therefore reach `pwrite` without a copy.
//!
//! The encoder appends to a `Vec<u8>`; replies are built in one buffer so they
//! can go out in a single write.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum XdrError {
    #[error("truncated XDR data: needed {needed} bytes at offset {offset}, {available} present")]
    Truncated {
        offset: usize,
        needed: usize,
        available: usize,
    },
    #[error("XDR length {len} exceeds the limit of {max} bytes")]
    TooLong { len: u32, max: u32 },
    #[error("invalid XDR value {value} for {what}")]
    BadValue { what: &'static str, value: u32 },
}

/// Pads a length up to the next multiple of four.
pub const fn padded(len: usize) -> usize {
    (len + 3) & !3
}

/// A bounded cursor over a received message.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The bytes not yet consumed.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], XdrError> {
        if self.remaining() < n {
            return Err(XdrError::Truncated {
                offset: self.pos,
                needed: n,
                available: self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn u32(&mut self) -> Result<u32, XdrError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn i32(&mut self) -> Result<i32, XdrError> {
        Ok(self.u32()? as i32)
    }

    pub fn u64(&mut self) -> Result<u64, XdrError> {
        let hi = self.u32()? as u64;
        let lo = self.u32()? as u64;
        Ok((hi << 32) | lo)
    }

    pub fn bool(&mut self) -> Result<bool, XdrError> {
        match self.u32()? {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(XdrError::BadValue {
                what: "bool",
                value,
            }),
        }
    }

    /// Fixed-length opaque data of `n` bytes (plus padding).
    pub fn opaque_fixed(&mut self, n: usize) -> Result<&'a [u8], XdrError> {
        let s = self.take(n)?;
        self.take(padded(n) - n)?;
        Ok(s)
    }

    /// Variable-length opaque data, at most `max` bytes. The length is checked
    /// against `max` and against the bytes present before anything is touched.
    pub fn opaque(&mut self, max: u32) -> Result<&'a [u8], XdrError> {
        let len = self.u32()?;
        if len > max {
            return Err(XdrError::TooLong { len, max });
        }
        self.opaque_fixed(len as usize)
    }

    /// An XDR string; returned as raw bytes because NFS file names are not
    /// required to be UTF-8.
    pub fn string(&mut self, max: u32) -> Result<&'a [u8], XdrError> {
        self.opaque(max)
    }

    /// XDR optional-data (`*T`): a bool discriminant.
    pub fn optional<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, XdrError>,
    ) -> Result<Option<T>, XdrError> {
        if self.bool()? {
            Ok(Some(f(self)?))
        } else {
            Ok(None)
        }
    }
}

/// Appends XDR items to a buffer.
#[derive(Debug, Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer { buf: Vec::new() }
    }

    pub fn with_buffer(buf: Vec<u8>) -> Self {
        Writer { buf }
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }

    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn i32(&mut self, v: i32) {
        self.u32(v as u32);
    }

    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn bool(&mut self, v: bool) {
        self.u32(v as u32);
    }

    pub fn pad(&mut self, len: usize) {
        let n = padded(len) - len;
        self.buf.extend_from_slice(&[0u8; 3][..n]);
    }

    pub fn opaque_fixed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        self.pad(data.len());
    }

    /// Variable-length opaque: callers guarantee `data.len()` fits in a u32
    /// (every producer in this crate is bounded far below that).
    pub fn opaque(&mut self, data: &[u8]) {
        self.u32(data.len() as u32);
        self.opaque_fixed(data);
    }

    pub fn string(&mut self, s: &[u8]) {
        self.opaque(s);
    }

    /// Overwrites a previously written u32 at byte offset `at`.
    pub fn patch_u32(&mut self, at: usize, v: u32) {
        self.buf[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_length_is_bounded_before_reading() {
        let mut w = Writer::new();
        w.u32(0xFFFF_FFFF);
        let mut r = Reader::new(&w.buf);
        assert_eq!(
            r.opaque(1024),
            Err(XdrError::TooLong {
                len: 0xFFFF_FFFF,
                max: 1024
            })
        );
    }

    #[test]
    fn opaque_longer_than_buffer_is_truncated_error() {
        let mut w = Writer::new();
        w.u32(100);
        w.u32(1);
        let mut r = Reader::new(&w.buf);
        assert!(matches!(r.opaque(1000), Err(XdrError::Truncated { .. })));
    }

    #[test]
    fn round_trip_with_padding() {
        let mut w = Writer::new();
        w.opaque(b"abcde");
        w.u64(0x0102_0304_0506_0708);
        w.bool(true);
        assert_eq!(w.len(), 4 + 8 + 8 + 4);
        let mut r = Reader::new(&w.buf);
        assert_eq!(r.opaque(16).unwrap(), b"abcde");
        assert_eq!(r.u64().unwrap(), 0x0102_0304_0506_0708);
        assert!(r.bool().unwrap());
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn bad_bool_is_rejected() {
        let mut w = Writer::new();
        w.u32(2);
        assert!(Reader::new(&w.buf).bool().is_err());
    }
}
