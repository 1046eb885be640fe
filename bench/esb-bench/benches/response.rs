//! Response benches: mapping Lambda proxy responses (REST v1, HTTP API v2), and the parser
//! comparison (serde_json vs sonic-rs vs simd-json) on ~200 B and ~16 KB responses.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use esb_bench::{response_16k, response_200b};
use esb_event::response::RawV1;

fn bench(c: &mut Criterion) {
    let small = response_200b();
    let large = response_16k();
    eprintln!("response sizes: {} B and {} B", small.len(), large.len());
    let v2_small = br#"{"statusCode":200,"headers":{"content-type":"application/json"},"cookies":["a=1; Path=/"],"body":"{\"ok\":true,\"id\":42}","isBase64Encoded":false}"#;

    c.bench_function("response/map_v1", |b| {
        b.iter(|| {
            esb_event::map_v1(black_box(&small), false)
                .unwrap()
                .body
                .len()
        })
    });
    c.bench_function("response/map_v1_16k", |b| {
        b.iter(|| {
            esb_event::map_v1(black_box(&large), false)
                .unwrap()
                .body
                .len()
        })
    });
    c.bench_function("response/map_v2", |b| {
        b.iter(|| {
            esb_event::map_v2(black_box(v2_small), false)
                .unwrap()
                .body
                .len()
        })
    });

    for (name, payload) in [("200b", &small), ("16k", &large)] {
        // All three must accept the payload, or the comparison measures error paths.
        assert!(serde_json::from_slice::<RawV1<'_>>(payload).is_ok());
        assert!(sonic_rs::from_slice::<RawV1<'_>>(payload).is_ok());
        assert!(simd_json::serde::from_slice::<RawV1<'_>>(&mut payload.to_vec()).is_ok());
        c.bench_function(&format!("response/parse_serde_json_{name}"), |b| {
            b.iter(|| serde_json::from_slice::<RawV1<'_>>(black_box(payload)).is_ok())
        });
        c.bench_function(&format!("response/parse_sonic_rs_{name}"), |b| {
            b.iter(|| sonic_rs::from_slice::<RawV1<'_>>(black_box(payload)).is_ok())
        });
        // simd-json parses in place, so each parse needs its own mutable copy (counted here).
        let mut buf = Vec::with_capacity(payload.len());
        c.bench_function(&format!("response/parse_simd_json_{name}"), |b| {
            b.iter(|| {
                buf.clear();
                buf.extend_from_slice(black_box(payload));
                simd_json::serde::from_slice::<RawV1<'_>>(&mut buf).is_ok()
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
