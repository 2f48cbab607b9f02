//! TLS set-up: certificates for `rediss://` handles, and the checks that turn a TLS handle on
//! a build without TLS, or without a rustls crypto provider, into an [`Error::Config`] rather
//! than a failure (or a panic in rustls) at the first connection.
//!
//! pottery installs nothing process-wide unless `tls-rustls-ring` or `tls-rustls-aws-lc-rs`
//! says so: then a TLS handle installs that provider as rustls's default when the application
//! has installed none (an application that installs its own provider first keeps it). With
//! both features on, ring (whatever the build order). With `tls-native-tls` alone, the
//! platform's TLS library needs no provider; with a `tls-rustls*` feature beside it, redis-rs
//! makes every TLS connection with rustls.

use redis::RedisResult;

use crate::error::{Error, Result};

/// CA and client certificates for TLS connections.
#[cfg(any(feature = "tls-rustls", feature = "tls-native-tls"))]
pub(crate) type Certs = redis::TlsCertificates;

/// CA and client certificates for TLS connections: none on a build without TLS.
#[cfg(not(any(feature = "tls-rustls", feature = "tls-native-tls")))]
#[derive(Clone)]
pub(crate) enum Certs {}

/// The certificates the builder was given (none without TLS: `build` refused them already).
pub(crate) fn certs(
    root_cert: Option<&Vec<u8>>,
    client_cert: Option<&(Vec<u8>, Vec<u8>)>,
) -> Option<Certs> {
    #[cfg(any(feature = "tls-rustls", feature = "tls-native-tls"))]
    {
        (root_cert.is_some() || client_cert.is_some()).then(|| redis::TlsCertificates {
            client_tls: client_cert.map(|(client_cert, client_key)| redis::ClientTlsConfig {
                client_cert: client_cert.clone(),
                client_key: client_key.clone(),
            }),
            root_cert: root_cert.cloned(),
        })
    }
    #[cfg(not(any(feature = "tls-rustls", feature = "tls-native-tls")))]
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
        #[cfg(any(feature = "tls-rustls", feature = "tls-native-tls"))]
        Some(certs) => redis::Client::build_with_tls(info, certs.clone()),
        #[cfg(not(any(feature = "tls-rustls", feature = "tls-native-tls")))]
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
    /// For a cluster or a Sentinel group (redis-rs takes them there through rustls only).
    pub certs_for_many: bool,
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
    /// redis-rs makes TLS connections with rustls (it does whenever `tls-rustls` is on).
    rustls: bool,
    /// ... or, without rustls, with the platform's library.
    native: bool,
    insecure: bool,
    /// A rustls provider pottery installs (`tls-rustls-ring`, `tls-rustls-aws-lc-rs`).
    provider: bool,
}

const BUILT: Built = Built {
    rustls: cfg!(feature = "tls-rustls"),
    native: cfg!(feature = "tls-native-tls"),
    insecure: cfg!(feature = "tls-insecure"),
    provider: cfg!(any(
        feature = "tls-rustls-ring",
        feature = "tls-rustls-aws-lc-rs"
    )),
};

const NO_TLS: &str = "TLS (a rediss:// URL, TLS to the master, or TLS certificates) needs one \
                      of pottery's TLS features: `tls-rustls-ring`, `tls-rustls-aws-lc-rs` or \
                      `tls-native-tls` (or `tls-rustls` and a rustls crypto provider of your \
                      own)";
const NO_INSECURE: &str = "TLS without certificate checks (`#insecure`, master_tls_insecure) \
                           needs pottery's `tls-insecure` feature (through rustls: with it, \
                           rustls makes every TLS connection)";
const NO_PROVIDER: &str = "TLS needs a rustls crypto provider: install one before building \
                           the handle (`rustls::crypto::aws_lc_rs::default_provider()\
                           .install_default()` or `rustls::crypto::ring::default_provider()\
                           .install_default()`), or enable pottery's `tls-rustls-ring` or \
                           `tls-rustls-aws-lc-rs` feature";
const NO_NATIVE_CERTS: &str = "TLS certificates for a cluster or a Sentinel group need rustls \
                               (pottery's `tls-rustls-ring` or `tls-rustls-aws-lc-rs` \
                               feature): with `tls-native-tls`, redis-rs takes them for one \
                               server only";

/// Why a handle that `needs` this cannot be built here, if it cannot.
fn problem(needs: Needs, built: Built, provider_installed: bool) -> Option<&'static str> {
    if !needs.tls && !needs.certs {
        None
    } else if !built.rustls && !built.native {
        Some(NO_TLS)
    } else if needs.insecure && !built.insecure {
        Some(NO_INSECURE)
    } else if !built.rustls {
        // The platform's library: no provider to install.
        needs.certs_for_many.then_some(NO_NATIVE_CERTS)
    } else if !provider_installed && !built.provider {
        Some(NO_PROVIDER)
    } else {
        None
    }
}

/// Checks that this build and this process can make the TLS connections a handle needs: an
/// [`Error::Config`] naming the feature or the call that fixes it otherwise. With
/// `tls-rustls-ring` (or else `tls-rustls-aws-lc-rs`), installs ring (aws-lc-rs) as the default
/// provider when none is installed yet.
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
    #[cfg(any(feature = "tls-rustls-ring", feature = "tls-rustls-aws-lc-rs"))]
    if (needs.tls || needs.certs) && !installed {
        // Ring when both are built in: one choice, whatever else is compiled.
        #[cfg(feature = "tls-rustls-ring")]
        let provider = rustls::crypto::ring::default_provider();
        #[cfg(not(feature = "tls-rustls-ring"))]
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        // Err: another thread installed one meanwhile, which is as good.
        let _ = provider.install_default();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Built = Built {
        rustls: true,
        native: true,
        insecure: true,
        provider: true,
    };
    const NONE: Built = Built {
        rustls: false,
        native: false,
        insecure: false,
        provider: false,
    };

    #[test]
    fn plain_handles_need_nothing() {
        let plain = Needs::of_urls(&["redis://h:1/0".to_owned()]);
        assert_eq!(problem(plain, NONE, false), None);
    }

    #[test]
    fn tls_on_a_build_without_it_names_the_features() {
        let needs = Needs::of_urls(&["REDISS://h:1".to_owned()]);
        assert!(needs.tls && !needs.insecure);
        let message = problem(needs, NONE, true).unwrap();
        for feature in [
            "`tls-rustls-ring`",
            "`tls-rustls-aws-lc-rs`",
            "`tls-native-tls`",
        ] {
            assert!(message.contains(feature), "{message}");
        }
        let certs = Needs {
            certs: true,
            ..Needs::default()
        };
        assert_eq!(problem(certs, NONE, true), Some(NO_TLS));
    }

    #[test]
    fn insecure_needs_its_feature() {
        let needs = Needs::of_urls(&["redis://a".to_owned(), "rediss://h:1#insecure".to_owned()]);
        assert!(needs.insecure);
        for built in [
            Built {
                insecure: false,
                ..ALL
            },
            // The platform's library alone: `#insecure` still needs the feature.
            Built {
                rustls: false,
                native: true,
                ..NONE
            },
        ] {
            assert!(
                problem(needs, built, true)
                    .unwrap()
                    .contains("`tls-insecure`")
            );
        }
        assert_eq!(problem(needs, ALL, false), None);
    }

    #[test]
    fn no_provider_names_the_call_and_the_features() {
        let built = Built {
            provider: false,
            ..ALL
        };
        let needs = Needs::of_urls(&["rediss://h:1".to_owned()]);
        let message = problem(needs, built, false).unwrap();
        assert!(message.contains("install_default()"), "{message}");
        assert!(message.contains("`tls-rustls-ring`"), "{message}");
        assert!(message.contains("`tls-rustls-aws-lc-rs`"), "{message}");
        // An application's own provider is used as it is.
        assert_eq!(problem(needs, built, true), None);
        // With a provider built in, pottery installs it when none is.
        assert_eq!(problem(needs, ALL, false), None);
    }

    #[test]
    fn native_tls_needs_no_provider_and_takes_certificates_for_one_server() {
        let native = Built {
            native: true,
            ..NONE
        };
        let needs = Needs::of_urls(&["rediss://h:1".to_owned()]);
        assert_eq!(problem(needs, native, false), None);
        let one = Needs {
            certs: true,
            ..needs
        };
        assert_eq!(problem(one, native, false), None);
        let many = Needs {
            certs_for_many: true,
            ..one
        };
        let message = problem(many, native, false).unwrap();
        assert!(message.contains("`tls-rustls-ring`"), "{message}");
        // With rustls beside it, rustls takes them (and needs its provider).
        assert_eq!(problem(many, ALL, false), None);
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
