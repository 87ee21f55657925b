//! A real SMTP server for the tests: `scripts/smtp_sink.py` (aiosmtpd, from PyPI) as a child
//! process that writes every message it accepts to a folder of the test's own. Its port is
//! chosen first, so a test can give a service the address of a mail server that is down and
//! start it later, or stop and restart it on the same port.

use super::certificates::TestCa;
use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// The mail server of one test: stopped until [`SmtpSink::start`], stopped again on drop.
pub struct SmtpSink {
    folder: tempfile::TempDir,
    port: u16,
    credentials: Option<(String, String)>,
    /// How it speaks TLS, if at all, with the CA that signed its certificate.
    tls: Option<(SinkTls, TestCa)>,
    child: Option<Child>,
}

/// How a sink speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkTls {
    /// STARTTLS, required before anything else (a login included).
    StartTls,
    /// TLS from the first byte.
    Implicit,
}

impl SmtpSink {
    /// A sink on a free port, not yet serving; `None` (after [`super::tool_missing`]'s notice,
    /// or its panic under CI) when aiosmtpd is not installed.
    pub fn reserve(credentials: Option<(&str, &str)>) -> Option<Self> {
        let installed = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !installed {
            super::tool_missing("aiosmtpd (python3 -m pip install aiosmtpd)");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        Some(Self {
            folder: tempfile::tempdir().expect("a temporary folder"),
            port,
            credentials: credentials.map(|(user, password)| (user.to_owned(), password.to_owned())),
            tls: None,
            child: None,
        })
    }

    /// [`Self::reserve`], speaking TLS as `tls` says, with a certificate for `127.0.0.1`
    /// signed by a CA of its own ([`Self::ca_pem`]).
    pub fn reserve_tls(credentials: Option<(&str, &str)>, tls: SinkTls) -> Option<Self> {
        let mut sink = Self::reserve(credentials)?;
        let ca = TestCa::new();
        ca.issue("smtp");
        sink.tls = Some((tls, ca));
        Some(sink)
    }

    /// The CA (PEM) that signed a TLS sink's certificate.
    pub fn ca_pem(&self) -> Vec<u8> {
        self.tls.as_ref().expect("a TLS sink").1.certificate()
    }

    /// [`Self::reserve`], started.
    pub fn started(credentials: Option<(&str, &str)>) -> Option<Self> {
        let mut sink = Self::reserve(credentials)?;
        sink.start();
        Some(sink)
    }

    /// Serves on the reserved port, once it says it listens.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "the sink is serving already");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/smtp_sink.py");
        let mut command = Command::new("python3");
        command
            .arg(script)
            .arg(self.folder.path())
            .args(["--port", &self.port.to_string()]);
        if let Some((user, password)) = &self.credentials {
            command.args(["--auth", &format!("{user}:{password}")]);
        }
        if let Some((tls, ca)) = &self.tls {
            command
                .arg("--tls")
                .arg(ca.path("smtp.pem"))
                .arg(ca.path("smtp.key"));
            if *tls == SinkTls::Implicit {
                command.arg("--implicit");
            }
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs the SMTP sink");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("the sink says it listens");
        assert!(line.starts_with("listening"), "the sink said {line:?}");
        self.child = Some(child);
    }

    /// Stops serving: connections to the port are refused until [`Self::start`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `EMAIL_URL` for this server, with its login if it has one: plain SMTP on loopback, or
    /// as its TLS says.
    pub fn url(&self) -> String {
        let login = self
            .credentials
            .as_ref()
            .map_or(String::new(), |(user, password)| {
                format!("{user}:{password}@")
            });
        let port = self.port;
        match self.tls.as_ref().map(|(tls, _)| tls) {
            None => format!("smtp://{login}127.0.0.1:{port}?tls=none"),
            Some(SinkTls::StartTls) => format!("smtp://{login}127.0.0.1:{port}"),
            Some(SinkTls::Implicit) => format!("smtps://{login}127.0.0.1:{port}"),
        }
    }

    /// Every message received so far, as received (headers and body), oldest first.
    pub fn messages(&self) -> Vec<String> {
        let mut numbered: Vec<(u64, String)> = std::fs::read_dir(self.folder.path())
            .expect("the sink's folder")
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let number = path
                    .file_name()?
                    .to_str()?
                    .strip_suffix(".eml")?
                    .parse()
                    .ok()?;
                Some((number, std::fs::read_to_string(&path).ok()?))
            })
            .collect();
        numbered.sort();
        numbered.into_iter().map(|(_, text)| text).collect()
    }

    /// Waits until at least `count` messages have arrived (polling; at most `within`) and
    /// returns them all; fails the test if they do not come.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "{count} messages expected within {within:?}, {} arrived",
                messages.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The first `http(s)://` link in a message's body that starts with `prefix`, with quoted-
/// printable soft line breaks undone.
pub fn link_in(message: &str, prefix: &str) -> Option<String> {
    let body = message.replace("=\r\n", "").replace("=\n", "");
    let start = body.find(prefix)?;
    let link: String = body[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    Some(link)
}
