//! `stack certs DIR`: the CA and the services' certificates it makes are what mutual TLS
//! between the services needs, as openssl (an outside check) and the services' own TLS
//! settings read them; keys are their owner's alone, and nothing is overwritten.

use std::{os::unix::fs::PermissionsExt, path::Path, process::Command};

use service_kit::{testing::printed, tls::ServerTls};

fn stack_certs(dir: &Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_stack"))
        .arg("certs")
        .arg(dir)
        .output()
        .expect("the launcher runs");
    (output.status.success(), printed(&output))
}

fn openssl(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    let printed = printed(&output);
    assert!(output.status.success(), "openssl {args:?}: {printed}");
    printed
}

#[test]
fn the_certificates_serve_mutual_tls_between_the_services() {
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path().join("certs");
    let (made, printed) = stack_certs(&dir);
    assert!(made, "{printed}");
    let read = |file: &str| std::fs::read(dir.join(file)).unwrap();
    for service in ["auth-service", "inventory-service", "gateway"] {
        let pem = format!("{service}.pem");
        for purpose in ["sslserver", "sslclient"] {
            let verified = openssl(
                &dir,
                &["verify", "-CAfile", "ca.pem", "-purpose", purpose, &pem],
            );
            assert!(verified.contains(": OK"), "{service} {purpose}: {verified}");
        }
        let names = openssl(
            &dir,
            &["x509", "-noout", "-ext", "subjectAltName", "-in", &pem],
        );
        for name in [
            format!("DNS:{service}"),
            "DNS:localhost".into(),
            "IP Address:127.0.0.1".into(),
        ] {
            assert!(names.contains(&name), "{service} lacks {name}: {names}");
        }
        let key = dir.join(format!("{service}.key"));
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{service}'s key is its owner's alone");
        // What TLS_CERT_FILE, TLS_KEY_FILE and TLS_CLIENT_CA_FILE will be given.
        let key = read(&format!("{service}.key"));
        ServerTls::from_pem(read(&pem), key, Some(read("ca.pem"))).expect("a server can use it");
    }
    assert!(!dir.join("ca.key").exists(), "the CA's key is not kept");

    let (again, printed) = stack_certs(&dir);
    assert!(!again, "the certificates were overwritten");
    assert!(printed.contains("not overwriting"), "{printed}");
}

#[test]
fn the_launcher_answers_version_and_help_without_serving() {
    let binary = env!("CARGO_BIN_EXE_stack");
    service_kit::testing::assert_command_line(binary, "stack", env!("CARGO_PKG_VERSION"));
}
