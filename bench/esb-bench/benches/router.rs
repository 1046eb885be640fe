//! Router benches: split the request target and route it over a realistic table.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use esb_router::{Method, RouteDef, RouteTable};

fn table() -> RouteTable<u32> {
    let routes = [
        ("GET", "/"),
        ("ANY", "/echo/{proxy+}"),
        ("ANY", "/v2/echo/{proxy+}"),
        ("GET", "/public/echo"),
        ("GET", "/users"),
        ("POST", "/users"),
        ("GET", "/users/{id}"),
        ("PUT", "/users/{id}"),
        ("DELETE", "/users/{id}"),
        ("GET", "/users/{id}/orders"),
        ("GET", "/users/{id}/orders/{orderId}"),
        ("GET", "/orders/special"),
        ("GET", "/orders/{id}"),
        ("POST", "/orders"),
        ("GET", "/health"),
        ("ANY", "/files/{proxy+}"),
        ("GET", "/items/{id}/sub"),
        ("ANY", "/{proxy+}"),
    ];
    RouteTable::new(routes.iter().enumerate().map(|(i, (m, t))| RouteDef {
        method: Method::parse(m).unwrap(),
        template: t.to_string(),
        value: i as u32,
    }))
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let t = table();
    let targets = [
        ("GET", "/users/42/orders/7?expand=items"),
        ("POST", "/echo/a/b/c"),
        ("GET", "/orders/special"),
        ("DELETE", "/users/abc"),
        ("GET", "/unknown/path/here?x=1"),
    ];
    c.bench_function("router/parse_and_route", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for (method, target) in targets {
                let path = black_box(target).split_once('?').map_or(target, |(p, _)| p);
                if let Ok(m) = t.route(black_box(method), path) {
                    n += *m.value as usize + m.params.len();
                }
            }
            n
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
