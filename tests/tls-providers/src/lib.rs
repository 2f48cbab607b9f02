//! TLS through each of pottery's TLS features, each built alone (the integration suite builds
//! every feature at once, where ring is the rustls provider): see `tests/tls.rs`.
