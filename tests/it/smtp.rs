//! A real SMTP listener on localhost for the tests: it speaks the protocol (greeting, EHLO/HELO,
//! MAIL, RCPT, DATA with dot-stuffing, RSET, NOOP, QUIT) to Gantry's SMTP client and keeps every
//! message it is given, decoded, for the test to read.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Debug, Clone)]
pub struct Mail {
    /// The envelope sender.
    #[allow(dead_code, reason = "kept for a test's failure output")]
    pub from: String,
    pub to: Vec<String>,
    /// The whole message (headers and body) as sent.
    pub raw: String,
}

impl Mail {
    /// The `Subject` header.
    pub fn subject(&self) -> String {
        self.raw.lines().find_map(|l| l.strip_prefix("Subject: ")).map(str::to_string).unwrap_or_default()
    }

    /// The body, with quoted-printable soft breaks and escapes decoded.
    pub fn body(&self) -> String {
        let body = self.raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        decode_qp(body)
    }

    /// The first link of the body.
    pub fn link(&self) -> String {
        let body = self.body();
        let start = body.find("http").unwrap_or_else(|| panic!("no link in {body}"));
        body[start..].split_whitespace().next().unwrap().to_string()
    }

    /// The link's path and query (the test server's own address replaces the public URL's).
    pub fn link_path(&self) -> String {
        let url = url::Url::parse(&self.link()).unwrap();
        format!("{}?{}", url.path(), url.query().unwrap_or(""))
    }

    /// The `token` parameter of the link.
    pub fn token(&self) -> String {
        let url = url::Url::parse(&self.link()).unwrap();
        url.query_pairs().find(|(k, _)| k == "token").map(|(_, v)| v.into_owned()).expect("a token in the link")
    }
}

/// Quoted-printable (RFC 2045) as lettre writes long lines: `=\r\n` soft breaks and `=XX` escapes.
pub fn decode_qp(s: &str) -> String {
    let joined = s.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub struct SmtpServer {
    pub addr: SocketAddr,
    pub mails: Arc<Mutex<Vec<Mail>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mails: Arc<Mutex<Vec<Mail>>> = Arc::default();
        let store = mails.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let _ = session(socket, store).await;
                });
            }
        });
        SmtpServer { addr, mails, task }
    }

    /// `smtp://127.0.0.1:PORT` (plain text, no authentication).
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// The messages sent to `to` so far.
    pub fn to(&self, to: &str) -> Vec<Mail> {
        self.mails.lock().unwrap().iter().filter(|m| m.to.iter().any(|t| t == to)).cloned().collect()
    }

    /// Waits (up to 10 s) until `n` messages were sent to `to`; returns the last.
    pub async fn nth(&self, to: &str, n: usize) -> Mail {
        for _ in 0..1000 {
            let got = self.to(to);
            if got.len() >= n {
                return got[n - 1].clone();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "no message {n} to {to} within 10 s; got {:?}",
            self.to(to).iter().map(Mail::subject).collect::<Vec<_>>()
        );
    }
}

async fn session(socket: tokio::net::TcpStream, store: Arc<Mutex<Vec<Mail>>>) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 localhost ESMTP gantry-test\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_string();
        let upper = command.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-localhost\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            b"250 OK\r\n"
        } else if upper.starts_with("RSET") {
            from.clear();
            to.clear();
            b"250 OK\r\n"
        } else if let Some(a) = upper.strip_prefix("MAIL FROM:") {
            from = address(&command[command.len() - a.len()..]);
            b"250 OK\r\n"
        } else if let Some(a) = upper.strip_prefix("RCPT TO:") {
            to.push(address(&command[command.len() - a.len()..]));
            b"250 OK\r\n"
        } else if upper == "DATA" {
            write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut raw = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                // Dot-stuffing: a line starting with a dot was sent with one more.
                raw.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            store.lock().unwrap().push(Mail { from: from.clone(), to: std::mem::take(&mut to), raw });
            b"250 OK queued\r\n"
        } else if upper.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"502 not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
}

fn address(s: &str) -> String {
    let s = s.trim();
    let s = s.split_whitespace().next().unwrap_or("");
    s.trim_start_matches('<').trim_end_matches('>').to_ascii_lowercase()
}
