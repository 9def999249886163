//! The dispatch targets' server: a real one on a temporary export, started once per
//! process, its fixed tree put back after every call that may change it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, OnceLock};

use tokio::sync::Semaphore;

use crate::rpc::msg;
use crate::rpc::server::Ticket;
use crate::rpc::{Dispatcher, Parsed, ReplyBytes, Sink, Transport};
use crate::xdr::{Reader, Writer};

use super::tree::{clear_dir_except, remove_stale_exports, reset_attributes};
use super::{call_message, Caller, HANDLE_TOKEN, HANG_LIMIT};

/// Collects the replies of one call; tells the waiter when the call has
/// let go of it (answered or dropped unanswered).
struct Collect {
    replies: Mutex<Vec<Vec<u8>>>,
    done: Mutex<Option<mpsc::Sender<Vec<Vec<u8>>>>>,
}

impl Sink for Collect {
    fn deliver(&self, reply: ReplyBytes, _ticket: Ticket) {
        let mut r = self.replies.lock().unwrap_or_else(|p| p.into_inner());
        r.push(reply.concat());
    }
}

impl Drop for Collect {
    fn drop(&mut self) {
        let replies = std::mem::take(self.replies.get_mut().unwrap_or_else(|p| p.into_inner()));
        if let Some(tx) = self
            .done
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = tx.send(replies);
        }
    }
}

/// The objects every input finds in the export, by name below the root.
const OBJECTS: [&str; 4] = ["file", "dir", "dir/inner", "link"];

/// The fixed tree's inode numbers, to tell when a call replaced an object.
struct Tree {
    handles: Vec<Vec<u8>>,
    inos: Vec<u64>,
}

/// A real server on a temporary export, started once per process.
pub struct Server {
    rt: tokio::runtime::Runtime,
    _handle: crate::app::ServerHandle,
    dispatcher: Dispatcher,
    pub state: Arc<crate::service::ServerState>,
    nlm: Option<Arc<crate::nlm::Nlm>>,
    root: PathBuf,
    tree: Mutex<Tree>,
    permits: Arc<Semaphore>,
}

/// The client every call comes from: loopback (admitted), privileged port.
pub const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 999);
const LOCAL: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 2049);

static SERVER: OnceLock<Server> = OnceLock::new();

impl Server {
    /// The process's server, started on first use.
    pub fn get() -> &'static Server {
        SERVER.get_or_init(Server::start)
    }

    fn start() -> Server {
        let base = std::env::temp_dir();
        remove_stale_exports(&base);
        let root = base.join(format!("volnfs-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("creating the fuzz export");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let mut config = crate::config::Config::for_directory(
            &root,
            "/exports/data",
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        );
        config.portmap_port = None;
        config.io.threads = 4;
        config.io.per_client = 4;
        let handle = rt
            .block_on(crate::app::start(config))
            .expect("starting the fuzz server");
        let exports = handle.exports.clone();
        let state = handle.state.clone();
        let nlm = state.nlm.clone();
        let mut programs: Vec<Arc<dyn crate::rpc::Program>> = vec![
            handle.nfs.clone(),
            Arc::new(crate::mount::Mount {
                exports: exports.clone(),
                pool: state.pool.clone(),
            }),
        ];
        if let Some(nlm) = &nlm {
            programs.push(nlm.clone());
            programs.push(Arc::new(crate::nlm::Nsm { nlm: nlm.clone() }));
        }
        let mut regs = vec![crate::portmap::Registration {
            prog: crate::portmap::PROGRAM,
            versions: vec![2, 3, 4],
            name: "portmapper",
            port: 111,
        }];
        for p in &programs {
            let (low, high) = p.versions();
            regs.push(crate::portmap::Registration {
                prog: p.number(),
                versions: (low..=high).collect(),
                name: p.name(),
                port: 2049,
            });
        }
        programs.push(Arc::new(crate::portmap::Portmap {
            mappings: crate::portmap::mappings(&regs),
            ipv6: false,
        }));
        let server = Server {
            rt,
            _handle: handle,
            dispatcher: Dispatcher::new(programs),
            state,
            nlm,
            root,
            tree: Mutex::new(Tree {
                handles: Vec::new(),
                inos: Vec::new(),
            }),
            permits: Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)),
        };
        server.rebuild_tree();
        server
    }

    /// The export's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Runs one message as a transport would; returns what was sent back.
    pub fn call(&self, transport: Transport, msg: Vec<u8>) -> Vec<Vec<u8>> {
        let request_len = msg.len();
        let xid = msg.get(..4).map(|b| [b[0], b[1], b[2], b[3]]);
        let (call, program, hint) = match self.dispatcher.parse(PEER, Some(LOCAL), transport, msg) {
            Parsed::Call {
                call,
                program,
                reply_size_hint,
            } => (call, program, reply_size_hint),
            Parsed::Answer(head) => return vec![head],
            Parsed::Nothing | Parsed::Close => return Vec::new(),
        };
        let (tx, rx) = mpsc::channel();
        let sink = Arc::new(Collect {
            replies: Mutex::new(Vec::new()),
            done: Mutex::new(Some(tx)),
        });
        let permit = self
            .permits
            .clone()
            .try_acquire_owned()
            .expect("the fuzz harness never runs out of permits");
        let ticket = Ticket {
            _inflight: permit,
            room: None,
        };
        self.rt
            .block_on(self.dispatcher.run(call, program, sink, ticket));
        let replies = match rx.recv_timeout(HANG_LIMIT) {
            Ok(r) => r,
            Err(_) => panic!("a call was neither answered nor dropped within {HANG_LIMIT:?}"),
        };
        for r in &replies {
            // Record mark, xid, REPLY at least, and the call's own xid.
            assert!(r.len() >= 12, "a reply shorter than an RPC header");
            assert_eq!(
                Some([r[4], r[5], r[6], r[7]]),
                xid,
                "a reply with another xid"
            );
            // The transports reserve room by the hint (TCP) and must not
            // be surprised by a bigger reply.
            let budget = (hint + 1024).max(request_len) + 64 * 1024;
            assert!(
                r.len() <= budget,
                "reply of {} bytes for a hint of {hint} (request {request_len} bytes)",
                r.len()
            );
        }
        replies
    }

    /// Replaces every handle token in `args` with the XDR handle it names.
    pub fn with_handles(&self, args: &[u8]) -> Vec<u8> {
        let tree = self.tree.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::with_capacity(args.len() + 64);
        let mut words = args.chunks_exact(4);
        for w in &mut words {
            let v = u32::from_be_bytes([w[0], w[1], w[2], w[3]]);
            if v & 0xFFFF_FF00 == HANDLE_TOKEN && !tree.handles.is_empty() {
                let h = &tree.handles[(v & 0xFF) as usize % tree.handles.len()];
                let mut x = Writer::new();
                x.opaque(h);
                out.extend_from_slice(&x.into_inner());
            } else {
                out.extend_from_slice(w);
            }
        }
        out.extend_from_slice(words.remainder());
        out
    }

    /// One call of `prog`/`vers`/`proc_` with arguments (tokens replaced).
    pub fn call_program(
        &self,
        transport: Transport,
        prog: u32,
        vers: u32,
        proc_: u32,
        who: Caller,
        args: &[u8],
    ) -> Vec<Vec<u8>> {
        let args = self.with_handles(args);
        self.call(
            transport,
            call_message(0x5eed, prog, vers, proc_, who, &args),
        )
    }

    /// An NFSv3 call; the tree is put back after one that may change it.
    pub fn nfs3(&self, transport: Transport, proc_: u32, who: Caller, args: &[u8]) -> Vec<Vec<u8>> {
        let r = self.call_program(transport, crate::nfs3::PROGRAM, 3, proc_, who, args);
        let writes = crate::nfs3::table::TABLE
            .get(proc_ as usize)
            .is_some_and(|row| row.writes());
        if writes {
            self.restore_tree();
        }
        r
    }

    /// An NLM or NSM call; the caller's locks are released afterwards, so
    /// every input meets an empty lock table.
    pub fn lock_manager(
        &self,
        transport: Transport,
        prog: u32,
        vers: u32,
        proc_: u32,
        who: Caller,
        args: &[u8],
    ) -> Vec<Vec<u8>> {
        let r = self.call_program(transport, prog, vers, proc_, who, args);
        if let Some(nlm) = &self.nlm {
            nlm.client_rebooted(PEER.ip());
        }
        r
    }

    /// The control socket: every line of `bytes`, framed by the socket's
    /// own line reader, run against the real server state.
    pub fn control(&self, bytes: &[u8]) -> Vec<serde_json::Value> {
        use crate::control::lines::{read_line, Line};
        use crate::control::protocol::{handle_line, line_too_long_reply};
        self.rt.block_on(async {
            let mut rd = tokio::io::BufReader::with_capacity(512, bytes);
            let mut line = Vec::new();
            let mut replies = Vec::new();
            for _ in 0..64 {
                let reply = match read_line(&mut rd, &mut line).await {
                    Ok(Line::Eof) | Err(_) => break,
                    Ok(Line::TooLong) => line_too_long_reply(),
                    Ok(Line::Complete) => handle_line(&self.state, &line).await,
                };
                assert_eq!(reply["v"], 1, "a reply without v: {reply}");
                assert!(reply["ok"].is_boolean(), "a reply without ok: {reply}");
                replies.push(reply);
            }
            replies
        })
    }

    /// Removes what calls added, undoes what they changed on the fixed
    /// objects, and recreates (and looks up again) any that went away.
    fn restore_tree(&self) {
        let keep_root = ["file", "dir", "link"];
        clear_dir_except(&self.root, &keep_root);
        clear_dir_except(&self.root.join("dir"), &["inner"]);
        let intact = {
            let tree = self.tree.lock().unwrap_or_else(|p| p.into_inner());
            OBJECTS.iter().zip(&tree.inos[1..]).all(|(name, ino)| {
                std::fs::symlink_metadata(self.root.join(name)).is_ok_and(|m| m.ino() == *ino)
            })
        };
        if intact {
            reset_attributes(&self.root);
        } else {
            self.rebuild_tree();
        }
    }

    /// Lays out the fixed objects afresh and learns their handles.
    fn rebuild_tree(&self) {
        clear_dir_except(&self.root, &[]);
        std::fs::write(self.root.join("file"), vec![b'x'; 4096]).expect("creating file");
        std::fs::create_dir(self.root.join("dir")).expect("creating dir");
        std::fs::write(self.root.join("dir/inner"), b"inner").expect("creating dir/inner");
        std::os::unix::fs::symlink("file", self.root.join("link")).expect("creating link");
        reset_attributes(&self.root);
        let root_fh = {
            let export = &self.state.exports.all()[0];
            export.fs.encode_handle(&export.fs.root_handle()).to_vec()
        };
        let mut handles = vec![root_fh];
        let mut inos = vec![std::fs::metadata(&self.root).map(|m| m.ino()).unwrap_or(0)];
        for name in OBJECTS {
            let (dir, base) = match name.rsplit_once('/') {
                Some((d, b)) => (
                    handles[OBJECTS.iter().position(|o| *o == d).unwrap_or(0) + 1].clone(),
                    b,
                ),
                None => (handles[0].clone(), name),
            };
            let mut args = Writer::new();
            args.opaque(&dir);
            args.string(base.as_bytes());
            let msg = call_message(
                1,
                crate::nfs3::PROGRAM,
                3,
                3,
                Caller::Root,
                &args.into_inner(),
            );
            let replies = self.call(Transport::Tcp, msg);
            let fh = replies
                .first()
                .and_then(|r| lookup_handle(r))
                .unwrap_or_else(|| panic!("LOOKUP {name} in the fuzz export failed"));
            handles.push(fh);
            inos.push(
                std::fs::symlink_metadata(self.root.join(name))
                    .map(|m| m.ino())
                    .unwrap_or(0),
            );
        }
        *self.tree.lock().unwrap_or_else(|p| p.into_inner()) = Tree { handles, inos };
    }
}

/// The handle in a LOOKUP reply (record mark, accepted SUCCESS header,
/// NFS3_OK, the handle).
fn lookup_handle(reply: &[u8]) -> Option<Vec<u8>> {
    let mut r = Reader::new(reply.get(msg::ACCEPTED_HEADER_LEN..)?);
    if r.u32().ok()? != 0 {
        return None;
    }
    Some(r.opaque(64).ok()?.to_vec())
}
