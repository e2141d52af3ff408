//! A real S3-compatible server for the store and registry tests: `moto_server` (installed
//! into `.venv/` by scripts/setup.sh) on a free loopback port, stopped by its pid on drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running `moto_server`.
pub struct Moto {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its output.
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

impl Moto {
    /// Starts a server on a free port, with bucket `bkt`.
    pub fn start() -> Moto {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut m = Moto { child: None, port: free_port(), log: dir.path().join("moto.log"), _dir: dir };
        m.restart();
        m
    }

    /// (Re)starts the server on the same port; a restarted moto has lost every object, so the
    /// bucket `bkt` is made again.
    pub fn restart(&mut self) {
        self.stop();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("moto log");
        let child = Command::new(super::root().join(".venv/bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start moto_server (run scripts/setup.sh)");
        self.child = Some(child);
        let start = Instant::now();
        while self.http("GET", "/", b"").0 == 0 {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "moto_server did not come up: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(self.http("PUT", "/bkt", b"").0, 200, "create bucket");
    }

    /// Kills the server (SIGKILL), as a crash would.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One plain HTTP request, as the test credentials (moto checks that a request names
    /// credentials, not its signature): status (0 when the server could not be reached) and
    /// body. Tests use it to reach behind Paddock's back (tamper, plant partial objects).
    pub fn http(&self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else { return (0, Vec::new()) };
        let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        );
        if s.write_all(head.as_bytes()).and_then(|()| s.write_all(body)).is_err() {
            return (0, Vec::new());
        }
        let mut out = Vec::new();
        if s.read_to_end(&mut out).is_err() {
            return (0, Vec::new());
        }
        let Some(split) = out.windows(4).position(|w| w == b"\r\n\r\n") else { return (0, Vec::new()) };
        let status = String::from_utf8_lossy(&out[..split]).split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        (status, out[split + 4..].to_vec())
    }

    /// The `paddock` binary with the AWS settings of this server (static test credentials,
    /// its endpoint, no instance metadata) and the test compile cache.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_paddock"));
        c.args(args)
            .current_dir(super::root())
            .env("PADDOCK_CACHE_DIR", super::root().join("target/test-cache"))
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", self.endpoint())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .env_remove("PADDOCK_REGISTRY");
        c
    }

    /// Runs `paddock` against this server with `envs` added.
    pub fn paddock(&self, args: &[&str], envs: &[(&str, &std::path::Path)]) -> Output {
        let mut c = self.command(args);
        for (k, v) in envs {
            c.env(k, v);
        }
        c.output().expect("run paddock")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}
