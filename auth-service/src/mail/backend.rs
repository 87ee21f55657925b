//! How a message leaves: `EMAIL_URL` names the backend, and [`MailBackend::deliver`] sends one.
//!
//! - `console:` (the default): each message is written to standard output, as Django's console
//!   backend does, so a development stack needs no mail server. It shows the links it carries:
//!   not for production.
//! - `smtp://[user:password@]host[:port]`: SMTP submission, port 587 by default, upgraded with
//!   STARTTLS before anything (credentials included) is sent; `?tls=none` for a relay on a
//!   trusted network that offers no TLS, `?tls=opportunistic` to upgrade only when offered.
//! - `smtps://[user:password@]host[:port]`: SMTP over implicit TLS, port 465 by default.
//!
//! Certificates are checked against the Mozilla roots, and `EMAIL_CA_FILE`'s CA when set.
//! User and password are percent-decoded; the password is never shown (`Debug` and errors
//! redact it).

use std::{fmt, str::FromStr, time::Duration};

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, header::ContentType},
    transport::smtp::{
        authentication::Credentials,
        client::{Certificate, Tls, TlsParameters},
    },
};
use secrecy::{ExposeSecret, SecretString};

use super::Letter;

/// How long one SMTP conversation may take before it counts as a failed attempt.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// `EMAIL_URL`, parsed.
#[derive(Clone)]
pub enum EmailUrl {
    Console,
    Smtp {
        host: String,
        port: u16,
        security: Security,
        credentials: Option<(String, SecretString)>,
    },
}

/// How an SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// STARTTLS, required (`smtp://`).
    StartTls,
    /// STARTTLS when the server offers it (`smtp://…?tls=opportunistic`).
    Opportunistic,
    /// None (`smtp://…?tls=none`).
    Plain,
    /// TLS from the first byte (`smtps://`).
    Implicit,
}

impl FromStr for EmailUrl {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw == "console:" || raw == "console://" {
            return Ok(Self::Console);
        }
        let url = url::Url::parse(raw).map_err(|err| format!("not a URL: {err}"))?;
        let (mut security, default_port) = match url.scheme() {
            "smtp" => (Security::StartTls, 587),
            "smtps" => (Security::Implicit, 465),
            other => {
                return Err(format!(
                    "unknown scheme {other:?}: use console:, smtp:// or smtps://"
                ));
            }
        };
        for (key, value) in url.query_pairs() {
            security = match (key.as_ref(), value.as_ref(), security) {
                ("tls", "none", Security::StartTls) => Security::Plain,
                ("tls", "opportunistic", Security::StartTls) => Security::Opportunistic,
                ("tls", "required", Security::StartTls) => Security::StartTls,
                _ => return Err(format!("unknown parameter {key}={value}")),
            };
        }
        let host = url
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or("names no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let decode = |part: &str| {
            percent_encoding::percent_decode_str(part)
                .decode_utf8()
                .map(|text| text.into_owned())
                .map_err(|_| "user or password is not UTF-8 once decoded".to_owned())
        };
        let credentials = match (url.username(), url.password()) {
            ("", None) => None,
            (user, password) => Some((
                decode(user)?,
                SecretString::from(decode(password.unwrap_or(""))?),
            )),
        };
        Ok(Self::Smtp {
            host,
            port: url.port().unwrap_or(default_port),
            security,
            credentials,
        })
    }
}

/// The URL without its password.
impl fmt::Debug for EmailUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Console => f.write_str("console:"),
            Self::Smtp {
                host,
                port,
                security,
                credentials,
            } => {
                let user = credentials
                    .as_ref()
                    .map_or(String::new(), |(user, _)| format!("{user}:***@"));
                write!(f, "smtp {user}{host}:{port} ({security:?})")
            }
        }
    }
}

/// What an attempt came to when it did not deliver.
#[derive(Debug)]
pub enum Failure {
    /// Worth trying again later: the server is down, busy, or answered 4xx.
    Transient(String),
    /// Never deliverable as it is: a malformed address, or the server's 5xx.
    Permanent(String),
}

/// A configured way out.
#[derive(Clone)]
pub enum MailBackend {
    Console {
        from: Mailbox,
    },
    Smtp {
        from: Mailbox,
        transport: AsyncSmtpTransport<Tokio1Executor>,
    },
}

impl MailBackend {
    /// The backend `url` names, sending as `from`; a TLS connection also trusts `ca_pem`.
    pub fn new(url: &EmailUrl, from: Mailbox, ca_pem: Option<&[u8]>) -> Result<Self, String> {
        let EmailUrl::Smtp {
            host,
            port,
            security,
            credentials,
        } = url
        else {
            return Ok(Self::Console { from });
        };
        let tls = || {
            let mut parameters = TlsParameters::builder(host.clone());
            if let Some(pem) = ca_pem {
                let ca =
                    Certificate::from_pem(pem).map_err(|err| format!("EMAIL_CA_FILE: {err}"))?;
                parameters = parameters.add_root_certificate(ca);
            }
            parameters
                .build_rustls()
                .map_err(|err| format!("TLS for {host}: {err}"))
        };
        let tls = match security {
            Security::Plain => Tls::None,
            Security::StartTls => Tls::Required(tls()?),
            Security::Opportunistic => Tls::Opportunistic(tls()?),
            Security::Implicit => Tls::Wrapper(tls()?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
            .port(*port)
            .tls(tls)
            .timeout(Some(SMTP_TIMEOUT));
        if let Some((user, password)) = credentials {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose_secret().to_owned(),
            ));
        }
        Ok(Self::Smtp {
            from,
            transport: builder.build(),
        })
    }

    /// Sends `letter` once.
    pub async fn deliver(&self, letter: &Letter) -> Result<(), Failure> {
        let from = match self {
            Self::Console { from } | Self::Smtp { from, .. } => from,
        };
        let to: Mailbox = letter
            .to
            .parse()
            .map_err(|err| Failure::Permanent(format!("recipient: {err}")))?;
        let message = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(letter.subject.as_str())
            .header(ContentType::TEXT_PLAIN)
            .body(letter.body.clone())
            .map_err(|err| Failure::Permanent(format!("message: {err}")))?;
        match self {
            Self::Console { .. } => {
                // As Django's console backend: the whole message, on standard output, not in
                // the log (whose lines never carry a key).
                println!(
                    "{}\n{}",
                    String::from_utf8_lossy(&message.formatted()),
                    "-".repeat(79)
                );
                Ok(())
            }
            Self::Smtp { transport, .. } => match transport.send(message).await {
                Ok(_) => Ok(()),
                Err(err) if err.is_permanent() => Err(Failure::Permanent(err.to_string())),
                Err(err) => Err(Failure::Transient(err.to_string())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_backend_and_its_protection() {
        assert!(matches!("console:".parse(), Ok(EmailUrl::Console)));
        let Ok(EmailUrl::Smtp {
            host,
            port,
            security,
            credentials,
        }) = "smtp://me%40example.com:p%3Ass@mail.example.com".parse()
        else {
            panic!("smtp:// parses");
        };
        assert_eq!(
            (host.as_str(), port, security),
            ("mail.example.com", 587, Security::StartTls)
        );
        let (user, password) = credentials.expect("credentials");
        assert_eq!(
            (user.as_str(), password.expose_secret()),
            ("me@example.com", "p:ss")
        );
        let parsed: EmailUrl = "smtps://relay:2465".parse().expect("smtps:// parses");
        assert!(matches!(
            parsed,
            EmailUrl::Smtp {
                port: 2465,
                security: Security::Implicit,
                credentials: None,
                ..
            }
        ));
        let plain: EmailUrl = "smtp://127.0.0.1:2525?tls=none".parse().expect("parses");
        assert!(matches!(
            plain,
            EmailUrl::Smtp {
                security: Security::Plain,
                ..
            }
        ));
        for bad in [
            "http://x",
            "smtp://",
            "smtp://h?tls=maybe",
            "smtps://h?tls=none",
            "nonsense",
        ] {
            assert!(bad.parse::<EmailUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_password_is_never_shown() {
        let url: EmailUrl = "smtp://user:hunter2@h".parse().expect("parses");
        let shown = format!("{url:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("user"),
            "{shown}"
        );
    }
}
