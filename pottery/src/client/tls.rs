//! TLS set-up: certificates for `rediss://` handles, and the checks that turn a TLS handle on
//! a build without TLS, or without a rustls crypto provider, into an [`Error::Config`] rather
//! than a failure (or a panic in rustls) at the first connection.
//!
//! pottery installs nothing process-wide unless the `tls-rustls-ring` feature says so: then a
//! TLS handle installs ring as rustls's default provider when the application has installed
//! none (an application that installs its own provider first keeps it).

use redis::RedisResult;

use crate::error::{Error, Result};

/// CA and client certificates for TLS connections.
#[cfg(feature = "tls-rustls")]
pub(crate) type Certs = redis::TlsCertificates;

/// CA and client certificates for TLS connections: none on a build without TLS.
#[cfg(not(feature = "tls-rustls"))]
#[derive(Clone)]
pub(crate) enum Certs {}

/// The certificates the builder was given (none without TLS: `build` refused them already).
pub(crate) fn certs(
    root_cert: Option<&Vec<u8>>,
    client_cert: Option<&(Vec<u8>, Vec<u8>)>,
) -> Option<Certs> {
    #[cfg(feature = "tls-rustls")]
    {
        (root_cert.is_some() || client_cert.is_some()).then(|| redis::TlsCertificates {
            client_tls: client_cert.map(|(client_cert, client_key)| redis::ClientTlsConfig {
                client_cert: client_cert.clone(),
                client_key: client_key.clone(),
            }),
            root_cert: root_cert.cloned(),
        })
    }
    #[cfg(not(feature = "tls-rustls"))]
    {
        let _ = (root_cert, client_cert);
        None
    }
}

/// A client for `info`, with `certs` when given.
pub(crate) fn client(
    info: impl redis::IntoConnectionInfo,
    certs: Option<&Certs>,
) -> RedisResult<redis::Client> {
    match certs {
        #[cfg(feature = "tls-rustls")]
        Some(certs) => redis::Client::build_with_tls(info, certs.clone()),
        #[cfg(not(feature = "tls-rustls"))]
        Some(never) => match *never {},
        None => redis::Client::open(info),
    }
}

/// What a handle asks of TLS.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Needs {
    /// Some connection uses TLS.
    pub tls: bool,
    /// Some connection skips certificate checks.
    pub insecure: bool,
    /// Certificates were given.
    pub certs: bool,
}

impl Needs {
    /// From the node URLs (`rediss://`, `#insecure`).
    pub(crate) fn of_urls<'a>(urls: impl IntoIterator<Item = &'a String>) -> Needs {
        let mut needs = Needs::default();
        for url in urls {
            let url = url.trim();
            if url.len() >= 9 && url[..9].eq_ignore_ascii_case("rediss://") {
                needs.tls = true;
                needs.insecure |= url.ends_with("#insecure");
            }
        }
        needs
    }
}

/// What this build offers for TLS.
#[derive(Clone, Copy, Debug)]
struct Built {
    tls: bool,
    insecure: bool,
    ring: bool,
}

const BUILT: Built = Built {
    tls: cfg!(feature = "tls-rustls"),
    insecure: cfg!(feature = "tls-insecure"),
    ring: cfg!(feature = "tls-rustls-ring"),
};

const NO_TLS: &str = "TLS (a rediss:// URL, TLS to the master, or TLS certificates) needs \
                      pottery's `tls-rustls-ring` feature (or `tls-rustls` and a rustls crypto \
                      provider of your own)";
const NO_INSECURE: &str = "TLS without certificate checks (`#insecure`, master_tls_insecure) \
                           needs pottery's `tls-insecure` feature";
const NO_PROVIDER: &str = "TLS needs a rustls crypto provider: install one before building \
                           the handle (`rustls::crypto::aws_lc_rs::default_provider()\
                           .install_default()` or `rustls::crypto::ring::default_provider()\
                           .install_default()`), or enable pottery's `tls-rustls-ring` feature";

/// Why a handle that `needs` this cannot be built here, if it cannot.
fn problem(needs: Needs, built: Built, provider_installed: bool) -> Option<&'static str> {
    if !needs.tls && !needs.certs {
        None
    } else if !built.tls {
        Some(NO_TLS)
    } else if needs.insecure && !built.insecure {
        Some(NO_INSECURE)
    } else if !provider_installed && !built.ring {
        Some(NO_PROVIDER)
    } else {
        None
    }
}

/// Checks that this build and this process can make the TLS connections a handle needs: an
/// [`Error::Config`] naming the feature or the call that fixes it otherwise. With
/// `tls-rustls-ring`, installs ring as the default provider when none is installed yet.
pub(crate) fn check(needs: Needs) -> Result<()> {
    #[cfg(feature = "tls-rustls")]
    let installed = rustls::crypto::CryptoProvider::get_default().is_some();
    #[cfg(not(feature = "tls-rustls"))]
    let installed = false;
    if let Some(message) = problem(needs, BUILT, installed) {
        return Err(Error::Config {
            message: message.into(),
        });
    }
    #[cfg(feature = "tls-rustls-ring")]
    if (needs.tls || needs.certs) && !installed {
        // Err: another thread installed one meanwhile, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Built = Built {
        tls: true,
        insecure: true,
        ring: true,
    };

    #[test]
    fn plain_handles_need_nothing() {
        let none = Built {
            tls: false,
            insecure: false,
            ring: false,
        };
        let plain = Needs::of_urls(&["redis://h:1/0".to_owned()]);
        assert_eq!(problem(plain, none, false), None);
    }

    #[test]
    fn tls_on_a_build_without_it_names_the_feature() {
        let built = Built { tls: false, ..ALL };
        let needs = Needs::of_urls(&["REDISS://h:1".to_owned()]);
        assert!(needs.tls && !needs.insecure);
        assert!(
            problem(needs, built, true)
                .unwrap()
                .contains("`tls-rustls-ring`")
        );
        let certs = Needs {
            certs: true,
            ..Needs::default()
        };
        assert_eq!(problem(certs, built, true), Some(NO_TLS));
    }

    #[test]
    fn insecure_needs_its_feature() {
        let built = Built {
            insecure: false,
            ..ALL
        };
        let needs = Needs::of_urls(&["redis://a".to_owned(), "rediss://h:1#insecure".to_owned()]);
        assert!(needs.insecure);
        assert!(
            problem(needs, built, true)
                .unwrap()
                .contains("`tls-insecure`")
        );
        assert_eq!(problem(needs, ALL, false), None);
    }

    #[test]
    fn no_provider_names_the_call_and_the_feature() {
        let built = Built { ring: false, ..ALL };
        let needs = Needs::of_urls(&["rediss://h:1".to_owned()]);
        let message = problem(needs, built, false).unwrap();
        assert!(message.contains("install_default()") && message.contains("tls-rustls-ring"));
        // An application's own provider is used as it is.
        assert_eq!(problem(needs, built, true), None);
        // With ring built in, pottery installs it when none is.
        assert_eq!(problem(needs, ALL, false), None);
    }

    #[test]
    #[cfg(feature = "tls-rustls")]
    fn plain_handles_install_no_provider() -> crate::Result<()> {
        crate::Redis::from_url("redis://127.0.0.1:1/0")?;
        crate::Redis::cluster(["redis://127.0.0.1:1", "redis://127.0.0.1:2"])?;
        assert!(rustls::crypto::CryptoProvider::get_default().is_none());
        Ok(())
    }
}
