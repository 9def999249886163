//! TCP record marking (RFC 5531 §11): reassembles multi-fragment records.
//!
//! A fragment header's length is checked against the maximum record size
//! before any byte is buffered, and buffer space is only touched as data
//! actually arrives, so a header claiming 2 GiB costs nothing but a closed
//! connection.

use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt};

pub const LAST_FRAGMENT: u32 = 0x8000_0000;

#[derive(Debug, Error)]
pub enum RecordError {
    #[error("record of at least {claimed} bytes exceeds the limit of {max} bytes")]
    TooLarge { claimed: u64, max: usize },
    #[error("connection closed in the middle of a record")]
    Truncated,
    #[error("reading a record")]
    Io(#[from] std::io::Error),
}

/// Reads one complete record into `buf` (cleared first). Returns `Ok(false)`
/// on a clean end of stream between records.
pub async fn read_record<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> Result<bool, RecordError> {
    buf.clear();
    let mut first = true;
    loop {
        let mut hdr = [0u8; 4];
        match r.read_exact(&mut hdr).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return if first && buf.is_empty() {
                    Ok(false)
                } else {
                    Err(RecordError::Truncated)
                };
            }
            Err(e) => return Err(e.into()),
        }
        first = false;
        let word = u32::from_be_bytes(hdr);
        let len = (word & !LAST_FRAGMENT) as usize;
        let total = buf.len() as u64 + len as u64;
        if total > max as u64 {
            return Err(RecordError::TooLarge {
                claimed: total,
                max,
            });
        }
        let want = buf.len() + len;
        buf.reserve(len);
        while buf.len() < want {
            let need = want - buf.len();
            let n = (&mut *r).take(need as u64).read_buf(buf).await?;
            if n == 0 {
                return Err(RecordError::Truncated);
            }
        }
        if word & LAST_FRAGMENT != 0 {
            return Ok(true);
        }
    }
}

/// Fills in the record mark in the four bytes reserved at the front of a
/// reply buffer (a single last fragment).
pub fn set_record_mark(reply: &mut [u8]) {
    let len = (reply.len() - 4) as u32 | LAST_FRAGMENT;
    reply[..4].copy_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(data: &[u8], last: bool) -> Vec<u8> {
        let mut v = ((data.len() as u32) | if last { LAST_FRAGMENT } else { 0 })
            .to_be_bytes()
            .to_vec();
        v.extend_from_slice(data);
        v
    }

    #[tokio::test]
    async fn multi_fragment_record_is_reassembled() {
        let mut input = frag(b"hello ", false);
        input.extend(frag(b"world", true));
        let mut buf = Vec::new();
        let mut r = &input[..];
        assert!(read_record(&mut r, &mut buf, 1024).await.unwrap());
        assert_eq!(buf, b"hello world");
        assert!(!read_record(&mut r, &mut buf, 1024).await.unwrap());
    }

    #[tokio::test]
    async fn oversized_fragment_is_refused_before_reading() {
        let input = 0xFFFF_FFFFu32.to_be_bytes();
        let mut buf = Vec::new();
        let mut r = &input[..];
        let err = read_record(&mut r, &mut buf, 1 << 20).await.unwrap_err();
        assert!(matches!(err, RecordError::TooLarge { .. }));
        assert!(buf.capacity() < 1 << 20);
    }

    #[tokio::test]
    async fn fragments_adding_up_past_the_limit_are_refused() {
        let mut input = frag(&[0u8; 600], false);
        input.extend(frag(&[0u8; 600], true));
        let mut buf = Vec::new();
        let mut r = &input[..];
        assert!(matches!(
            read_record(&mut r, &mut buf, 1000).await,
            Err(RecordError::TooLarge { .. })
        ));
    }

    #[tokio::test]
    async fn truncated_record_is_an_error() {
        let mut input = frag(b"abcdef", true);
        input.truncate(7);
        let mut buf = Vec::new();
        let mut r = &input[..];
        assert!(matches!(
            read_record(&mut r, &mut buf, 1024).await,
            Err(RecordError::Truncated)
        ));
    }
}
