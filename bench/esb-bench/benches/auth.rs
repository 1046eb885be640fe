//! Auth benches: token verification (HS256, RS256) and the per-core cache hit.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use esb_auth::{TokenCache, TokenService, TokenSettings, UserClaims};

const NOW: u64 = 1_700_000_000;

fn user() -> UserClaims<'static> {
    UserClaims {
        username: "demo",
        email: Some("demo@example.com"),
        groups: &[],
    }
}

fn settings() -> TokenSettings {
    TokenSettings::new(
        "https://cognito-idp.ap-northeast-1.amazonaws.com/ap-northeast-1_esb",
        "esb-client",
    )
}

fn bench(c: &mut Criterion) {
    let hs = TokenService::hs256(b"0123456789abcdef0123456789abcdef", settings()).unwrap();
    let hs_token = format!(
        "Bearer {}",
        hs.issue(&user(), NOW, NOW, None).unwrap().id_token
    );
    c.bench_function("auth/verify_hs256", |b| {
        b.iter(|| hs.verify(black_box(&hs_token), NOW).unwrap())
    });

    let pem = esb_auth::generate_rsa_pem().unwrap();
    let rs = TokenService::rs256_from_pem(pem.as_bytes(), settings()).unwrap();
    let rs_token = format!(
        "Bearer {}",
        rs.issue(&user(), NOW, NOW, None).unwrap().id_token
    );
    c.bench_function("auth/verify_rs256", |b| {
        b.iter(|| rs.verify(black_box(&rs_token), NOW).unwrap())
    });

    let mut cache = TokenCache::new(4096);
    cache.verify(&rs, &rs_token, NOW).unwrap();
    c.bench_function("auth/verify_rs256_cached", |b| {
        b.iter(|| cache.verify(&rs, black_box(&rs_token), NOW).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
