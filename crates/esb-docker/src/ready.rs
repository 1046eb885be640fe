//! Is the RIE in a container answering? An HTTP probe, because a TCP accept proves nothing on a
//! published port: Docker's userland proxy accepts on the host port before the RIE listens.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

/// A path no RIE serves: both AWS's RIE and esb-rie answer 404 without touching the runtime.
const PROBE: &[u8] =
    b"GET /esb-readiness-probe HTTP/1.1\r\nHost: rie\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

/// One probe: true when something at `addr` answers HTTP within `within`.
pub async fn probe(addr: SocketAddr, within: Duration) -> bool {
    let attempt = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        s.write_all(PROBE).await.ok()?;
        let mut buf = [0u8; 5];
        // A proxy whose backend refused closes without a byte; an RIE starts with "HTTP/".
        s.read_exact(&mut buf).await.ok()?;
        (&buf == b"HTTP/").then_some(())
    };
    matches!(timeout(within, attempt).await, Ok(Some(())))
}

/// Probes until the RIE answers or `deadline` passes, backing off from 2 ms to 50 ms so a fast
/// start is seen at once without hammering a slow one. Returns whether it answered.
pub async fn wait_ready(addr: SocketAddr, deadline: Instant) -> bool {
    let mut pause = Duration::from_millis(2);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        if probe(addr, left.min(Duration::from_secs(1))).await {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        sleep(pause.min(left)).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[tokio::test(flavor = "current_thread")]
    async fn an_http_answer_is_ready_and_a_silent_close_is_not() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        // Like Docker's proxy with no backend: accept, then close without a byte.
        let server = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            drop(s);
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 256];
            let _ = s.read(&mut buf).await.unwrap();
            s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
        });
        assert!(!probe(addr, Duration::from_secs(5)).await);
        assert!(probe(addr, Duration::from_secs(5)).await);
        server.await.unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn wait_ready_gives_up_at_the_deadline() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let start = Instant::now();
        assert!(!wait_ready(addr, start + Duration::from_millis(100)).await);
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(100), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn wait_ready_sees_a_late_listener() {
        // Reserve a port, release it, and have the "RIE" take it only after a few refused probes.
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let waiter = tokio::spawn(wait_ready(addr, Instant::now() + Duration::from_secs(10)));
        tokio::task::yield_now().await;
        let l = TcpListener::bind(addr).await.unwrap();
        let (mut s, _) = l.accept().await.unwrap();
        let mut buf = [0u8; 256];
        let _ = s.read(&mut buf).await.unwrap();
        s.write_all(b"HTTP/1.1 404 Not Found\r\n\r\n")
            .await
            .unwrap();
        assert!(waiter.await.unwrap());
    }
}
