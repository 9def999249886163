//! Calling a program on another host through that host's portmapper: the
//! server's own calls to a client's lock manager (GRANTED) and status
//! monitor (SM_NOTIFY).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::rpc::client::{call, ClientError, Target};
use crate::xdr::{Reader, Writer};

/// Asks the portmapper on `host` (PMAP v2 GETPORT) for the TCP port of a
/// program, then calls it there.
pub async fn call_registered(
    host: IpAddr,
    from: Option<IpAddr>,
    timeout: Duration,
    prog: u32,
    vers: u32,
    proc_: u32,
    args: &[u8],
) -> Result<Vec<u8>, ClientError> {
    let pm = Target {
        addr: SocketAddr::new(host, 111),
        from,
        timeout,
    };
    let mut q = Writer::new();
    q.u32(prog);
    q.u32(vers);
    q.u32(6); // IPPROTO_TCP
    q.u32(0);
    let res = call(pm, super::PROGRAM, 2, 3, &q.into_inner()).await?;
    let port = Reader::new(&res).u32().unwrap_or(0);
    let port = u16::try_from(port).unwrap_or(0);
    if port == 0 {
        return Err(ClientError::NotRegistered { host, prog, vers });
    }
    let t = Target {
        addr: SocketAddr::new(host, port),
        from,
        timeout,
    };
    call(t, prog, vers, proc_, args).await
}
