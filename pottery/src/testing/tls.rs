//! Certificates made on the spot for a TLS server.

use std::io::{self};
use std::path::{Path, PathBuf};

/// TLS material made for one server: a CA and a server certificate for `localhost` and
/// `127.0.0.1`, signed by it.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The CA certificate (PEM): give it to [`crate::RedisBuilder::tls_root_cert`].
    pub ca_pem: Vec<u8>,
    pub(super) ca_path: PathBuf,
    pub(super) cert_path: PathBuf,
    pub(super) key_path: PathBuf,
}

pub(super) fn make_tls(dir: &Path) -> io::Result<TlsFiles> {
    let err = |e: rcgen::Error| io::Error::other(e.to_string());
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "pottery test CA");
    let ca_key = rcgen::KeyPair::generate().map_err(err)?;
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).map_err(err)?;
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .map_err(err)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let key = rcgen::KeyPair::generate().map_err(err)?;
    let cert = params.signed_by(&key, &ca).map_err(err)?;
    let files = TlsFiles {
        ca_pem: ca.pem().into_bytes(),
        ca_path: dir.join("ca.crt"),
        cert_path: dir.join("server.crt"),
        key_path: dir.join("server.key"),
    };
    std::fs::write(&files.ca_path, &files.ca_pem)?;
    std::fs::write(&files.cert_path, cert.pem())?;
    std::fs::write(&files.key_path, key.serialize_pem())?;
    Ok(files)
}
