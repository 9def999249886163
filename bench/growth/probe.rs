//! The NFS client side of `bench/growth.sh`: small probes, each one NFSv3
//! conversation through `nfs3_client` (a client nobody here wrote), printing
//! one `RESULT key=value ...` line for the script to record.
//!
//! ```text
//! growth readdir --port P --mount-port M --export E --dir D [--maxcount 65536]
//!     list D completely with READDIRPLUS, twice: the first listing of a server
//!     that has never seen the entries, then the same again
//! growth walk --port P --mount-port M --export E [--samples 50] --save FILE
//!     READDIRPLUS the whole export tree (so the server gives out, and records,
//!     a handle for every object); save sample file handles to FILE
//! growth create --port P --mount-port M --export E --name N --save FILE
//!     CREATE N at the export root; append its handle to FILE ("fresh")
//! growth getattr --port P --mount-port M --export E --load FILE [--wait-secs 120]
//!     mount (retrying while the server is not up), then GETATTR every handle
//!     in FILE, retrying JUKEBOX; timings of the first call and of each kind
//! growth idle --port P --mount-port M --export E --conns N
//!     N connections, each mounted and one GETATTR answered; prints RESULT,
//!     then holds them open until stdin closes
//! ```
//!
//! Built as an example so it can use the dev-dependencies: `cargo build
//! --release --example growth`. Timings here are for the benchmark only.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use nfs3_client::nfs3_types::nfs3::{
    cookieverf3, createhow3, diropargs3, filename3, ftype3, nfs_fh3, nfsstat3, sattr3, CREATE3args,
    GETATTR3args, Nfs3Option, Nfs3Result, READDIRPLUS3args,
};
use nfs3_client::nfs3_types::rpc::{auth_unix, opaque_auth};
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use nfs3_client::tokio::{TokioConnector, TokioIo};
use nfs3_client::{Nfs3Connection, Nfs3ConnectionBuilder};
use tokio::net::TcpStream;

type Conn = Nfs3Connection<TokioIo<TcpStream>>;
type Failure = Box<dyn std::error::Error>;

struct Args {
    flags: HashMap<String, String>,
}

impl Args {
    fn get(&self, key: &str) -> Result<&str, Failure> {
        self.flags
            .get(key)
            .map(|s| s.as_str())
            .ok_or_else(|| format!("missing --{key}").into())
    }
    fn num(&self, key: &str, default: u64) -> Result<u64, Failure> {
        match self.flags.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e| format!("--{key} {v}: {e}").into()),
        }
    }
}

fn parse(args: &[String]) -> Result<Args, Failure> {
    let mut flags = HashMap::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let key = a
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {a}"))?;
        let val = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
        flags.insert(key.to_string(), val.clone());
    }
    Ok(Args { flags })
}

async fn mount(a: &Args) -> Result<Conn, Failure> {
    let port: u16 = a.get("port")?.parse()?;
    let mport: u16 = a.get("mount-port")?.parse()?;
    let conn = Nfs3ConnectionBuilder::new(TokioConnector, "127.0.0.1", a.get("export")?)
        .nfs3_port(port)
        .mount_port(mport)
        .connect_from_privileged_port(false)
        .credential(opaque_auth::auth_unix(&auth_unix {
            stamp: 1,
            machinename: Opaque::borrowed(b"volnfs-growth"),
            uid: 0,
            gid: 0,
            gids: Vec::new(),
        }))
        .mount()
        .await
        .map_err(|e| format!("mounting {}: {e:?}", a.get("export").unwrap_or("?")))?;
    Ok(conn)
}

fn status<T, E>(r: &Nfs3Result<T, E>) -> nfsstat3 {
    match r {
        Nfs3Result::Ok(_) => nfsstat3::NFS3_OK,
        Nfs3Result::Err((s, _)) => *s,
    }
}

async fn lookup_path(c: &mut Conn, path: &str) -> Result<nfs_fh3, Failure> {
    let mut fh = c.root_nfs_fh3();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        let res = c
            .lookup(&nfs3_client::nfs3_types::nfs3::LOOKUP3args {
                what: diropargs3 {
                    dir: fh.clone(),
                    name: filename3(Opaque::borrowed(part.as_bytes())),
                },
            })
            .await?;
        match res {
            Nfs3Result::Ok(ok) => fh = ok.object,
            Nfs3Result::Err((s, _)) => return Err(format!("LOOKUP {part}: {s:?}").into()),
        }
    }
    Ok(fh)
}

/// One directory's entries: (name, handle, type).
struct Entry {
    name: Vec<u8>,
    fh: Option<nfs_fh3>,
    dir: bool,
}

/// Lists `dir` completely; returns the entries and the round trips.
async fn list(c: &mut Conn, dir: &nfs_fh3, maxcount: u32) -> Result<(Vec<Entry>, u64), Failure> {
    let (mut cookie, mut verf) = (0u64, cookieverf3::default());
    let mut out = Vec::new();
    let mut trips = 0u64;
    loop {
        let res = c
            .readdirplus(&READDIRPLUS3args {
                dir: dir.clone(),
                cookie,
                cookieverf: verf,
                dircount: maxcount / 4,
                maxcount,
            })
            .await?;
        trips += 1;
        let res = match res {
            Nfs3Result::Ok(ok) => ok,
            Nfs3Result::Err((s, _)) => {
                return Err(format!("READDIRPLUS at cookie {cookie}: {s:?}").into())
            }
        };
        verf = res.cookieverf;
        let eof = res.reply.eof;
        for e in res.reply.entries.0 {
            cookie = e.cookie;
            let name = e.name.0.to_vec();
            if name == b"." || name == b".." {
                continue;
            }
            let dir =
                matches!(&e.name_attributes, Nfs3Option::Some(a) if a.type_ == ftype3::NF3DIR);
            let fh = match e.name_handle {
                Nfs3Option::Some(h) => Some(h),
                Nfs3Option::None => None,
            };
            out.push(Entry { name, fh, dir });
        }
        if eof {
            return Ok((out, trips));
        }
    }
}

async fn readdir(a: &Args) -> Result<(), Failure> {
    let maxcount = a.num("maxcount", 65536)? as u32;
    let mut c = mount(a).await?;
    let dir = lookup_path(&mut c, a.get("dir")?).await?;
    let mut line = String::from("RESULT mode=readdir");
    for pass in 1..=2 {
        let t0 = Instant::now();
        let (entries, trips) = list(&mut c, &dir, maxcount).await?;
        let secs = t0.elapsed().as_secs_f64();
        let n = entries.len().max(1) as f64;
        let missing = entries.iter().filter(|e| e.fh.is_none()).count();
        line += &format!(
            " entries={} pass{pass}_secs={secs:.4} pass{pass}_us_per_entry={:.3} pass{pass}_trips={trips} pass{pass}_no_handle={missing}",
            entries.len(),
            secs * 1e6 / n
        );
    }
    println!("{line}");
    Ok(())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Result<Vec<u8>, Failure> {
    if !s.len().is_multiple_of(2) {
        return Err(format!("odd-length handle {s}").into());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| e.into()))
        .collect()
}

async fn walk(a: &Args) -> Result<(), Failure> {
    let samples = a.num("samples", 50)? as usize;
    let maxcount = a.num("maxcount", 65536)? as u32;
    let mut c = mount(a).await?;
    let t0 = Instant::now();
    let mut stack = vec![c.root_nfs_fh3()];
    let (mut objects, mut dirs, mut trips) = (0u64, 0u64, 0u64);
    let mut files: Vec<nfs_fh3> = Vec::new();
    while let Some(d) = stack.pop() {
        dirs += 1;
        let (entries, t) = list(&mut c, &d, maxcount).await?;
        trips += t;
        for e in entries {
            objects += 1;
            let Some(fh) = e.fh else {
                return Err(format!("no handle for {}", String::from_utf8_lossy(&e.name)).into());
            };
            if e.dir {
                stack.push(fh);
            } else {
                files.push(fh);
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    // Evenly spread samples (the first, the last, and between).
    let mut f = std::fs::File::create(a.get("save")?)?;
    let step = (files.len() / samples.max(1)).max(1);
    let mut saved = 0;
    for (i, fh) in files.iter().enumerate() {
        if i % step == 0 || i + 1 == files.len() {
            writeln!(f, "old {}", hex(&fh.data.0))?;
            saved += 1;
        }
    }
    println!(
        "RESULT mode=walk objects={objects} dirs={dirs} trips={trips} secs={secs:.3} us_per_object={:.3} saved={saved}",
        secs * 1e6 / (objects.max(1) as f64)
    );
    Ok(())
}

async fn create(a: &Args) -> Result<(), Failure> {
    let mut c = mount(a).await?;
    let name = a.get("name")?.to_string();
    let root = c.root_nfs_fh3();
    let res = c
        .create(&CREATE3args {
            where_: diropargs3 {
                dir: root,
                name: filename3(Opaque::borrowed(name.as_bytes())),
            },
            how: createhow3::UNCHECKED(sattr3::default()),
        })
        .await?;
    let fh = match res {
        Nfs3Result::Ok(ok) => match ok.obj {
            Nfs3Option::Some(h) => h,
            Nfs3Option::None => return Err("CREATE returned no handle".into()),
        },
        Nfs3Result::Err((s, _)) => return Err(format!("CREATE {name}: {s:?}").into()),
    };
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(a.get("save")?)?;
    writeln!(f, "fresh {}", hex(&fh.data.0))?;
    println!("RESULT mode=create name={name}");
    Ok(())
}

async fn getattr(a: &Args) -> Result<(), Failure> {
    let wait = Duration::from_secs(a.num("wait-secs", 120)?);
    let mut handles = Vec::new();
    for line in std::io::BufReader::new(std::fs::File::open(a.get("load")?)?).lines() {
        let line = line?;
        if let Some((kind, h)) = line.split_once(' ') {
            handles.push((kind.to_string(), unhex(h.trim())?));
        }
    }
    let t0 = Instant::now();
    let mut c = loop {
        match mount(a).await {
            Ok(c) => break c,
            Err(e) if t0.elapsed() < wait => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => return Err(e),
        }
    };
    let mounted_ms = t0.elapsed().as_secs_f64() * 1e3;
    let mut line = format!("RESULT mode=getattr mounted_ms={mounted_ms:.1}");
    let mut by_kind: HashMap<String, (Vec<f64>, u64, u64, u64)> = HashMap::new();
    let mut first: Option<f64> = None;
    for (kind, h) in &handles {
        let fh = nfs_fh3 {
            data: Opaque::owned(h.clone()),
        };
        let s0 = Instant::now();
        let mut jukebox = 0u64;
        let st = loop {
            let r = c.getattr(&GETATTR3args { object: fh.clone() }).await?;
            let st = status(&r);
            if st == nfsstat3::NFS3ERR_JUKEBOX && s0.elapsed() < wait {
                jukebox += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            break st;
        };
        let ms = s0.elapsed().as_secs_f64() * 1e3;
        first.get_or_insert(ms);
        let e = by_kind.entry(kind.clone()).or_default();
        e.0.push(ms);
        if st == nfsstat3::NFS3_OK {
            e.1 += 1;
        } else if st == nfsstat3::NFS3ERR_STALE {
            e.2 += 1;
        }
        e.3 += jukebox;
    }
    line += &format!(" first_ms={:.2}", first.unwrap_or(0.0));
    let mut kinds: Vec<_> = by_kind.into_iter().collect();
    kinds.sort_by(|x, y| x.0.cmp(&y.0));
    for (kind, (mut ms, ok, stale, jukebox)) in kinds {
        ms.sort_by(|x, y| x.total_cmp(y));
        let n = ms.len();
        line += &format!(
            " {kind}_n={n} {kind}_ok={ok} {kind}_stale={stale} {kind}_jukebox={jukebox} {kind}_first_ms={:.2} {kind}_median_ms={:.2} {kind}_max_ms={:.2}",
            ms.first().copied().unwrap_or(0.0),
            ms.get(n / 2).copied().unwrap_or(0.0),
            ms.last().copied().unwrap_or(0.0)
        );
    }
    println!("{line}");
    Ok(())
}

async fn idle(a: &Args) -> Result<(), Failure> {
    let n = a.num("conns", 1000)?;
    let t0 = Instant::now();
    let mut conns = Vec::new();
    // A server that stops accepting (ganesha caps connections at 1,024 fds) ends the
    // ramp: what it held is reported, with the reason, instead of retrying forever.
    let mut refused = String::new();
    for _ in 0..n {
        let opened = tokio::time::timeout(Duration::from_secs(10), async {
            let mut c = mount(a).await?;
            let root = c.root_nfs_fh3();
            let r = c.getattr(&GETATTR3args { object: root }).await?;
            if status(&r) != nfsstat3::NFS3_OK {
                return Err(Failure::from(format!(
                    "GETATTR of the root: {:?}",
                    status(&r)
                )));
            }
            Ok(c)
        })
        .await;
        match opened {
            Ok(Ok(c)) => conns.push(c),
            Ok(Err(e)) => {
                refused = format!("{e}");
                break;
            }
            Err(_) => {
                refused = "no mount and GETATTR within 10 s".into();
                break;
            }
        }
    }
    println!(
        "RESULT mode=idle conns={} secs={:.3} refused={}",
        conns.len(),
        t0.elapsed().as_secs_f64(),
        if refused.is_empty() {
            "none".to_string()
        } else {
            refused.replace(' ', "_")
        }
    );
    std::io::stdout().flush()?;
    // Hold them until told to stop.
    let mut sink = String::new();
    let _ = tokio::task::spawn_blocking(move || std::io::stdin().read_line(&mut sink)).await;
    drop(conns);
    Ok(())
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((mode, rest)) = argv.split_first() else {
        eprintln!(
            "usage: growth readdir|walk|create|getattr|idle --port P --mount-port M --export E ..."
        );
        std::process::exit(2);
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("growth: tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    let res = parse(rest).and_then(|a| {
        rt.block_on(async {
            match mode.as_str() {
                "readdir" => readdir(&a).await,
                "walk" => walk(&a).await,
                "create" => create(&a).await,
                "getattr" => getattr(&a).await,
                "idle" => idle(&a).await,
                other => Err(format!("unknown mode {other}").into()),
            }
        })
    });
    if let Err(e) = res {
        eprintln!("growth {mode}: {e}");
        std::process::exit(1);
    }
}
