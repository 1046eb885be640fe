//! Benchmark harness comparing esb-rie with AWS's RIE (filled in below).
fn main() {}
