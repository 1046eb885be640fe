//! esb-docker against the real Docker engine: hardened cold starts of FROM-scratch images
//! (injected esb-rie and AWS's own RIE), failures during start, adoption, events, preloading,
//! shutdown. Skipped without an engine, failed under `ESB_REQUIRE_DOCKER=1`.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bollard::query_parameters::{
    InspectContainerOptions, KillContainerOptionsBuilder, RemoveImageOptionsBuilder,
    StopContainerOptionsBuilder,
};
use common::{TestRun, engine, function, invoke};
use esb_docker::{
    ContainerEvent, ContainerState, DockerError, DockerOptions, DockerRuntime, Fault, RemoveReason,
    reconcile,
};
use esb_model::RieSource;
use futures_util::{Stream, StreamExt};

/// The next event that is not a `Resync`, within a deadline.
async fn next_event(events: &mut (impl Stream<Item = ContainerEvent> + Unpin)) -> ContainerEvent {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(30), events.next())
            .await
            .expect("an event within 30 s")
            .expect("the stream never ends");
        if ev != ContainerEvent::Resync {
            return ev;
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn cold_start_is_hardened_and_answers_invocations() {
    let Some(docker) = engine().await else { return };
    let run = TestRun::new(&docker);
    let image = run.echo_image().await;
    let rt = run.runtime().await;
    let f = function("echo", &image, RieSource::Injected);
    let spec = rt.spec(&f, 3, false).unwrap();
    let started = rt.start(&spec).await.unwrap();
    assert!(started.addr.ip().is_loopback(), "{}", started.addr);

    let info = docker
        .inspect_container(&started.container_id, None::<InspectContainerOptions>)
        .await
        .unwrap();
    let h = info.host_config.clone().unwrap();
    assert_eq!(h.cap_drop, Some(vec!["ALL".to_owned()]));
    assert!(h.cap_add.unwrap_or_default().is_empty());
    assert_eq!(
        h.security_opt,
        Some(vec!["no-new-privileges:true".to_owned()])
    );
    assert_eq!(h.privileged, Some(false));
    assert_eq!(h.readonly_rootfs, Some(true));
    let tmpfs = h.tmpfs.unwrap();
    assert!(tmpfs["/tmp"].contains("size=512m"), "{tmpfs:?}");
    assert_eq!(h.memory, Some(128 << 20));
    assert_eq!(h.memory_swap, Some(128 << 20));
    assert_eq!(h.pids_limit, Some(1024));
    assert_eq!(h.nano_cpus, Some(1_000_000_000));
    assert_eq!(h.init, Some(true));
    let log = h.log_config.unwrap();
    assert_eq!(log.config.unwrap()["max-size"], "10m");
    // Published on loopback only, in the request and in what the engine actually bound.
    for binding in h.port_bindings.unwrap()["8080/tcp"].clone().unwrap() {
        assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
    }
    let ports = info.network_settings.unwrap().ports.unwrap();
    let bound = ports["8080/tcp"].clone().unwrap();
    assert!(!bound.is_empty());
    for b in &bound {
        assert_eq!(b.host_ip.as_deref(), Some("127.0.0.1"), "{bound:?}");
    }
    assert_eq!(ports.len(), 1, "{ports:?}");
    let cfg = info.config.unwrap();
    assert_eq!(cfg.user.as_deref(), Some("1000:1000"));
    let labels = cfg.labels.unwrap();
    assert_eq!(labels["esb.managed"], "true");
    assert_eq!(labels["esb.function"], "echo");
    assert_eq!(labels["esb.instance"], "3");
    assert_eq!(labels["esb.owner"], run.id);
    assert_eq!(labels["esb.config-hash"], rt.config_hash(&f).unwrap());
    assert_eq!(info.path.as_deref(), Some("/var/rapid/esb-rie"));
    let args = info.args.unwrap();
    assert!(
        args.ends_with(&["--".to_owned(), "/var/task/bootstrap".to_owned()]),
        "{args:?}"
    );
    let env = cfg.env.unwrap();
    assert!(
        env.contains(&"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128".to_owned()),
        "{env:?}"
    );
    assert!(env.contains(&"GREETING=hello".to_owned()));

    let res = invoke(started.addr, r#"{"hello":"docker"}"#).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let body: serde_json::Value = serde_json::from_slice(&res.body).unwrap();
    let inner: serde_json::Value = serde_json::from_str(body["body"].as_str().unwrap()).unwrap();
    assert_eq!(inner["event"], serde_json::json!({"hello": "docker"}));
    assert_eq!(inner["context"]["function_name"], "echo");
    assert_eq!(inner["context"]["memory"], 128);

    rt.stop(&started.container_id).await.unwrap();
    // Gone, and stopping again is not an error (removed behind esb's back looks the same).
    rt.stop(&started.container_id).await.unwrap();
    assert!(rt.list_managed().await.unwrap().is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn on_a_network_the_container_is_reached_by_its_ip_and_nothing_is_published() {
    let Some(docker) = engine().await else { return };
    let run = TestRun::new(&docker);
    let image = run.echo_image().await;
    let network = run.network().await;
    let mut opts = run.options();
    opts.network = Some(network.clone());
    let rt = DockerRuntime::connect(opts).await.unwrap();
    let f = function("echo", &image, RieSource::Injected);
    let started = rt.start(&rt.spec(&f, 1, false).unwrap()).await.unwrap();
    assert_eq!(started.addr.port(), 8080);
    assert!(!started.addr.ip().is_loopback(), "{}", started.addr);

    let info = docker
        .inspect_container(&started.container_id, None::<InspectContainerOptions>)
        .await
        .unwrap();
    assert_eq!(
        info.host_config.unwrap().network_mode.as_deref(),
        Some(network.as_str())
    );
    let ns = info.network_settings.unwrap();
    let published: Vec<_> = ns
        .ports
        .unwrap_or_default()
        .into_values()
        .flatten()
        .flatten()
        .collect();
    assert!(published.is_empty(), "{published:?}");
    let ip = ns.networks.unwrap()[&network].ip_address.clone().unwrap();
    assert_eq!(started.addr.ip().to_string(), ip);

    let res = invoke(started.addr, r#"{"over":"network"}"#).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let listed = rt.list_managed().await.unwrap();
    assert_eq!(
        listed[0].addr,
        Some(started.addr),
        "the listing finds the same address"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn image_rie_runs_the_images_own_aws_rie() {
    let Some(docker) = engine().await else { return };
    let run = TestRun::new(&docker);
    let image = run.aws_rie_image().await;
    let mut opts = run.options();
    // The image's own RIE needs no injected binary.
    opts.rie_binary = None;
    let rt = DockerRuntime::connect(opts).await.unwrap();
    let f = function("awsecho", &image, RieSource::Image);
    let started = rt.start(&rt.spec(&f, 1, false).unwrap()).await.unwrap();

    let info = docker
        .inspect_container(&started.container_id, None::<InspectContainerOptions>)
        .await
        .unwrap();
    assert_eq!(
        info.config.unwrap().entrypoint,
        Some(vec!["/usr/local/bin/aws-lambda-rie".to_owned()])
    );
    assert!(
        info.mounts
            .unwrap_or_default()
            .iter()
            .all(|m| m.destination.as_deref() != Some("/var/rapid/esb-rie"))
    );

    let res = invoke(started.addr, r#"{"via":"aws-rie"}"#).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(res.text().contains("aws-rie"), "{}", res.text());
    assert!(
        res.text().contains("awsecho"),
        "function name from the env: {}",
        res.text()
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_missing_image_fails_fast_naming_the_image() {
    let Some(docker) = engine().await else { return };
    let run = TestRun::new(&docker);
    let rt = run.runtime().await;
    let image = run.tag("never-built");
    let f = function("ghost", &image, RieSource::Injected);
    let t = std::time::Instant::now();
    let err = rt.start(&rt.spec(&f, 1, false).unwrap()).await.unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(matches!(err, DockerError::ImageMissing { .. }), "{err:?}");
    assert!(err.to_string().contains(&image), "{err}");
    assert_eq!(err.fault(), Fault::User);
    assert!(!err.retryable());
    assert!(rt.list_managed().await.unwrap().is_empty());
    let missing = rt.check_images(&[f]).await;
    assert_eq!(missing.len(), 1);
    assert!(missing[0].1.to_string().contains(&image));
}

#[tokio::test(flavor = "current_thread")]
async fn a_container_that_exits_during_start_is_removed_and_reported_with_its_output() {
    let Some(docker) = engine().await else { return };
    let run = TestRun::new(&docker);
    let (_, echo) = common::static_bins();
    // The echo runtime run directly, without an RIE, exits at once: no AWS_LAMBDA_RUNTIME_API.
    let image = run
        .import_image(
            "norie",
            &[("/var/task/bootstrap", echo)],
            &["/var/task/bootstrap"],
            &[],
        )
        .await;
    let rt = run.runtime().await;
    let f = function("broken", &image, RieSource::Image);
    let err = rt.start(&rt.spec(&f, 1, false).unwrap()).await.unwrap_err();
    let DockerError::ExitedDuringStart {
        exit_code, logs, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_ne!(*exit_code, Some(0), "{err}");
    assert!(
        logs.contains("AWS_LAMBDA_RUNTIME_API"),
        "the runtime's complaint: {logs}"
    );
    assert_eq!(err.fault(), Fault::Function);
    assert!(rt.list_managed().await.unwrap().is_empty(), "removed");
}

#[tokio::test(flavor = "current_thread")]
async fn a_container_whose_rie_never_answers_is_removed_at_the_deadline() {
    let Some(docker) = engine().await else { return };
    let run = TestRun::new(&docker);
    let (rie, echo) = common::static_bins();
    // An RIE listening on the wrong port: running, but nothing answers on 8080.
    let image = run
        .import_image(
            "wrongport",
            &[("/var/task/bootstrap", echo), ("/rie", rie)],
            &[
                "/rie",
                "--runtime-interface-emulator-address",
                "0.0.0.0:9999",
            ],
            &["/var/task/bootstrap"],
        )
        .await;
    let mut opts = run.options();
    opts.ready_timeout = Duration::from_millis(1500);
    let rt = DockerRuntime::connect(opts).await.unwrap();
    let f = function("silent", &image, RieSource::Image);
    let t = std::time::Instant::now();
    let err = rt.start(&rt.spec(&f, 1, false).unwrap()).await.unwrap_err();
    assert!(matches!(err, DockerError::NotReady { .. }), "{err:?}");
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    assert!(
        err.to_string().contains("9999"),
        "its output says where it listens: {err}"
    );
    assert!(rt.list_managed().await.unwrap().is_empty(), "removed");
}

#[tokio::test(flavor = "current_thread")]
async fn adoption_keeps_current_containers_and_removes_stale_stopped_unknown_ones() {
    let Some(docker) = engine().await else { return };
    let run = TestRun::new(&docker);
    let foreign = TestRun::new(&docker);
    let image = run.echo_image().await;
    let before = run.runtime().await;

    let echo = function("echo", &image, RieSource::Injected);
    let mut old_echo = echo.clone();
    old_echo.memory_size = 256;
    let retired = function("retired", &image, RieSource::Injected);

    let current = before
        .start(&before.spec(&echo, 1, false).unwrap())
        .await
        .unwrap();
    let stopped = before
        .start(&before.spec(&echo, 2, false).unwrap())
        .await
        .unwrap();
    let stale = before
        .start(&before.spec(&old_echo, 3, false).unwrap())
        .await
        .unwrap();
    let unknown = before
        .start(&before.spec(&retired, 4, false).unwrap())
        .await
        .unwrap();
    docker
        .stop_container(
            &stopped.container_id,
            Some(StopContainerOptionsBuilder::default().t(0).build()),
        )
        .await
        .unwrap();
    // Another esb's container of the same function and config: never touched.
    let other = DockerRuntime::connect(foreign.options()).await.unwrap();
    let theirs = other
        .start(&other.spec(&echo, 1, false).unwrap())
        .await
        .unwrap();

    // "Restart": a new runtime with the same owner adopts.
    drop(before);
    let after = run.runtime().await;
    let report = after.adopt(std::slice::from_ref(&echo)).await.unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.adopted.len(), 1, "{report:?}");
    let a = &report.adopted[0];
    assert_eq!(a.container_id, current.container_id);
    assert_eq!(a.addr, current.addr);
    assert_eq!((a.function.as_str(), a.instance), ("echo", 1));
    let removed: HashMap<String, RemoveReason> = report
        .removed
        .iter()
        .map(|(c, r)| (c.id.clone(), r.clone()))
        .collect();
    assert_eq!(removed.len(), 3, "{removed:?}");
    assert_eq!(
        removed[&stopped.container_id],
        RemoveReason::NotRunning(ContainerState::Exited)
    );
    assert_eq!(removed[&stale.container_id], RemoveReason::StaleConfig);
    assert_eq!(
        removed[&unknown.container_id],
        RemoveReason::UnknownFunction
    );

    let left = after.list_managed().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, current.container_id);
    let res = invoke(a.addr, r#"{"adopted":true}"#).await;
    assert_eq!(
        res.status,
        200,
        "the adopted container serves: {}",
        res.text()
    );

    let theirs_now = other.list_managed().await.unwrap();
    assert_eq!(theirs_now.len(), 1);
    assert_eq!(theirs_now[0].id, theirs.container_id);
    assert_eq!(theirs_now[0].state, ContainerState::Running);
}

#[tokio::test(flavor = "current_thread")]
async fn adoption_removes_containers_of_a_retagged_image() {
    let Some(docker) = engine().await else { return };
    let run = TestRun::new(&docker);
    let image = run.echo_image().await;
    let rt = run.runtime().await;
    let f = function("echo", &image, RieSource::Injected);
    let old = rt.start(&rt.spec(&f, 1, false).unwrap()).await.unwrap();
    // Same tag, new image content (an extra file): the config hash matches, the image does not.
    let (rie, echo) = common::static_bins();
    let retagged = run
        .import_image(
            "echo",
            &[("/var/task/bootstrap", echo), ("/extra", rie)],
            &[],
            &["/var/task/bootstrap"],
        )
        .await;
    assert_eq!(retagged, image);
    let report = rt.adopt(&[f]).await.unwrap();
    assert!(report.adopted.is_empty(), "{report:?}");
    assert_eq!(report.removed.len(), 1);
    assert_eq!(report.removed[0].0.id, old.container_id);
    assert_eq!(report.removed[0].1, RemoveReason::StaleImage);
}

#[tokio::test(flavor = "current_thread")]
async fn kills_ooms_and_removals_behind_esbs_back_are_noticed() {
    let Some(docker) = engine().await else { return };
    let run = TestRun::new(&docker);
    let image = run.echo_image().await;
    let rt = run.runtime().await;
    let mut events = Box::pin(rt.events());
    let first = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .unwrap();
    assert_eq!(first, Some(ContainerEvent::Resync), "re-list first");

    let f = function("echo", &image, RieSource::Injected);
    let a = rt.start(&rt.spec(&f, 1, false).unwrap()).await.unwrap();
    match next_event(&mut events).await {
        ContainerEvent::Started(c) => {
            assert_eq!(c.id, a.container_id);
            assert_eq!(c.function.as_ref().map(|f| f.as_str()), Some("echo"));
            assert_eq!(c.instance, Some(1));
            assert_eq!(c.config_hash, rt.config_hash(&f));
        }
        other => panic!("{other:?}"),
    }

    // docker kill: a Died event with SIGKILL's status, and wait_exit resolves.
    let waiter = {
        let (rt, id) = (rt.clone(), a.container_id.clone());
        tokio::spawn(async move { rt.wait_exit(&id).await })
    };
    docker
        .kill_container(
            &a.container_id,
            Some(
                KillContainerOptionsBuilder::default()
                    .signal("KILL")
                    .build(),
            ),
        )
        .await
        .unwrap();
    match next_event(&mut events).await {
        ContainerEvent::Died {
            container,
            exit_code,
            oom_killed,
        } => {
            assert_eq!(container.id, a.container_id);
            assert_eq!(exit_code, Some(137));
            assert!(!oom_killed);
        }
        other => panic!("{other:?}"),
    }
    let exit = tokio::time::timeout(Duration::from_secs(30), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit.exit_code, Some(137), "{exit}");

    // The periodic re-list sees it too (the safety net when events are lost).
    let known = HashSet::from([a.container_id.clone()]);
    let expected = HashMap::from([("echo".to_owned(), rt.config_hash(&f).unwrap())]);
    let d = reconcile::diff(&known, &rt.list_managed().await.unwrap(), &expected);
    assert_eq!(d.lost, vec![a.container_id.clone()]);

    // Removed behind esb's back.
    docker
        .remove_container(
            &a.container_id,
            None::<bollard::query_parameters::RemoveContainerOptions>,
        )
        .await
        .unwrap();
    match next_event(&mut events).await {
        ContainerEvent::Destroyed(c) => assert_eq!(c.id, a.container_id),
        other => panic!("{other:?}"),
    }

    // A function that allocates past its 128 MB: the kernel kills the runtime, esb hears "oom".
    let b = rt.start(&rt.spec(&f, 2, false).unwrap()).await.unwrap();
    assert!(matches!(
        next_event(&mut events).await,
        ContainerEvent::Started(_)
    ));
    let res = invoke(b.addr, r#"{"big":400000000}"#).await;
    assert_ne!(res.status, 200, "{}", res.text());
    match next_event(&mut events).await {
        ContainerEvent::OomKilled(c) => assert_eq!(c.id, b.container_id),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn preload_loads_saved_archives_and_reports_bad_ones() {
    let Some(docker) = engine().await else { return };
    let run = TestRun::new(&docker);
    let image = run.echo_image().await;
    let dir = tempfile::tempdir().unwrap();
    // `docker save` through the API.
    let mut tar = Vec::new();
    let mut saved = docker.export_image(&image);
    while let Some(chunk) = saved.next().await {
        tar.extend_from_slice(&chunk.unwrap());
    }
    std::fs::write(dir.path().join("a-echo.tar"), &tar).unwrap();
    std::fs::write(dir.path().join("b-broken.tar"), b"not a tar at all").unwrap();
    std::fs::write(dir.path().join("README.txt"), b"ignored").unwrap();
    docker
        .remove_image(
            &image,
            Some(RemoveImageOptionsBuilder::default().force(true).build()),
            None,
        )
        .await
        .unwrap();

    let rt = run.runtime().await;
    let f = function("echo", &image, RieSource::Injected);
    assert!(matches!(
        rt.start(&rt.spec(&f, 1, false).unwrap()).await,
        Err(DockerError::ImageMissing { .. })
    ));
    let report = rt.preload(dir.path()).await.unwrap();
    assert_eq!(report.loaded.len(), 1, "{report:?}");
    assert_eq!(report.loaded[0].images, vec![image.clone()]);
    assert_eq!(report.loaded[0].bytes, tar.len() as u64);
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(report.failed[0].0.ends_with("b-broken.tar"));
    let started = rt.start(&rt.spec(&f, 1, false).unwrap()).await.unwrap();
    let res = invoke(started.addr, "{}").await;
    assert_eq!(res.status, 200, "{}", res.text());
}

#[tokio::test(flavor = "current_thread")]
async fn shutdown_removes_only_this_owners_containers_unless_told_to_keep_them() {
    let Some(docker) = engine().await else { return };
    let run = TestRun::new(&docker);
    let foreign = TestRun::new(&docker);
    let image = run.echo_image().await;
    let f = function("echo", &image, RieSource::Injected);

    let mut keep = run.options();
    keep.keep_on_shutdown = true;
    let rt = DockerRuntime::connect(keep).await.unwrap();
    rt.start(&rt.spec(&f, 1, false).unwrap()).await.unwrap();
    let other = DockerRuntime::connect(foreign.options()).await.unwrap();
    other
        .start(&other.spec(&f, 1, false).unwrap())
        .await
        .unwrap();

    assert_eq!(rt.shutdown().await.unwrap(), 0);
    assert_eq!(
        rt.list_managed().await.unwrap().len(),
        1,
        "kept for adoption"
    );

    let rt = run.runtime().await;
    assert_eq!(rt.shutdown().await.unwrap(), 1);
    assert!(rt.list_managed().await.unwrap().is_empty());
    assert_eq!(
        other.list_managed().await.unwrap().len(),
        1,
        "foreign untouched"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn an_unreachable_engine_fails_fast_with_a_clear_error() {
    // No engine needed: these engines do not exist.
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("docker.sock");
    let opts = DockerOptions {
        host: format!("unix://{}", missing.display()),
        ..Default::default()
    };
    let t = std::time::Instant::now();
    let err = DockerRuntime::connect(opts).await.unwrap_err();
    assert!(matches!(err, DockerError::Unavailable { .. }), "{err:?}");
    assert!(err.to_string().contains("docker.sock"), "{err}");
    assert_eq!(err.fault(), Fault::Daemon);
    assert!(err.retryable());

    // A socket file nobody listens on (a daemon that died): connection refused, at once.
    let dead = dir.path().join("dead.sock");
    drop(std::os::unix::net::UnixListener::bind(&dead).unwrap());
    let opts = DockerOptions {
        host: format!("unix://{}", dead.display()),
        ..Default::default()
    };
    let err = DockerRuntime::connect(opts).await.unwrap_err();
    assert!(matches!(err, DockerError::Unavailable { .. }), "{err:?}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[tokio::test(flavor = "current_thread")]
async fn a_hung_engine_times_out_instead_of_hanging() {
    // No engine needed: a socket that accepts and then never answers (a SIGSTOPped daemon).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hung.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let opts = DockerOptions {
        host: format!("unix://{}", path.display()),
        // Sub-second deadlines are rounded up to bollard's whole seconds, never down to zero.
        api_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let t = std::time::Instant::now();
    let err = DockerRuntime::connect(opts).await.unwrap_err();
    let took = t.elapsed();
    assert!(matches!(err, DockerError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains("within 1s"), "{err}");
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(err.fault(), Fault::Daemon);
    assert!(err.retryable());
    holder.abort();
}

#[tokio::test(flavor = "current_thread")]
async fn an_owned_container_is_removed_when_dropped_stopped_gracefully_or_detached() {
    let Some(docker) = engine().await else { return };
    let run = TestRun::new(&docker);
    let image = run.echo_image().await;
    let rt = run.runtime().await;
    let mut events = Box::pin(rt.events());
    let f = function("echo", &image, RieSource::Injected);

    // Dropped: removed at once (the control loop's "dropping an instance kills it").
    let c = rt
        .start_owned(&rt.spec(&f, 1, false).unwrap())
        .await
        .unwrap();
    assert!(c.health().await);
    let id = c.id().to_owned();
    drop(c);
    loop {
        match next_event(&mut events).await {
            ContainerEvent::Destroyed(d) if d.id == id => break,
            ContainerEvent::Started(_) | ContainerEvent::Died { .. } => {}
            other => panic!("{other:?}"),
        }
    }

    // Stopped with a grace period: SIGTERM reaches the RIE through init, then it is removed.
    let c = rt
        .start_owned(&rt.spec(&f, 2, false).unwrap())
        .await
        .unwrap();
    let t = std::time::Instant::now();
    c.stop(Duration::from_secs(5)).await.unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "exited on SIGTERM: {:?}",
        t.elapsed()
    );
    assert!(rt.list_managed().await.unwrap().is_empty());

    // Detached: keeps running without a handle.
    let c = rt
        .start_owned(&rt.spec(&f, 3, false).unwrap())
        .await
        .unwrap();
    let s = c.detach();
    let listed = rt.list_managed().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, s.container_id);
    assert_eq!(listed[0].state, ContainerState::Running);
    assert!(esb_docker::probe(s.addr, Duration::from_secs(2)).await);
}

#[tokio::test(flavor = "current_thread")]
async fn containers_started_behind_esbs_back_are_trusted_only_with_the_current_hash() {
    let Some(docker) = engine().await else { return };
    let run = TestRun::new(&docker);
    let image = run.echo_image().await;
    let rt = run.runtime().await;
    let f = function("echo", &image, RieSource::Injected);
    let defaults = rt.image_defaults(&image).await.unwrap();
    // Someone with socket access creates containers carrying esb's labels, one with a forged hash.
    let mut ids = Vec::new();
    for (instance, hash) in [
        (1, "forged0000000000".to_owned()),
        (2, rt.config_hash(&f).unwrap()),
    ] {
        let mut spec = rt.spec(&f, instance, false).unwrap();
        spec.config_hash = hash;
        let body = esb_docker::spec::create_body(&spec, &defaults, rt.options()).unwrap();
        let id = docker
            .create_container(
                None::<bollard::query_parameters::CreateContainerOptions>,
                body,
            )
            .await
            .unwrap()
            .id;
        docker
            .start_container(
                &id,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
            .unwrap();
        ids.push(id);
    }
    let expected = HashMap::from([("echo".to_owned(), rt.config_hash(&f).unwrap())]);
    let d = reconcile::diff(
        &HashSet::new(),
        &rt.list_managed().await.unwrap(),
        &expected,
    );
    assert_eq!(
        d.remove.iter().map(|c| &c.id).collect::<Vec<_>>(),
        vec![&ids[0]]
    );
    assert_eq!(
        d.adoptable.iter().map(|c| &c.id).collect::<Vec<_>>(),
        vec![&ids[1]]
    );
    assert!(d.lost.is_empty());
}
