//! The `canopy` binary as a process, for tests that start, signal and kill
//! real servers.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary built beside this test (`cargo build -p canopy` first; the
/// README's test command does), or the one `CANOPY_TEST_BINARY` names (when
/// several checkouts share one build directory).
pub fn binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("CANOPY_TEST_BINARY") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("canopy");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p canopy` before the tests",
        bin.display()
    );
    bin
}

pub fn canopy(args: &[&str]) -> Command {
    let mut cmd = Command::new(binary());
    cmd.args(args)
        .env_remove("CANOPY_OPERATOR_TOKEN")
        .env_remove("CANOPY_DATABASE_URL")
        .env_remove("CANOPY_LISTEN");
    cmd
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Server {
    pub child: Child,
    pub base: String,
    pub stdout_first_line: String,
}

impl Server {
    pub fn start(url: &str, token: Option<&str>) -> Server {
        Server::start_with(url, token, &[], &[])
    }

    /// Starts with extra flags and environment variables.
    pub fn start_with(
        url: &str,
        token: Option<&str>,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        Server::start_to(url, token, args, env, Stdio::null())
    }

    /// Starts like [`Server::start_with`], its log (stderr) going to `stderr`.
    pub fn start_to(
        url: &str,
        token: Option<&str>,
        args: &[&str],
        env: &[(&str, &str)],
        stderr: Stdio,
    ) -> Server {
        let port = free_port();
        let mut cmd = canopy(&[
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            url,
        ]);
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some(t) = token {
            cmd.env("CANOPY_OPERATOR_TOKEN", t);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(stderr).spawn().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "server did not start"
            );
            if let Some(status) = child.try_wait().unwrap() {
                panic!("server exited early: {status}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let stdout_first_line = if token.is_none() {
            let mut line = String::new();
            BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            line
        } else {
            String::new()
        };
        Server {
            child,
            base,
            stdout_first_line,
        }
    }

    /// The operator token a first start printed (the last word of its line).
    pub fn printed_token(&self) -> String {
        self.stdout_first_line
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    pub fn sigterm(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "no exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub async fn sigterm_after<F, Fut>(self, f: F) -> std::process::ExitStatus
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        f(self.base.clone()).await;
        self.sigterm()
    }
}
