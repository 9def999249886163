//! The requests of the control channel, by id: which are running, and the
//! replies of finished ones that changed something (`protocol::changes_state`),
//! so an agent whose connection broke can ask how they ended (`result`).
//!
//! Requests outlive their connection (a rollback is never abandoned half
//! way), so their ids live here, not in a connection. Finished replies are
//! kept for [`REMEMBER_FOR`], at most [`REMEMBER`] of them, oldest dropped
//! first; read-only ones are forgotten at once (ask again). Pure: the
//! caller passes the time; the replies travel in `watch` channels so a
//! `result` with `"wait": true` can wait for one still running.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::watch;

use crate::control::protocol::{changes_state, op_err, ErrorCode, OpError, Request};

/// How many finished replies are kept.
pub const REMEMBER: usize = 64;
/// How long a finished reply is kept.
pub const REMEMBER_FOR: Duration = Duration::from_secs(600);

/// A reply once its request has finished.
pub type Reply = Arc<Value>;

struct Entry {
    id: Value,
    op: String,
    remember: bool,
    /// Order of arrival (instants can be equal).
    seq: u64,
    finished: Option<Instant>,
    reply: watch::Receiver<Option<Reply>>,
}

impl Entry {
    /// A request whose task ended without finishing (only at shutdown,
    /// when leftovers are aborted).
    fn abandoned(&self) -> bool {
        self.finished.is_none() && self.reply.has_changed().is_err()
    }
}

/// What the running request holds until it finishes.
pub struct Ticket {
    key: String,
    tx: watch::Sender<Option<Reply>>,
}

/// A request found by id.
pub struct Found {
    pub op: String,
    pub reply: watch::Receiver<Option<Reply>>,
}

#[derive(Default)]
pub struct Results {
    entries: HashMap<String, Entry>,
    next_seq: u64,
}

/// Ids are compared as their JSON text: `7` and `"7"` are different ids.
fn key_of(id: &Value) -> String {
    id.to_string()
}

impl Results {
    /// Registers a request as running; refused while another with the same
    /// id is.
    pub fn begin(&mut self, req: &Request, now: Instant) -> Result<Ticket, OpError> {
        self.prune(now);
        let key = key_of(&req.id);
        if let Some(e) = self.entries.get(&key) {
            if e.finished.is_none() && !e.abandoned() {
                return Err(op_err(
                    ErrorCode::DuplicateId,
                    format!(
                        "request id {} is still running ({}); use ids unique across connections",
                        req.id, e.op
                    ),
                ));
            }
        }
        let (tx, reply) = watch::channel(None);
        self.next_seq += 1;
        self.entries.insert(
            key.clone(),
            Entry {
                id: req.id.clone(),
                op: req.op.clone(),
                remember: changes_state(&req.op),
                seq: self.next_seq,
                finished: None,
                reply,
            },
        );
        Ok(Ticket { key, tx })
    }

    /// Records the reply of a request: kept if its operation changes
    /// something, forgotten otherwise.
    pub fn finish(&mut self, ticket: Ticket, reply: Value, now: Instant) {
        ticket.tx.send_replace(Some(Arc::new(reply)));
        match self.entries.get_mut(&ticket.key) {
            Some(e) if e.remember => e.finished = Some(now),
            Some(_) => {
                self.entries.remove(&ticket.key);
            }
            None => {}
        }
        self.prune(now);
    }

    pub fn lookup(&self, id: &Value) -> Option<Found> {
        self.entries.get(&key_of(id)).map(|e| Found {
            op: e.op.clone(),
            reply: e.reply.clone(),
        })
    }

    /// Ids of the requests running now, oldest first.
    pub fn running(&self) -> Vec<Value> {
        self.ids(|e| e.finished.is_none() && !e.abandoned())
    }

    /// Ids whose replies `result` can give, oldest first.
    pub fn remembered(&self) -> Vec<Value> {
        self.ids(|e| e.finished.is_some())
    }

    fn ids(&self, which: impl Fn(&Entry) -> bool) -> Vec<Value> {
        let mut v: Vec<&Entry> = self.entries.values().filter(|e| which(e)).collect();
        v.sort_by_key(|e| e.seq);
        v.into_iter().map(|e| e.id.clone()).collect()
    }

    fn prune(&mut self, now: Instant) {
        self.entries.retain(|_, e| match e.finished {
            Some(t) => now.saturating_duration_since(t) <= REMEMBER_FOR,
            None => !e.abandoned(),
        });
        let mut done: Vec<(Instant, u64, String)> = self
            .entries
            .iter()
            .filter_map(|(k, e)| e.finished.map(|t| (t, e.seq, k.clone())))
            .collect();
        if done.len() > REMEMBER {
            done.sort();
            for (_, _, k) in &done[..done.len() - REMEMBER] {
                self.entries.remove(k);
            }
        }
    }
}

/// The `result` of a request: `running`, or `done` with its whole reply.
pub fn result_body(id: &Value, op: &str, reply: Option<&Value>) -> Value {
    match reply {
        Some(r) => json!({"id": id, "op": op, "state": "done", "reply": r}),
        None => json!({"id": id, "op": op, "state": "running"}),
    }
}

/// The arguments of `result`: the id asked about, and whether to wait.
pub fn result_args(req: &Request) -> Result<(Value, bool), OpError> {
    let id = match req.args.get("id") {
        Some(v) if !v.is_null() => v.clone(),
        _ => {
            return Err(op_err(
                ErrorCode::InvalidArgument,
                "args.id (the id of an earlier request) is required",
            ))
        }
    };
    let wait = match req.args.get("wait") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(op_err(
                ErrorCode::InvalidArgument,
                "args.wait must be true or false",
            ))
        }
    };
    Ok((id, wait))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(id: Value, op: &str) -> Request {
        Request {
            id,
            op: op.into(),
            args: Default::default(),
        }
    }

    #[test]
    fn a_finished_rollback_is_remembered_and_a_status_forgotten() {
        let mut r = Results::default();
        let t0 = Instant::now();
        let rb = r.begin(&req(json!(7), "snapshot.rollback"), t0).unwrap();
        let st = r.begin(&req(json!("s"), "status"), t0).unwrap();
        assert_eq!(r.running(), [json!(7), json!("s")]);
        r.finish(st, json!({"ok": true}), t0);
        r.finish(rb, json!({"id": 7, "ok": true}), t0);
        assert_eq!(r.remembered(), [json!(7)]);
        assert!(r.running().is_empty());
        assert!(r.lookup(&json!("s")).is_none(), "read-only: ask again");
        let found = r.lookup(&json!(7)).unwrap();
        assert_eq!(found.op, "snapshot.rollback");
        let reply = found.reply.borrow().clone().unwrap();
        assert_eq!(reply["id"], 7);
        assert!(r.lookup(&json!("7")).is_none(), "7 and \"7\" differ");
    }

    #[test]
    fn an_id_still_running_is_refused_and_reusable_once_finished() {
        let mut r = Results::default();
        let t0 = Instant::now();
        let t = r.begin(&req(json!(1), "snapshot.create"), t0).unwrap();
        let err = r.begin(&req(json!(1), "status"), t0).err().unwrap();
        assert_eq!(err.code, ErrorCode::DuplicateId);
        r.finish(t, json!({}), t0);
        assert!(r.begin(&req(json!(1), "status"), t0).is_ok());
    }

    #[test]
    fn remembered_replies_are_bounded_in_number_and_age() {
        let mut r = Results::default();
        let t0 = Instant::now();
        for i in 0..REMEMBER + 5 {
            let t = r.begin(&req(json!(i), "quota.set"), t0).unwrap();
            r.finish(t, json!({}), t0 + Duration::from_millis(i as u64));
        }
        let kept = r.remembered();
        assert_eq!(kept.len(), REMEMBER);
        assert_eq!(kept[0], json!(5), "the oldest went first");
        let later = t0 + REMEMBER_FOR + Duration::from_secs(1);
        let t = r.begin(&req(json!("new"), "status"), later).unwrap();
        assert!(r.remembered().is_empty(), "all older than REMEMBER_FOR");
        r.finish(t, json!({}), later);
    }

    #[test]
    fn a_request_whose_task_was_dropped_is_not_running() {
        let mut r = Results::default();
        let t = r.begin(&req(json!(3), "snapshot.rollback"), Instant::now());
        drop(t);
        assert!(r.running().is_empty());
        assert!(r.begin(&req(json!(3), "status"), Instant::now()).is_ok());
    }

    #[test]
    fn result_arguments_are_checked() {
        let mut q = req(json!(9), "result");
        assert!(result_args(&q).is_err());
        q.args.insert("id".into(), json!(7));
        assert_eq!(result_args(&q).unwrap(), (json!(7), false));
        q.args.insert("wait".into(), json!("yes"));
        assert!(result_args(&q).is_err());
        q.args.insert("wait".into(), json!(true));
        assert_eq!(result_args(&q).unwrap(), (json!(7), true));
        assert_eq!(
            result_body(&json!(7), "quota.set", None)["state"],
            "running"
        );
    }
}
