//! Outgoing mail: SMTP when `GANTRY_SMTP_URL` is set (lettre, rustls), otherwise `.eml` files in
//! `<data dir>/mail` — so the embedded default works with no mail server, and the log says where
//! the messages went. Knows no domain: callers hand it a rendered message.
//!
//! A message is sent after the change that caused it has committed; a refused send is reported to
//! the caller (who says so in its answer: invitations can be resent, tokens asked for again) and
//! logged at `warn`, never retried behind the caller's back.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// How long one SMTP send may take (connect, greeting, every command).
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// A message to send, rendered.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    /// The plain-text body.
    pub text: String,
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>),
}

pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    /// Where mail goes, for the start-up log (never a password).
    pub destination: String,
}

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("bad address `{0}`")]
    Address(String),
    #[error("cannot build the message: {0}")]
    Build(String),
    #[error("sending failed: {0}")]
    Send(String),
}

impl Mailer {
    /// The transport the configuration names: SMTP for `smtp_url` (`smtp://host:port` in plain
    /// text, `smtp://…?tls=required` for STARTTLS, `smtps://` for TLS; user and password in the
    /// URL), else `.eml` files under `mail_dir`.
    pub fn new(smtp_url: Option<&str>, from: &str, mail_dir: PathBuf) -> anyhow::Result<Mailer> {
        let from: Mailbox =
            from.parse().map_err(|e| anyhow::anyhow!("GANTRY_MAIL_FROM is not a mail address (`{from}`): {e}"))?;
        match smtp_url {
            Some(url) => {
                let parsed = url::Url::parse(url).map_err(|e| anyhow::anyhow!("GANTRY_SMTP_URL is not a URL: {e}"))?;
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| anyhow::anyhow!("GANTRY_SMTP_URL: {e}"))?
                    .timeout(Some(SMTP_TIMEOUT))
                    .build();
                let destination = format!(
                    "SMTP {}://{}:{}",
                    parsed.scheme(),
                    parsed.host_str().unwrap_or("?"),
                    parsed.port().map(|p| p.to_string()).unwrap_or_else(|| "default port".into())
                );
                Ok(Mailer { transport: Transport::Smtp(transport), from, destination })
            }
            None => {
                std::fs::create_dir_all(&mail_dir)
                    .map_err(|e| anyhow::anyhow!("cannot create the mail directory {}: {e}", mail_dir.display()))?;
                let destination = format!(".eml files in {}", mail_dir.display());
                Ok(Mailer { transport: Transport::Files(AsyncFileTransport::new(&mail_dir)), from, destination })
            }
        }
    }

    /// Sends one message.
    pub async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let to: Mailbox = mail.to.parse().map_err(|_| MailError::Address(mail.to.clone()))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.text.clone())
            .map_err(|e| MailError::Build(e.to_string()))?;
        let sent = match &self.transport {
            Transport::Smtp(t) => t.send(message).await.map(|_| ()).map_err(|e| MailError::Send(e.to_string())),
            Transport::Files(t) => t.send(message).await.map(|_| ()).map_err(|e| MailError::Send(e.to_string())),
        };
        if let Err(e) = &sent {
            tracing::warn!(to = %mail.to, subject = %mail.subject, error = %e, "mail not sent");
        } else {
            tracing::debug!(to = %mail.to, subject = %mail.subject, "mail sent");
        }
        sent
    }
}
