//! `volnfs ctl`: the command-line client of the control socket. Words
//! become a request, the reply is printed for people or as JSON.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::PROTOCOL_VERSION;

pub fn request_from_words(words: &[String]) -> Result<(String, Value), String> {
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let usage = "usage: volnfs ctl status | clients list | exports reload | snapshot create|delete|rollback NAME | snapshot list | quota get | quota set BYTES";
    match w.as_slice() {
        ["status"] => Ok(("status".into(), json!({}))),
        ["clients", "list"] | ["clients"] => Ok(("clients.list".into(), json!({}))),
        ["exports", "reload"] | ["reload"] => Ok(("exports.reload".into(), json!({}))),
        ["snapshot", "list"] | ["snapshots"] => Ok(("snapshot.list".into(), json!({}))),
        ["snapshot", op @ ("create" | "delete" | "rollback"), name] => {
            Ok((format!("snapshot.{op}"), json!({"name": name})))
        }
        ["quota", "get"] | ["quota"] => Ok(("quota.get".into(), json!({}))),
        ["quota", "set", bytes] => {
            let b: u64 = bytes
                .parse()
                .map_err(|_| format!("quota set: {bytes:?} is not a whole number of bytes"))?;
            Ok(("quota.set".into(), json!({"bytes": b})))
        }
        // Raw form for scripts: `volnfs ctl OP [JSON-ARGS]`.
        [op] if op.contains('.') => Ok((op.to_string(), json!({}))),
        [op, args] if op.contains('.') => {
            let v: Value = serde_json::from_str(args)
                .map_err(|e| format!("arguments of {op}: not JSON: {e}"))?;
            Ok((op.to_string(), v))
        }
        _ => Err(usage.into()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error(
        "connecting to the control socket {path} (is volnfs running? is this the right --socket?)"
    )]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("talking to the control socket {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the control socket {path} answered something that is not a JSON reply: {line}")]
    BadReply { path: PathBuf, line: String },
}

/// Sends one request and returns the whole reply object.
pub async fn call(path: &Path, op: &str, args: Value) -> Result<Value, CtlError> {
    let mut stream = UnixStream::connect(path)
        .await
        .map_err(|source| CtlError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
    let io = |source| CtlError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut req =
        serde_json::to_vec(&json!({"v": PROTOCOL_VERSION, "id": 1, "op": op, "args": args}))
            .unwrap_or_default();
    req.push(b'\n');
    stream.write_all(&req).await.map_err(io)?;
    let mut rd = BufReader::new(stream);
    let mut line = String::new();
    rd.read_line(&mut line).await.map_err(io)?;
    serde_json::from_str(&line).map_err(|_| CtlError::BadReply {
        path: path.to_path_buf(),
        line: line.trim_end().to_string(),
    })
}

/// Renders a result for people: nested objects as indented `key: value` lines.
pub fn render_human(v: &Value) -> String {
    fn walk(v: &Value, indent: usize, out: &mut String) {
        let pad = "  ".repeat(indent);
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match v {
                        Value::Object(_) | Value::Array(_) if !is_empty(v) => {
                            out.push_str(&format!("{pad}{k}:\n"));
                            walk(v, indent + 1, out);
                        }
                        _ => out.push_str(&format!("{pad}{k}: {}\n", scalar(v))),
                    }
                }
            }
            Value::Array(a) => {
                for item in a {
                    match item {
                        Value::Object(_) | Value::Array(_) => {
                            out.push_str(&format!("{pad}-\n"));
                            walk(item, indent + 1, out);
                        }
                        _ => out.push_str(&format!("{pad}- {}\n", scalar(item))),
                    }
                }
            }
            other => out.push_str(&format!("{pad}{}\n", scalar(other))),
        }
    }
    fn is_empty(v: &Value) -> bool {
        matches!(v, Value::Object(m) if m.is_empty())
            || matches!(v, Value::Array(a) if a.is_empty())
    }
    fn scalar(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Null => "-".into(),
            Value::Array(a) if a.is_empty() => "(none)".into(),
            Value::Object(m) if m.is_empty() => "(none)".into(),
            other => other.to_string(),
        }
    }
    let mut out = String::new();
    walk(v, 0, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn ctl_words_map_to_operations() {
        assert_eq!(
            request_from_words(&words("snapshot create daily")).unwrap(),
            ("snapshot.create".into(), json!({"name": "daily"}))
        );
        assert_eq!(
            request_from_words(&words("quota set 1073741824")).unwrap(),
            ("quota.set".into(), json!({"bytes": 1073741824u64}))
        );
        assert!(request_from_words(&words("quota set lots")).is_err());
        assert!(request_from_words(&words("frobnicate")).is_err());
        assert_eq!(request_from_words(&words("status")).unwrap().0, "status");
    }

    #[test]
    fn human_rendering_is_indented_key_values() {
        let s = render_human(&json!({"a": 1, "b": {"c": "x"}, "d": []}));
        assert_eq!(s, "a: 1\nb:\n  c: x\nd: (none)\n");
    }
}
