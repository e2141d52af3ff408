//! A TCP proxy on loopback that a test can cut: while cut, every connection is refused at
//! once (closed on accept) and open ones are dropped, as when a store becomes unreachable;
//! the server behind it keeps its data. Stopped when dropped.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A running proxy to `127.0.0.1:target`.
pub struct Proxy {
    /// Its port on 127.0.0.1.
    pub port: u16,
    cut: Arc<AtomicBool>,
    /// Bumped by each cut: pipes of an older generation close.
    generation: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

fn pipe(mut from: TcpStream, mut to: TcpStream, generation: Arc<AtomicU64>, born: u64, stop: Arc<AtomicBool>) {
    let _ = from.set_read_timeout(Some(std::time::Duration::from_millis(200)));
    let mut buf = [0u8; 64 * 1024];
    loop {
        if stop.load(Ordering::Acquire) || generation.load(Ordering::Acquire) != born {
            break;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
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

impl Proxy {
    /// Starts a proxy to `127.0.0.1:target`.
    pub fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let (cut, generation, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let (c, g, st) = (cut.clone(), generation.clone(), stop.clone());
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
                let _ = client.set_nonblocking(false);
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else { continue };
                let born = g.load(Ordering::Acquire);
                let (c2, s2) = (client.try_clone().expect("clone"), server.try_clone().expect("clone"));
                let (g1, g2, st1, st2) = (g.clone(), g.clone(), st.clone(), st.clone());
                std::thread::spawn(move || pipe(client, server, g1, born, st1));
                std::thread::spawn(move || pipe(s2, c2, g2, born, st2));
            }
        });
        Proxy { port, cut, generation, stop }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
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
