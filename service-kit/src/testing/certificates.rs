//! Throwaway certificates for tests, made by `openssl`: a CA ([`TestCa`]) and the certificates
//! it signs, for servers (a name and an address) and for clients (a service's identity), each
//! good for both uses as the services' own are (a service is a server and a client).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use tempfile::TempDir;

/// A CA in a temporary folder of its own (`ca.pem`, `ca.key`), and the certificates it signed
/// beside it (`{name}.pem`, `{name}.key`). Removed when dropped.
pub struct TestCa {
    folder: TempDir,
}

impl TestCa {
    pub fn new() -> Self {
        let folder = tempfile::tempdir().expect("a temporary folder");
        make_ca(folder.path(), "ca");
        Self { folder }
    }

    /// Signs a certificate for `name`, valid for `localhost`, `127.0.0.1` and `DNS:{name}`:
    /// its PEM chain and key.
    pub fn issue(&self, name: &str) -> (Vec<u8>, Vec<u8>) {
        issue(
            self.folder.path(),
            "ca",
            name,
            &format!("DNS:{name},DNS:localhost,IP:127.0.0.1"),
        );
        (
            self.read(&format!("{name}.pem")),
            self.read(&format!("{name}.key")),
        )
    }

    /// The CA's certificate, PEM.
    pub fn certificate(&self) -> Vec<u8> {
        self.read("ca.pem")
    }

    /// A file in the folder, by name: `ca.pem`, or an issued `{name}.pem` or `{name}.key`.
    pub fn path(&self, file: &str) -> PathBuf {
        self.folder.path().join(file)
    }

    fn read(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.path(file)).expect("a file this CA wrote")
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

/// A CA in `dir`: `{ca}.pem`, `{ca}.key`.
pub fn make_ca(dir: &Path, ca: &str) {
    openssl(
        dir,
        &format!("req -x509 {NEW_KEY} -keyout {ca}.key -out {ca}.pem -days 2 -subj /CN=test-ca"),
    );
}

/// A certificate signed by the CA `ca` in `dir` for `subject_alt_names` (openssl's syntax:
/// `DNS:localhost,IP:127.0.0.1`), for servers and clients: `{name}.pem`, `{name}.key`.
pub fn issue(dir: &Path, ca: &str, name: &str, subject_alt_names: &str) {
    openssl(
        dir,
        &format!("req {NEW_KEY} -keyout {name}.key -out {name}.csr -subj /CN={name}"),
    );
    let extensions = format!("{name}.ext");
    std::fs::write(
        dir.join(&extensions),
        format!("subjectAltName={subject_alt_names}\nextendedKeyUsage=serverAuth,clientAuth\n"),
    )
    .expect("the extension file");
    openssl(
        dir,
        &format!(
            "x509 -req -in {name}.csr -CA {ca}.pem -CAkey {ca}.key -CAcreateserial -days 2 \
             -extfile {extensions} -out {name}.pem"
        ),
    );
}

/// A P-256 key, unencrypted.
const NEW_KEY: &str = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

fn openssl(dir: &Path, args: &str) {
    run(Command::new("openssl")
        .current_dir(dir)
        .args(args.split_whitespace()));
}

/// Runs `command`, panicking with its output if it fails.
pub fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("{command:?}: {err}"));
    let printed = super::printed(&output);
    assert!(output.status.success(), "{command:?} failed: {printed}");
}
