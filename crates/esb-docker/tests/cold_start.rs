//! Cold-start figures for the FROM-scratch echo image under the injected esb-rie: median (and
//! min/max) of 20 starts, split into image inspect / create / start / ready / first invoke.
//! A measurement, so it is ignored by default:
//! `cargo test -p esb-docker --test cold_start -- --ignored --nocapture`

mod common;

use std::time::{Duration, Instant};

use common::{TestRun, engine, function, invoke};
use esb_docker::DockerRuntime;
use esb_model::RieSource;

const RUNS: usize = 20;

fn stats(name: &str, mut v: Vec<Duration>) -> String {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "{name:<13} median {:>7.1} ms   min {:>7.1} ms   max {:>7.1} ms",
        ms(v[v.len() / 2]),
        ms(v[0]),
        ms(v[v.len() - 1])
    )
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "a measurement; run with --ignored --nocapture"]
async fn cold_start_figures() {
    let Some(docker) = engine().await else { return };
    let run = TestRun::new(&docker);
    let image = run.echo_image().await;
    let version = docker.version().await.unwrap();
    println!(
        "cold start, FROM scratch echo + injected esb-rie, {RUNS} runs each, Docker {} (API {}):",
        version.version.unwrap_or_default(),
        version.api_version.unwrap_or_default()
    );
    let network = run.network().await;
    for (mode, net) in [
        ("RIE port published on 127.0.0.1", None),
        ("container IP on a bridge network (ICC off)", Some(network)),
    ] {
        let mut opts = run.options();
        opts.network = net;
        let rt = DockerRuntime::connect(opts).await.unwrap();
        let f = function("echo", &image, RieSource::Injected);
        let (mut inspect, mut create, mut start, mut ready, mut first, mut total) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for i in 0..RUNS {
            let t = Instant::now();
            let s = rt
                .start(&rt.spec(&f, i as u64, false).unwrap())
                .await
                .unwrap();
            let t_invoke = Instant::now();
            let res = invoke(s.addr, r#"{"n":1}"#).await;
            let first_invoke = t_invoke.elapsed();
            let whole = t.elapsed();
            assert_eq!(res.status, 200, "{}", res.text());
            inspect.push(s.timings.inspect_image);
            create.push(s.timings.create);
            start.push(s.timings.start);
            ready.push(s.timings.ready);
            first.push(first_invoke);
            total.push(whole);
            rt.stop(&s.container_id).await.unwrap();
        }
        println!(" {mode}:");
        for line in [
            stats("inspect image", inspect),
            stats("create", create),
            stats("start", start),
            stats("ready", ready),
            stats("first invoke", first),
            stats("total", total),
        ] {
            println!("  {line}");
        }
        assert!(rt.list_managed().await.unwrap().is_empty());
    }
}
