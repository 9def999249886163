//! One stored entry of the index and its byte format.

/// An object's generation and the (parent, name) links it was seen under.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    pub gen: u64,
    pub links: Vec<(u64, Box<[u8]>)>,
}

impl Node {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(9 + self.links.len() * 16);
        v.extend_from_slice(&self.gen.to_be_bytes());
        v.push(self.links.len().min(255) as u8);
        for (p, n) in self.links.iter().take(255) {
            v.extend_from_slice(&p.to_be_bytes());
            let len = n.len().min(u16::MAX as usize);
            v.extend_from_slice(&(len as u16).to_be_bytes());
            v.extend_from_slice(&n[..len]);
        }
        v
    }

    /// Decodes a stored node; `None` if the bytes are not a node (a damaged
    /// entry is treated as missing and repaired by the next rebuild).
    pub fn decode(b: &[u8]) -> Option<Node> {
        let gen = u64::from_be_bytes(b.get(..8)?.try_into().ok()?);
        let n = *b.get(8)? as usize;
        let mut at = 9;
        let mut links = Vec::with_capacity(n);
        for _ in 0..n {
            let p = u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?);
            let len = u16::from_be_bytes(b.get(at + 8..at + 10)?.try_into().ok()?) as usize;
            let name = b.get(at + 10..at + 10 + len)?;
            links.push((p, name.into()));
            at += 10 + len;
        }
        Some(Node { gen, links })
    }
}
