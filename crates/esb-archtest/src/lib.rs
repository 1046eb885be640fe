//! Checks esb's architecture invariants (docs/ARCHITECTURE.md) from the outside: the tests in
//! `tests/invariants.rs` read `cargo tree` and the source files; this library has no code.
