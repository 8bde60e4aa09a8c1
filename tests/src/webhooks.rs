//! Test helpers for webhooks (API.md, "Traffic"): a receiver on 127.0.0.1
//! port 0 that records every request and can answer 500 a number of times
//! or hang, and a signature check written apart from the host's.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Parent, TestApp};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// What the receiver answered (0: it hung).
    pub answered: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    fail_next: usize,
    hang: bool,
}

/// A webhook receiver on 127.0.0.1.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let state: Arc<Mutex<State>> = Arc::default();
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        Receiver { url, state }
    }

    /// Answer 500 to the next `n` requests.
    pub fn fail_next(&self, n: usize) {
        self.state.lock().unwrap().fail_next = n;
    }

    /// Never answer (hold each connection open) while on.
    pub fn hang(&self, on: bool) {
        self.state.lock().unwrap().hang = on;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Waits up to 15 s until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            if self.state.lock().unwrap().received.len() >= n {
                return self.received();
            }
            let got = self.received();
            assert!(
                std::time::Instant::now() < deadline,
                "the receiver got {} requests, not {n}: {got:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

async fn serve(mut stream: tokio::net::TcpStream, state: Arc<Mutex<State>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let answer = {
        let mut s = state.lock().unwrap();
        let answer = if s.hang {
            0
        } else if s.fail_next > 0 {
            s.fail_next -= 1;
            500
        } else {
            200
        };
        s.received.push(Received {
            headers,
            body: String::from_utf8_lossy(&body).to_string(),
            answered: answer,
        });
        answer
    };
    if answer == 0 {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return;
    }
    let reply = format!("HTTP/1.1 {answer} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    let _ = stream.write_all(reply.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Whether `header` (`t=UNIX,v1=HEX`) signs `body` under `secret`:
/// HMAC-SHA256 over `t.body`, computed here independently of the host.
pub fn signature_verifies(secret: &str, header: &str, body: &str) -> bool {
    use hmac::{Hmac, Mac};
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = Some(v),
            Some(("v1", v)) => v1 = Some(v),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let Ok(given) = hex::decode(v1) else {
        return false;
    };
    mac.verify_slice(&given).is_ok()
}

impl TestApp {
    /// Lets webhooks target private addresses (the receiver is on 127.0.0.1).
    pub async fn allow_private_webhooks(&self, allow: bool) {
        self.op_patch(
            "/v1/operator/settings",
            json!({"webhooks_allow_private": allow}),
        )
        .await
        .expect(200);
    }

    /// Creates a webhook on `account` with `key`: (id, secret).
    pub async fn webhook(
        &self,
        account: &str,
        key: &str,
        url: &str,
        events: &[&str],
    ) -> (String, String) {
        let body = self
            .post(
                &format!("/v1/accounts/{account}/webhooks"),
                key,
                json!({"url": url, "events": events}),
            )
            .await
            .expect(201);
        (
            body["id"].as_str().unwrap().to_string(),
            body["secret"].as_str().unwrap().to_string(),
        )
    }

    /// A webhook's delivery log.
    pub async fn deliveries(&self, account: &str, key: &str, webhook: &str) -> Vec<Value> {
        self.get(
            &format!("/v1/accounts/{account}/webhooks/{webhook}/deliveries"),
            key,
        )
        .await
        .expect(200)["data"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Waits up to 15 s until the delivery log of `webhook` satisfies
    /// `done`.
    pub async fn await_deliveries(
        &self,
        account: &str,
        key: &str,
        webhook: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let log = self.deliveries(account, key, webhook).await;
            if done(&log) {
                return log;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "delivery log never got there: {log:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A prepaid parent priced at 10.00 per SMS with `balance` on it (the
/// ledger tests use it too).
pub async fn funded_parent(app: &TestApp, domain: &str, module: &str, balance: &str) -> Parent {
    let parent = app
        .parent_with(domain, module, json!({"prices": {"sms": "10.00"}}))
        .await;
    app.op_post(
        &format!("/v1/operator/accounts/{}/topups", parent.id),
        json!({"amount": balance}),
    )
    .await
    .expect(201);
    parent
}
