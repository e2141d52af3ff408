//! A small fake EC2 instance metadata service (IMDSv2) on loopback: a session token, and a
//! spot interruption notice and a rebalance recommendation that a test raises. moto has none.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A running fake; it stops when dropped.
pub struct FakeImds {
    /// Its port on 127.0.0.1.
    pub port: u16,
    notice: Arc<AtomicBool>,
    rebalance: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl FakeImds {
    /// Starts it with no notice.
    pub fn start() -> FakeImds {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let (notice, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let rebalance = Arc::new(AtomicBool::new(false));
        let (n, st, rb) = (notice.clone(), stop.clone(), rebalance.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Acquire) {
                let Ok((mut s, _)) = listener.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    continue;
                };
                let _ = s.set_nonblocking(false);
                let mut buf = [0u8; 4096];
                let len = s.read(&mut buf).unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..len]).to_string();
                let (status, body) = if head.starts_with("PUT /latest/api/token") {
                    ("200 OK", "fake-token".to_string())
                } else if head.starts_with("GET /latest/meta-data/instance-id") {
                    ("200 OK", format!("i-fake{port:05}"))
                } else if head.starts_with("GET /latest/meta-data/spot/instance-action") && n.load(Ordering::Acquire) {
                    ("200 OK", "{\"action\": \"terminate\", \"time\": \"2026-11-28T12:00:00Z\"}".to_string())
                } else if head.starts_with("GET /latest/meta-data/events/recommendations/rebalance") && rb.load(Ordering::Acquire) {
                    ("200 OK", "{\"noticeTime\": \"2026-11-28T11:00:00Z\"}".to_string())
                } else {
                    ("404 Not Found", String::new())
                };
                let reply = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nx-aws-ec2-metadata-token-ttl-seconds: 21600\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(reply.as_bytes());
            }
        });
        FakeImds { port, notice, rebalance, stop }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Raises a rebalance recommendation.
    pub fn raise_rebalance(&self) {
        self.rebalance.store(true, Ordering::Release);
    }

    /// Raises the spot interruption notice.
    pub fn raise_notice(&self) {
        self.notice.store(true, Ordering::Release);
    }
}

impl Drop for FakeImds {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}
