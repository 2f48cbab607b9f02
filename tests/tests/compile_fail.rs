//! Misuse of pottery's macros is a compile error that says why and points at the user's code.
//! Each case under `tests/ui/` has its expected compiler output beside it (`.stderr`); run with
//! `TRYBUILD=overwrite` to regenerate them after a deliberate change, then read the diff.

#[test]
fn misuse_is_a_clear_compile_error() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*.rs");
}
