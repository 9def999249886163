//! Listening sockets: one per address and transport, bound before the
//! server says it is ready.

use super::*;

pub(super) fn bind_socket(addr: SocketAddr, ty: SockType) -> std::io::Result<OwnedFd> {
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket::socket(
        family,
        ty,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    if ty == SockType::Stream {
        socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    }
    if addr.is_ipv6() {
        // Keep IPv4 and IPv6 listeners separate so both can be configured.
        socket::setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    }
    socket::bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrStorage::from(addr),
    )?;
    if ty == SockType::Stream {
        socket::listen(
            &fd,
            socket::Backlog::new(1024).unwrap_or(socket::Backlog::MAXCONN),
        )?;
    }
    Ok(fd)
}

/// Binds TCP and UDP on the same port on every address. Port 0 picks one
/// free port for all of them.
pub(super) fn bind_service(
    what: &'static str,
    ips: &[IpAddr],
    port: u16,
) -> Result<(Vec<TcpListener>, Vec<UdpSocket>, u16), AppError> {
    let mut last_err = None;
    for _attempt in 0..16 {
        let mut tcps = Vec::new();
        let mut udps = Vec::new();
        let mut chosen = port;
        let mut failed = false;
        for &ip in ips {
            for ty in [SockType::Stream, SockType::Datagram] {
                let addr = SocketAddr::new(ip, chosen);
                match bind_socket(addr, ty) {
                    Ok(fd) => {
                        let raw = fd.into_raw_fd();
                        if ty == SockType::Stream {
                            // SAFETY: raw is a fresh, listening, non-blocking socket we own.
                            let std = unsafe { std::net::TcpListener::from_raw_fd(raw) };
                            let l = TcpListener::from_std(std)
                                .map_err(|source| AppError::Bind { what, addr, source })?;
                            if chosen == 0 {
                                chosen = l.local_addr().map(|a| a.port()).unwrap_or(0);
                            }
                            tcps.push(l);
                        } else {
                            // SAFETY: raw is a fresh, bound, non-blocking socket we own.
                            let std = unsafe { std::net::UdpSocket::from_raw_fd(raw) };
                            udps.push(
                                UdpSocket::from_std(std).map_err(|source| AppError::Bind {
                                    what,
                                    addr,
                                    source,
                                })?,
                            );
                        }
                    }
                    Err(source) => {
                        last_err = Some(AppError::Bind { what, addr, source });
                        failed = true;
                        break;
                    }
                }
            }
            if failed {
                break;
            }
        }
        if !failed {
            return Ok((tcps, udps, chosen));
        }
        if port != 0 {
            break;
        }
    }
    Err(last_err.unwrap_or(AppError::NoListenAddress))
}
