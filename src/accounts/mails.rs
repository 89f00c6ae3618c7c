//! The messages accounts send — an invitation, an address to confirm, a password to reset — as
//! askama text templates compiled into the binary, with links to the server's own pages.

use askama::Template;

use crate::app::App;
use crate::platform::mail::Mail;

#[derive(Template)]
#[template(path = "mail/invitation.txt")]
struct Invitation<'a> {
    inviter: &'a str,
    organization: &'a str,
    role: &'a str,
    link: &'a str,
    expires: &'a str,
}

#[derive(Template)]
#[template(path = "mail/verify_email.txt")]
struct VerifyEmail<'a> {
    name: &'a str,
    email: &'a str,
    link: &'a str,
    expires: &'a str,
}

#[derive(Template)]
#[template(path = "mail/reset_password.txt")]
struct ResetPassword<'a> {
    name: &'a str,
    email: &'a str,
    link: &'a str,
    expires: &'a str,
}

fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%d %H:%M").to_string()
}

fn link(app: &App, path: &str, token: &str) -> String {
    format!("{}{path}?token={token}", app.public_url())
}

fn render(t: impl Template) -> String {
    t.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "a mail template failed to render");
        String::new()
    })
}

/// The invitation to join `organization`, with the link to `/invitations/accept`.
pub fn invitation(
    app: &App,
    to: &str,
    inviter: &str,
    organization: &str,
    role: &str,
    token: &str,
    expires_ms: i64,
) -> Mail {
    let link = link(app, "/invitations/accept", token);
    Mail {
        to: to.to_string(),
        subject: format!("{inviter} invited you to {organization} on Gantry"),
        text: render(Invitation { inviter, organization, role, link: &link, expires: &when(expires_ms) }),
    }
}

/// The confirmation of an address, with the link to `/auth/verify-email`.
pub fn verify_email(app: &App, to: &str, name: &str, token: &str, expires_ms: i64) -> Mail {
    let link = link(app, "/auth/verify-email", token);
    Mail {
        to: to.to_string(),
        subject: "Confirm your email address for Gantry".into(),
        text: render(VerifyEmail { name, email: to, link: &link, expires: &when(expires_ms) }),
    }
}

/// The password reset, with the link to `/auth/reset-password`.
pub fn reset_password(app: &App, to: &str, name: &str, token: &str, expires_ms: i64) -> Mail {
    let link = link(app, "/auth/reset-password", token);
    Mail {
        to: to.to_string(),
        subject: "Reset your Gantry password".into(),
        text: render(ResetPassword { name, email: to, link: &link, expires: &when(expires_ms) }),
    }
}

#[derive(Template)]
#[template(path = "mail/export_ready.txt")]
struct ExportReady<'a> {
    name: &'a str,
    organization: &'a str,
    size: String,
    link: &'a str,
    expires: &'a str,
    deleted: bool,
}

/// The download link of a finished export, for the one who asked for it.
#[allow(clippy::too_many_arguments)]
pub fn export_ready(
    to: &str,
    name: &str,
    organization: &str,
    bytes: i64,
    link: &str,
    expires_ms: i64,
    deleted: bool,
) -> Mail {
    let size = if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / 1048576.0)
    } else {
        format!("{} KiB", (bytes + 1023) / 1024)
    };
    Mail {
        to: to.to_string(),
        subject: format!("Your export of {organization} is ready"),
        text: render(ExportReady { name, organization, size, link, expires: &when(expires_ms), deleted }),
    }
}
