//! Newline-delimited JSON on a stream, bounded: the one line reader and
//! writer of the local control socket and of the control channel. Owns only
//! the framing (a line is at most [`MAX_LINE`] bytes; a longer one is
//! skipped in bounded chunks, never buffered whole); what a line means is
//! `protocol`'s business.

use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::MAX_LINE;

/// What one read produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// The peer closed the stream.
    Eof,
    /// A line (with its `\n`, unless the stream ended after it) is in the buffer.
    Complete,
    /// The line exceeded [`MAX_LINE`]; it was skipped up to its end.
    TooLong,
}

/// Reads one line into `line` (cleared first).
pub async fn read_line<R: AsyncBufRead + Unpin>(
    rd: &mut R,
    line: &mut Vec<u8>,
) -> std::io::Result<Line> {
    line.clear();
    let n = (&mut *rd)
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', line)
        .await?;
    if n == 0 {
        return Ok(Line::Eof);
    }
    if line.len() <= MAX_LINE || line.ends_with(b"\n") {
        return Ok(Line::Complete);
    }
    // Skip the rest of the line in bounded chunks, then report it.
    loop {
        line.clear();
        let n = (&mut *rd)
            .take(MAX_LINE as u64)
            .read_until(b'\n', line)
            .await?;
        if n == 0 || line.ends_with(b"\n") {
            line.clear();
            return Ok(Line::TooLong);
        }
    }
}

/// Writes `v` as one line.
pub async fn write_line<W: AsyncWrite + Unpin>(wr: &mut W, v: &Value) -> std::io::Result<()> {
    // Serialising a `Value` cannot fail (its keys are strings).
    let mut s = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    s.push(b'\n');
    wr.write_all(&s).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_oversized_line_is_skipped_and_the_next_one_read() {
        let mut input = vec![b'x'; 3 * MAX_LINE];
        input.extend_from_slice(b"\n{\"v\":1}\n");
        let mut rd = tokio::io::BufReader::new(&input[..]);
        let mut line = Vec::new();
        assert_eq!(read_line(&mut rd, &mut line).await.unwrap(), Line::TooLong);
        assert_eq!(read_line(&mut rd, &mut line).await.unwrap(), Line::Complete);
        assert_eq!(line, b"{\"v\":1}\n");
        assert_eq!(read_line(&mut rd, &mut line).await.unwrap(), Line::Eof);
    }
}
