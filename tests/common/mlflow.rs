//! A real MLflow tracking server for the tracking tests: `mlflow server` (installed into
//! `.venv-mlflow/` by scripts/setup.sh) on a free loopback port, with a SQLite store and
//! served artifacts in a temporary directory; stopped with its process group on drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running (or stopped) MLflow server.
pub struct Mlflow {
    child: Option<Child>,
    /// Its port on 127.0.0.1 (kept while stopped: a run pointed at it finds nothing).
    pub port: u16,
    /// Its output.
    pub log: PathBuf,
    dir: tempfile::TempDir,
}

impl Mlflow {
    /// A server's place, not started: its URL answers nothing yet.
    pub fn stopped() -> Mlflow {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        Mlflow { child: None, port, log: dir.path().join("mlflow.log"), dir }
    }

    /// Starts a server on a free port and waits until it answers.
    pub fn start() -> Mlflow {
        let mut m = Mlflow::stopped();
        m.up();
        m
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts it (same port, same store) and waits up to 2 minutes for `/health`.
    pub fn up(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log");
        let db = format!("sqlite:///{}", self.dir.path().join("mlflow.db").display());
        let child = Command::new(super::root().join(".venv-mlflow/bin/mlflow"))
            .args(["server", "--host", "127.0.0.1", "--port", &self.port.to_string(), "--workers", "1"])
            .args(["--backend-store-uri", &db])
            .arg("--artifacts-destination")
            .arg(self.dir.path().join("artifacts"))
            // Its background job runner is a dozen processes this test does not need.
            .env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start mlflow server (run scripts/setup.sh)");
        self.child = Some(child);
        let start = Instant::now();
        while self.get("/health").0 != 200 {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "mlflow did not come up: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops it (its whole process group).
    pub fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signals the process group this test started.
            unsafe {
                libc::kill(-(c.id() as i32), libc::SIGKILL);
            }
            let _ = c.wait();
        }
    }

    /// GET `path`: status and body (`0` when nothing answers).
    pub fn get(&self, path: &str) -> (u16, String) {
        self.request("GET", path, "")
    }

    /// POST a JSON `body` to a REST path (`runs/search`) of MLflow's API.
    pub fn api_post(&self, path: &str, body: &serde_json::Value) -> serde_json::Value {
        let (status, text) = self.request("POST", &format!("/api/2.0/mlflow/{path}"), &body.to_string());
        assert_eq!(status, 200, "POST {path}: {text}");
        serde_json::from_str(&text).expect("json")
    }

    fn request(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else { return (0, String::new()) };
        let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        );
        if s.write_all(head.as_bytes()).is_err() {
            return (0, String::new());
        }
        let mut out = Vec::new();
        if s.read_to_end(&mut out).is_err() {
            return (0, String::new());
        }
        let text = String::from_utf8_lossy(&out).into_owned();
        let Some((head, body)) = text.split_once("\r\n\r\n") else { return (0, String::new()) };
        let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        // Chunked bodies (uvicorn's): the JSON sits between the chunk sizes.
        let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_string() };
        (status, body)
    }

    /// GET a REST path (`runs/get?run_id=…`) of MLflow's API as JSON.
    pub fn api(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get(&format!("/api/2.0/mlflow/{path}"));
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).expect("json")
    }
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

impl Drop for Mlflow {
    fn drop(&mut self) {
        self.down();
    }
}
