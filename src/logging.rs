//! Bunyan-compatible JSON log lines, for Triton operators' tools (`bunyan`,
//! `json`, log shipping) reading the SMF log.
//!
//! Owns the line format only: a `tracing_subscriber` layer that writes one
//! JSON object per event with bunyan's core fields — `v` (0), `level`
//! (trace 10, debug 20, info 30, warn 40, error 50), `name`, `hostname`,
//! `pid`, `time` (ISO 8601, UTC, milliseconds), `msg` — followed by the
//! event's fields and those of its spans (peer, xid, ...), innermost last.
//! Filtering and the choice of format belong to `main`.

use std::io::Write;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// Bunyan's numeric levels.
pub fn bunyan_level(level: &Level) -> u8 {
    match *level {
        Level::TRACE => 10,
        Level::DEBUG => 20,
        Level::INFO => 30,
        Level::WARN => 40,
        Level::ERROR => 50,
    }
}

/// Fields bunyan reserves; an event field of the same name is renamed with a
/// trailing `_` so it cannot corrupt the record.
const CORE: [&str; 7] = ["v", "level", "name", "hostname", "pid", "time", "msg"];

/// `2026-11-22T02:07:23.123Z` (RFC 3339 / ISO 8601 in UTC, as bunyan writes).
pub fn iso8601(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // when the name fits, and we stop at the first NUL or the end.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl JsonVisitor<'_> {
    fn put(&mut self, field: &Field, v: Value) {
        let name = field.name();
        let key = if name == "message" {
            "msg".to_string()
        } else if CORE.contains(&name) {
            format!("{name}_")
        } else {
            name.to_string()
        };
        self.0.insert(key, v);
    }
}

impl Visit for JsonVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // The whole cause chain, as the house rules want in logs.
        let mut s = value.to_string();
        let mut src = value.source();
        while let Some(e) = src {
            s.push_str(": ");
            s.push_str(&e.to_string());
            src = e.source();
        }
        self.put(field, Value::String(s));
    }
}

/// A span's recorded fields, kept in its extensions.
struct SpanFields(Map<String, Value>);

/// The layer. `W` is where lines go (stderr in the server).
pub struct BunyanLayer<W> {
    name: String,
    hostname: String,
    pid: u32,
    out: Mutex<W>,
}

impl<W: Write> BunyanLayer<W> {
    pub fn new(name: &str, out: W) -> Self {
        BunyanLayer {
            name: name.to_string(),
            hostname: hostname(),
            pid: std::process::id(),
            out: Mutex::new(out),
        }
    }

    /// The record for one event (without spans), for tests and `on_event`.
    fn record(
        &self,
        level: &Level,
        time: SystemTime,
        fields: Map<String, Value>,
    ) -> Map<String, Value> {
        let mut rec = Map::new();
        rec.insert("v".into(), 0.into());
        rec.insert("level".into(), bunyan_level(level).into());
        rec.insert("name".into(), self.name.clone().into());
        rec.insert("hostname".into(), self.hostname.clone().into());
        rec.insert("pid".into(), self.pid.into());
        rec.insert("time".into(), iso8601(time).into());
        rec.insert("msg".into(), "".into());
        rec.extend(fields);
        rec
    }
}

impl<S, W> Layer<S> for BunyanLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: Write + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut map = Map::new();
        attrs.record(&mut JsonVisitor(&mut map));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(map));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            if let Some(SpanFields(map)) = ext.get_mut::<SpanFields>() {
                values.record(&mut JsonVisitor(map));
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Map::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(map)) = span.extensions().get::<SpanFields>() {
                    fields.extend(map.clone());
                }
            }
        }
        event.record(&mut JsonVisitor(&mut fields));
        let meta = event.metadata();
        fields
            .entry("target")
            .or_insert_with(|| meta.target().into());
        let rec = self.record(meta.level(), SystemTime::now(), fields);
        let mut line = Value::Object(rec).to_string();
        line.push('\n');
        // One write per line so concurrent threads never interleave records.
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
    }
}

/// Installs the bunyan layer on stderr as the global subscriber.
pub fn init_bunyan(name: &str, filter: tracing_subscriber::EnvFilter) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    tracing_subscriber::registry()
        .with(filter)
        .with(BunyanLayer::new(name, std::io::stderr()))
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn times_are_iso8601_utc_with_milliseconds() {
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_313_243_123);
        assert_eq!(iso8601(t), "2026-11-22T02:07:23.123Z");
        // A leap day.
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(iso8601(t), "2000-02-29T00:00:00.000Z");
    }

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn events_become_bunyan_records_with_span_fields() {
        let buf = Buf::default();
        let sub = tracing_subscriber::registry().with(BunyanLayer::new("volnfs", buf.clone()));
        tracing::subscriber::with_default(sub, || {
            let span = tracing::info_span!("conn", peer = "10.0.0.9:801");
            let _g = span.enter();
            tracing::warn!(xid = 7u64, name = "clash", "refused");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let rec: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(rec["v"], 0);
        assert_eq!(rec["level"], 40);
        assert_eq!(rec["name"], "volnfs");
        assert_eq!(rec["msg"], "refused");
        assert_eq!(rec["pid"], std::process::id());
        assert_eq!(rec["peer"], "10.0.0.9:801");
        assert_eq!(rec["xid"], 7);
        assert_eq!(rec["name_"], "clash");
        assert!(rec["hostname"].as_str().is_some_and(|h| !h.is_empty()));
        assert!(rec["time"].as_str().unwrap().ends_with('Z'));
    }
}
