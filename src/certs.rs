//! `stack certs DIR`: a CA and a certificate for each service, for mutual TLS between them
//! (README's "TLS between the services" shows the settings). Each service's certificate names it
//! as compose does (`auth-service`, `inventory-service`, `gateway`), and `localhost` and
//! `127.0.0.1` beside, and serves both ends (`serverAuth`, `clientAuth`): a service is a server
//! to some and a client of others. Keys are ECDSA P-256, made in-process by rcgen.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

/// The services, by the names their certificates carry (compose's service names).
pub const SERVICES: [&str; 3] = ["auth-service", "inventory-service", "gateway"];

/// How long the CA and the services' certificates are valid.
const CA_VALIDITY: Duration = Duration::days(3650);
const SERVICE_VALIDITY: Duration = Duration::days(825);

/// Writes `ca.pem` and, for each service, `{name}.pem` and `{name}.key` into `dir` (created if
/// missing). The CA's key is not kept: nothing signs with it again, so nothing can be signed
/// with it by whoever reads the folder. Refuses to overwrite what is there.
pub fn make(dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let now = OffsetDateTime::now_utc();
    let ca_key = KeyPair::generate().map_err(|e| e.to_string())?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    ca.distinguished_name = name("auth-inventory internal CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    (ca.not_before, ca.not_after) = (now - Duration::days(1), now + CA_VALIDITY);
    let ca = CertifiedIssuer::self_signed(ca, ca_key).map_err(|e| e.to_string())?;

    let mut files = vec![(dir.join("ca.pem"), ca.pem())];
    for service in SERVICES {
        let names = [service, "localhost", "127.0.0.1"].map(str::to_owned);
        let mut params = CertificateParams::new(names.to_vec()).map_err(|e| e.to_string())?;
        params.distinguished_name = name(service);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        (params.not_before, params.not_after) = (now - Duration::days(1), now + SERVICE_VALIDITY);
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let certificate = params.signed_by(&key, &ca).map_err(|e| e.to_string())?;
        files.push((dir.join(format!("{service}.pem")), certificate.pem()));
        files.push((dir.join(format!("{service}.key")), key.serialize_pem()));
    }
    if let Some((path, _)) = files.iter().find(|(path, _)| path.exists()) {
        return Err(format!("{} exists: not overwriting it", path.display()));
    }
    for (path, pem) in &files {
        write_new(path, pem.as_bytes())?;
    }
    Ok(files.into_iter().map(|(path, _)| path).collect())
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

/// Creates `path` with `bytes`: a key readable by its owner only, a certificate by all.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    let key = path.extension().is_some_and(|extension| extension == "key");
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, if key { 0o600 } else { 0o644 });
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(bytes)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
