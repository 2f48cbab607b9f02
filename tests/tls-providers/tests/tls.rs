//! A TLS round trip through the TLS feature this crate was built with (`aws-lc-rs`:
//! `tls-rustls-aws-lc-rs`; `native-tls`: `tls-native-tls`; `rustls`: `tls-rustls`, with the
//! provider the application installs), and the `Error::Config` a TLS handle gets on a build or
//! in a process that cannot make its connections.

use pottery::Redis;
use pottery::testing::RedisServer;

/// The message of the `Error::Config` that building this handle returns.
#[cfg(not(feature = "aws-lc-rs"))]
fn config_error(b: pottery::RedisBuilder) -> String {
    match b.build() {
        Err(pottery::Error::Config { message }) => message,
        Err(other) => panic!("not a configuration error: {other}"),
        Ok(_) => panic!("the handle was built"),
    }
}

#[test]
#[cfg(any(feature = "aws-lc-rs", feature = "native-tls"))]
fn tls_round_trip() {
    round_trip();
}

/// `tls-rustls` alone installs no provider: a TLS handle is an `Error::Config` naming the call
/// and the features until the application installs one; then TLS works through it.
#[test]
#[cfg(all(
    feature = "rustls",
    not(any(feature = "aws-lc-rs", feature = "native-tls"))
))]
fn tls_rustls_uses_the_applications_provider() {
    let server = RedisServer::builder().tls().start().unwrap();
    let ca = server.tls().unwrap().ca_pem.clone();
    let message = config_error(Redis::builder(&server.url()).tls_root_cert(ca));
    assert!(message.contains("install_default()"), "{message}");
    assert!(message.contains("`tls-rustls-ring`"), "{message}");
    assert!(message.contains("`tls-rustls-aws-lc-rs`"), "{message}");
    // The only test of this binary: nothing else installs a provider meanwhile.
    rustls::crypto::ring::default_provider()
        .install_default()
        .unwrap();
    drop(server);
    round_trip();
}

/// A dict through a TLS server, blocking and async; and its certificate refused without the
/// test CA.
#[cfg(any(feature = "aws-lc-rs", feature = "native-tls", feature = "rustls"))]
fn round_trip() {
    let server = RedisServer::builder().tls().start().unwrap();
    assert!(server.url().starts_with("rediss://"));
    let redis = server.redis();
    let d: pottery::RedisDict<String, String> =
        pottery::RedisDict::new(&redis, "tls-provider-dict");
    d.insert("secure".into(), "yes".into()).unwrap();
    assert_eq!(d.get("secure").unwrap().as_deref(), Some("yes"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let a = d.to_async();
        assert_eq!(a.get("secure").await.unwrap().as_deref(), Some("yes"));
    });
    // Without the test CA, the server's certificate is refused.
    let untrusted = Redis::from_url(&server.url()).unwrap();
    assert!(untrusted.ping().is_err());
    d.clear().unwrap();
}

/// `tls-native-tls` alone: no rustls, so no certificate-less TLS (that is `tls-insecure`,
/// through rustls) and no certificates for a cluster (redis-rs takes them through rustls
/// only).
#[test]
#[cfg(all(feature = "native-tls", not(feature = "aws-lc-rs")))]
fn native_tls_alone_refuses_what_needs_rustls() {
    let insecure = config_error(Redis::builder("rediss://127.0.0.1:1#insecure"));
    assert!(insecure.contains("`tls-insecure`"), "{insecure}");
    let cluster = config_error(
        Redis::cluster_builder(["rediss://127.0.0.1:1"]).tls_root_cert(b"a CA".to_vec()),
    );
    assert!(cluster.contains("`tls-rustls-ring`"), "{cluster}");
    // Without certificates of its own, a cluster handle is fine (the system's roots).
    Redis::cluster_builder(["rediss://127.0.0.1:1"])
        .build()
        .unwrap();
}

#[test]
#[cfg(not(any(feature = "aws-lc-rs", feature = "native-tls", feature = "rustls")))]
fn tls_without_a_tls_feature_names_the_features() {
    for b in [
        Redis::builder("rediss://127.0.0.1:1"),
        Redis::builder("redis://127.0.0.1:1").tls_root_cert(b"not checked yet".to_vec()),
    ] {
        let message = config_error(b);
        for feature in [
            "`tls-rustls-ring`",
            "`tls-rustls-aws-lc-rs`",
            "`tls-native-tls`",
        ] {
            assert!(message.contains(feature), "{message}");
        }
    }
    // A plain handle is fine.
    let server = RedisServer::start().unwrap();
    server.redis().ping().unwrap();
}
