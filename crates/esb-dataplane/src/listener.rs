//! The HTTPS listeners: one `SO_REUSEPORT` socket per worker on the same address, so the kernel
//! spreads connections across cores without a shared accept queue.
//!
//! The sockets are made here, on the starting thread, so a bind error is reported before any
//! worker runs, and a port-0 address gets one real port that every worker shares. monoio's own
//! `TcpListener::bind` turns `SO_REUSEPORT` on silently, which would let a stale esb (same user)
//! share the port and take half the traffic; so a fixed port is first probed with a plain bind,
//! which fails while anyone else listens there.

use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

use crate::StartError;

/// Binds `count` listening sockets on `addr` with `SO_REUSEPORT`; returns them and the address
/// they actually listen on (the real port when `addr` had port 0).
pub fn bind_all(
    addr: SocketAddr,
    count: usize,
    backlog: i32,
) -> Result<(Vec<TcpListener>, SocketAddr), StartError> {
    let bind_err = |e: std::io::Error| StartError::Bind { addr, source: e };
    if addr.port() != 0 {
        // Nobody may already listen here (not even with SO_REUSEPORT): see the module doc.
        drop(TcpListener::bind(addr).map_err(bind_err)?);
    }
    let mut listeners = Vec::with_capacity(count);
    let mut actual = addr;
    for _ in 0..count.max(1) {
        let socket = Socket::new(
            Domain::for_address(actual),
            Type::STREAM,
            Some(Protocol::TCP),
        )
        .map_err(bind_err)?;
        socket.set_reuse_address(true).map_err(bind_err)?;
        socket.set_reuse_port(true).map_err(bind_err)?;
        // The epoll driver needs non-blocking sockets; io_uring does not care.
        socket.set_nonblocking(true).map_err(bind_err)?;
        socket.bind(&actual.into()).map_err(bind_err)?;
        socket.listen(backlog).map_err(bind_err)?;
        let l: TcpListener = socket.into();
        if actual.port() == 0 {
            actual = l.local_addr().map_err(bind_err)?;
        }
        listeners.push(l);
    }
    Ok((listeners, actual))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_gives_every_worker_the_same_real_port() {
        let (ls, addr) = bind_all("127.0.0.1:0".parse().unwrap(), 3, 128).unwrap();
        assert_eq!(ls.len(), 3);
        assert_ne!(addr.port(), 0);
        for l in &ls {
            assert_eq!(l.local_addr().unwrap(), addr);
        }
    }

    #[test]
    fn a_port_in_use_is_an_error_even_with_reuseport() {
        let (_held, addr) = bind_all("127.0.0.1:0".parse().unwrap(), 1, 128).unwrap();
        let err = bind_all(addr, 2, 128).unwrap_err();
        assert!(matches!(err, StartError::Bind { .. }), "{err}");
    }
}
