//! pottery under another name: see `tests/renamed.rs`.
