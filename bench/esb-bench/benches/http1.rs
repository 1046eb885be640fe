//! Benches for esb-http1, the per-request HTTP/1.1 codec: a browser-like request head, a 16 KiB
//! chunked body, and a response head.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use esb_http1::{
    ChunkedDecoder, Connection, EMPTY_HEADER, Limits, parse_request_head, write_response_head,
};

/// ~600 bytes, 12 header fields: what a browser sends to an API behind esb.
const TYPICAL: &[u8] = b"GET /api/v1/orders/8e3c1f2a-42?include=items&limit=20 HTTP/1.1\r\n\
Host: api.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: application/json, text/plain, */*\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://app.example.com/orders\r\n\
Origin: https://app.example.com\r\n\
Authorization: Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLTEiLCJleHAiOjE4OTM0NTYwMDB9.c2lnbmF0dXJl\r\n\
Cookie: session=4f8a9c2d1e; theme=dark\r\n\
Sec-Fetch-Mode: cors\r\n\
Sec-Fetch-Site: same-site\r\n\
Connection: keep-alive\r\n\r\n";

fn chunked_16k() -> Vec<u8> {
    let data = vec![b'x'; 16 * 1024];
    let mut wire = Vec::new();
    for piece in data.chunks(4096) {
        wire.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        wire.extend_from_slice(piece);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    wire
}

fn http1(c: &mut Criterion) {
    let mut g = c.benchmark_group("http1");
    let limits = Limits::default();

    assert!(
        (550..=650).contains(&TYPICAL.len()),
        "keep the typical head at ~600 bytes"
    );
    g.throughput(Throughput::Bytes(TYPICAL.len() as u64));
    g.bench_function("parse_head_typical", |b| {
        b.iter(|| {
            let mut scratch = [EMPTY_HEADER; 100];
            let head = parse_request_head(black_box(TYPICAL), &limits, &mut scratch)
                .unwrap()
                .unwrap();
            assert_eq!(head.headers.len(), 12);
            black_box(head.head_len)
        })
    });

    let wire = chunked_16k();
    let mut out = Vec::with_capacity(16 * 1024);
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function("chunked_decode_16k", |b| {
        b.iter(|| {
            out.clear();
            let mut d = ChunkedDecoder::new();
            let r = d.decode(black_box(&wire), &mut out, 6 << 20).unwrap();
            assert!(r.done);
            black_box(out.len())
        })
    });

    let headers: [(&str, &[u8]); 3] = [
        ("content-type", b"application/json"),
        ("x-amzn-requestid", b"3f2a1c9e-6b7d-4e8f-9a0b-1c2d3e4f5a6b"),
        ("set-cookie", b"a=1; Path=/; HttpOnly"),
    ];
    let mut out = Vec::with_capacity(512);
    g.throughput(Throughput::Elements(1));
    g.bench_function("write_response_head", |b| {
        b.iter(|| {
            out.clear();
            write_response_head(
                &mut out,
                200,
                None,
                black_box(headers),
                1234,
                Connection::KeepAlive,
            )
            .unwrap();
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, http1);
criterion_main!(benches);
