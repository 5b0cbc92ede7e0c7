//! Compile-time checks of diesel-facade's macros and typestate scopes:
//! `ui/pass` must compile (and run), `ui/fail` must fail with the recorded
//! diagnostics. Regenerate the `.stderr` files with
//! `TRYBUILD=overwrite cargo test -p diesel-facade-tests --test ui` and review
//! every change.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/*.rs");
    t.compile_fail("ui/fail/*.rs");
}
