//! A TCP proxy on loopback that a test can cut: while cut, every connection is refused at
//! once (closed on accept) and open ones are dropped, as when a store becomes unreachable;
//! the server behind it keeps its data. It can also deny: every new request is answered
//! with S3's 403 for a key it does not know (credentials rotated or revoked), or slow every
//! request down (a far or congested link). Stopped when dropped.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A running proxy to `127.0.0.1:target`.
pub struct Proxy {
    /// Its port on 127.0.0.1.
    pub port: u16,
    cut: Arc<AtomicBool>,
    deny: Arc<AtomicBool>,
    /// Milliseconds each request waits before it is passed on.
    delay_ms: Arc<AtomicU64>,
    /// Bumped by each cut: pipes of an older generation close.
    generation: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

fn pipe(
    mut from: TcpStream,
    mut to: TcpStream,
    generation: Arc<AtomicU64>,
    born: u64,
    stop: Arc<AtomicBool>,
    delay_ms: Option<Arc<AtomicU64>>,
) {
    let _ = from.set_read_timeout(Some(std::time::Duration::from_millis(200)));
    let mut buf = [0u8; 64 * 1024];
    loop {
        if stop.load(Ordering::Acquire) || generation.load(Ordering::Acquire) != born {
            break;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if let Some(d) = &delay_ms {
                    std::thread::sleep(std::time::Duration::from_millis(d.load(Ordering::Acquire)));
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// Reads requests off `client` and answers each with S3's 403 `InvalidAccessKeyId`.
fn refuse(mut client: TcpStream) {
    let _ = client.set_nonblocking(false);
    let _ = client.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    let mut seen = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        // The head, then as much body as it announces.
        let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") else {
            match client.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
        let body_len: usize =
            head.lines().find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0))).unwrap_or(0);
        while seen.len() < end + 4 + body_len {
            match client.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        seen.drain(..end + 4 + body_len);
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you provided does not exist in our records.</Message></Error>";
        let reply = format!("HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        if client.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

impl Proxy {
    /// Starts a proxy to `127.0.0.1:target`.
    pub fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let (cut, generation, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let deny = Arc::new(AtomicBool::new(false));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (c, g, st, dn, dl) = (cut.clone(), generation.clone(), stop.clone(), deny.clone(), delay_ms.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Acquire) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                };
                if c.load(Ordering::Acquire) {
                    drop(client);
                    continue;
                }
                if dn.load(Ordering::Acquire) {
                    std::thread::spawn(move || refuse(client));
                    continue;
                }
                let _ = client.set_nonblocking(false);
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else { continue };
                let born = g.load(Ordering::Acquire);
                let (c2, s2) = (client.try_clone().expect("clone"), server.try_clone().expect("clone"));
                let (g1, g2, st1, st2) = (g.clone(), g.clone(), st.clone(), st.clone());
                let slow = dl.clone();
                std::thread::spawn(move || pipe(client, server, g1, born, st1, Some(slow)));
                std::thread::spawn(move || pipe(s2, c2, g2, born, st2, None));
            }
        });
        Proxy { port, cut, deny, delay_ms, generation, stop }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Answers every new request with a 403 (`true`), or passes them on again.
    pub fn deny(&self, deny: bool) {
        self.deny.store(deny, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Holds each request (each chunk a client sends) this long before passing it on.
    pub fn slow(&self, delay: std::time::Duration) {
        self.delay_ms.store(delay.as_millis() as u64, Ordering::Release);
    }

    /// Cuts the line (`true`) or mends it.
    pub fn cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::Release);
        if cut {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}
