//! TLS, by rustls: [`ServerTls`], what a server serves with (`TLS_CERT_FILE`, `TLS_KEY_FILE`,
//! and `TLS_CLIENT_CA_FILE` to require client certificates), for tonic's gRPC servers and the
//! gateway's HTTPS alike, and [`ClientTls`], what a gRPC client verifies its `https://`
//! upstreams against (`TLS_CA_FILE`) and presents (`TLS_CLIENT_CERT_FILE`,
//! `TLS_CLIENT_KEY_FILE`). Every file is read and parsed
//! at start-up, so a missing file, a key that does not match its certificate or a CA that does
//! not parse stops the program with the setting's name, not the first call.
//!
//! Under mutual TLS a caller is known by the identity its certificate carries: [`Identities`].
//!
//! The container's health probe asks its own server, which may present a certificate for no
//! name the probe could verify (a pod's, a compose service's):
//! [`ServerTls::probe_client_config`] trusts exactly the certificate the server was given,
//! nothing else.

mod identity;

pub use identity::Identities;

use std::{fmt, path::Path, sync::Arc};

use rustls::{
    DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::WebPkiSupportedAlgorithms,
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject},
};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, Server, ServerTlsConfig};

use crate::env::{self, ConfigError};

/// A server's certificate chain and key, and the CA its clients' certificates must chain to
/// when it requires them (mutual TLS).
#[derive(Clone)]
pub struct ServerTls {
    chain: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("client_ca", &self.client_ca.is_some())
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// `TLS_CERT_FILE` and `TLS_KEY_FILE` (both or neither; neither: plaintext), and
    /// `TLS_CLIENT_CA_FILE` (only with them).
    pub fn from_env() -> Result<Option<Self>, ConfigError> {
        let cert = optional_file("TLS_CERT_FILE")?;
        let key = optional_file("TLS_KEY_FILE")?;
        let client_ca = optional_file("TLS_CLIENT_CA_FILE")?;
        let (chain, key) = match (cert, key) {
            (None, None) => {
                if let Some((path, _)) = client_ca {
                    return Err(ConfigError::new(
                        "TLS_CLIENT_CA_FILE",
                        path,
                        "needs TLS_CERT_FILE and TLS_KEY_FILE: client certificates are asked \
                         for over TLS only",
                    ));
                }
                return Ok(None);
            }
            (Some(_), None) => return Err(missing("TLS_KEY_FILE", "TLS_CERT_FILE")),
            (None, Some(_)) => return Err(missing("TLS_CERT_FILE", "TLS_KEY_FILE")),
            (Some(cert), Some(key)) => (cert, key),
        };
        certificates("TLS_CERT_FILE", &chain)?;
        private_key("TLS_KEY_FILE", &key)?;
        if let Some((path, pem)) = &client_ca {
            certificates("TLS_CLIENT_CA_FILE", &(path.clone(), pem.clone()))?;
        }
        let tls = Self {
            chain: chain.1,
            key: key.1,
            client_ca: client_ca.map(|(_, pem)| pem),
        };
        tls.check().map_err(|err| {
            ConfigError::new(
                "TLS_KEY_FILE",
                key.0,
                format!("cannot serve with it: {err}"),
            )
        })?;
        Ok(Some(tls))
    }

    /// From PEM already in memory (tests, tools), checked as [`ServerTls::from_env`] checks.
    pub fn from_pem(
        chain: impl Into<Vec<u8>>,
        key: impl Into<Vec<u8>>,
        client_ca: Option<Vec<u8>>,
    ) -> Result<Self, String> {
        let tls = Self {
            chain: chain.into(),
            key: key.into(),
            client_ca,
        };
        tls.check()?;
        Ok(tls)
    }

    /// Whether clients must present a certificate.
    pub fn requires_client_certificates(&self) -> bool {
        self.client_ca.is_some()
    }

    /// tonic's server configuration.
    pub(crate) fn config(&self) -> ServerTlsConfig {
        let config = ServerTlsConfig::new().identity(Identity::from_pem(&self.chain, &self.key));
        match &self.client_ca {
            Some(ca) => config.client_ca_root(Certificate::from_pem(ca)),
            None => config,
        }
    }

    /// Builds the rustls server configuration tonic would, so that a chain and key that do not
    /// match fail here.
    fn check(&self) -> Result<(), String> {
        Server::builder()
            .tls_config(self.config())
            .map(drop)
            .map_err(|err| match std::error::Error::source(&err) {
                Some(source) => source.to_string(),
                None => err.to_string(),
            })
    }

    /// A TLS client configuration for the health probe: it trusts this server's own
    /// certificate alone (whatever names it carries), and presents it as its client certificate
    /// when the server requires one (the certificates of this workspace's services are made for
    /// both uses). No ALPN: the probe sets its protocol.
    pub fn probe_client_config(&self) -> Result<rustls::ClientConfig, String> {
        let chain = self.chain()?;
        let leaf = chain.first().ok_or("no certificate")?.clone();
        let provider = provider();
        let verifier = ItsOwnCertificate {
            leaf,
            algorithms: provider.signature_verification_algorithms,
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| err.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier));
        if self.client_ca.is_some() {
            builder
                .with_client_auth_cert(chain, self.key()?)
                .map_err(|err| err.to_string())
        } else {
            Ok(builder.with_no_client_auth())
        }
    }

    /// A rustls server configuration, for a server that is not tonic's (the gateway's HTTPS):
    /// this chain and key, and client certificates required from the client CA when there is
    /// one. No ALPN: the server sets its protocols.
    pub fn server_config(&self) -> Result<rustls::ServerConfig, String> {
        let provider = provider();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|err| err.to_string())?;
        let builder = match &self.client_ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for certificate in CertificateDer::pem_slice_iter(ca) {
                    let certificate = certificate.map_err(|err| err.to_string())?;
                    roots.add(certificate).map_err(|err| err.to_string())?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    roots.into(),
                    provider,
                )
                .build()
                .map_err(|err| err.to_string())?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        builder
            .with_single_cert(self.chain()?, self.key()?)
            .map_err(|err| err.to_string())
    }

    fn chain(&self) -> Result<Vec<CertificateDer<'static>>, String> {
        CertificateDer::pem_slice_iter(&self.chain)
            .collect::<Result<_, _>>()
            .map_err(|err| err.to_string())
    }

    fn key(&self) -> Result<PrivateKeyDer<'static>, String> {
        PrivateKeyDer::from_pem_slice(&self.key).map_err(|err| err.to_string())
    }
}

/// ring, as tonic's `tls-ring` and sqlx's `tls-rustls-ring` use: one provider in the build.
/// (rustls deprecates it for lacking post-quantum key exchange; aws-lc-rs, which has it, needs a
/// C toolchain and CMake to build.)
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The CA bundle a client verifies its `https://` upstreams against, and the certificate it
/// presents to servers that require one.
#[derive(Clone)]
pub struct ClientTls {
    ca: Vec<u8>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("presents_a_certificate", &self.identity.is_some())
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// `TLS_CA_FILE` (none: plaintext upstreams), and `TLS_CLIENT_CERT_FILE` with
    /// `TLS_CLIENT_KEY_FILE` (both or neither; only with a CA).
    pub fn from_env() -> Result<Option<Self>, ConfigError> {
        let ca = optional_file("TLS_CA_FILE")?;
        let cert = optional_file("TLS_CLIENT_CERT_FILE")?;
        let key = optional_file("TLS_CLIENT_KEY_FILE")?;
        let identity = match (cert, key) {
            (None, None) => None,
            (Some(_), None) => return Err(missing("TLS_CLIENT_KEY_FILE", "TLS_CLIENT_CERT_FILE")),
            (None, Some(_)) => return Err(missing("TLS_CLIENT_CERT_FILE", "TLS_CLIENT_KEY_FILE")),
            (Some(cert), Some(key)) => {
                certificates("TLS_CLIENT_CERT_FILE", &cert)?;
                private_key("TLS_CLIENT_KEY_FILE", &key)?;
                Some((cert.1, key.1))
            }
        };
        let Some(ca) = ca else {
            if identity.is_some() {
                return Err(missing("TLS_CA_FILE", "TLS_CLIENT_CERT_FILE"));
            }
            return Ok(None);
        };
        certificates("TLS_CA_FILE", &ca)?;
        let tls = Self { ca: ca.1, identity };
        // What every connection will build, built once here.
        tonic::transport::Endpoint::from_static("https://localhost")
            .tls_config(tls.config("localhost"))
            .map_err(|err| {
                ConfigError::new("TLS_CA_FILE", ca.0, format!("cannot verify with it: {err}"))
            })?;
        Ok(Some(tls))
    }

    /// From PEM already in memory (tests, tools).
    pub fn from_pem(ca: impl Into<Vec<u8>>, identity: Option<(Vec<u8>, Vec<u8>)>) -> Self {
        Self {
            ca: ca.into(),
            identity,
        }
    }

    /// tonic's client configuration for a server that must present a certificate for
    /// `domain` (the host named in the URL, when the connection goes to an address it
    /// resolved to).
    pub fn config(&self, domain: &str) -> ClientTlsConfig {
        let config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca))
            .domain_name(domain);
        match &self.identity {
            Some((cert, key)) => config.identity(Identity::from_pem(cert, key)),
            None => config,
        }
    }
}

/// The path a setting names, and the file's bytes; `None` when the setting is unset or empty.
fn optional_file(name: &'static str) -> Result<Option<(String, Vec<u8>)>, ConfigError> {
    let path = env::string_or(name, "");
    if path.is_empty() {
        return Ok(None);
    }
    match std::fs::read(Path::new(&path)) {
        Ok(bytes) => Ok(Some((path, bytes))),
        Err(err) => Err(ConfigError::new(
            name,
            path,
            format!("cannot read it: {err}"),
        )),
    }
}

fn missing(name: &'static str, because: &str) -> ConfigError {
    ConfigError::new(name, "", format!("must be set with {because}"))
}

/// Checks that `file` holds at least one PEM certificate, and nothing that fails to parse.
fn certificates(name: &'static str, (path, pem): &(String, Vec<u8>)) -> Result<(), ConfigError> {
    let parsed: Result<Vec<CertificateDer<'_>>, _> = CertificateDer::pem_slice_iter(pem).collect();
    match parsed {
        Ok(certificates) if !certificates.is_empty() => Ok(()),
        Ok(_) => Err(ConfigError::new(
            name,
            path.clone(),
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
        )),
        Err(err) => Err(ConfigError::new(
            name,
            path.clone(),
            format!("is not a PEM certificate: {err}"),
        )),
    }
}

/// Checks that `file` holds a PEM private key (PKCS#8, PKCS#1 or SEC1).
fn private_key(name: &'static str, (path, pem): &(String, Vec<u8>)) -> Result<(), ConfigError> {
    PrivateKeyDer::from_pem_slice(pem).map(drop).map_err(|err| {
        ConfigError::new(
            name,
            path.clone(),
            format!("holds no PEM private key: {err}"),
        )
    })
}

/// Trusts one certificate, the one the server was given: the probe asks its own process.
#[derive(Debug)]
struct ItsOwnCertificate {
    leaf: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ItsOwnCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.leaf.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "not the certificate in TLS_CERT_FILE".to_owned(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
