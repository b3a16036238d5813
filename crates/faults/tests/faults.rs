//! The fault-injection suite (issue 6, docs/reliability.md): each test starts its own
//! PostgreSQL cluster and RabbitMQ node, runs the real binaries as OS processes, submits
//! jobs with known ids, injects one fault, lets the system settle and counts the ledger.
//! Run with `make test-faults`.

#![expect(clippy::unwrap_used, reason = "tests")]

use std::time::{Duration, Instant};

use enconvert_faults::{Faults, Ledger, Options};

const SETTLE: Duration = Duration::from_secs(300);

async fn attempts(f: &Faults) -> Vec<(String, i32)> {
    use diesel::{ExpressionMethods, QueryDsl};
    use diesel_async::RunQueryDsl;
    use enconvert_db::schema::jobs;
    let mut conn = f.db.conn().await.unwrap();
    let rows: Vec<(Option<String>, i32)> = jobs::table
        .filter(jobs::project_id.eq(f.project_id))
        .select((jobs::client_job_id, jobs::attempts))
        .load(&mut conn)
        .await
        .unwrap();
    rows.into_iter()
        .map(|(id, a)| (id.unwrap_or_default(), a))
        .collect()
}

/// Case 1: a worker killed with SIGKILL (with its Chromium) mid-render; the job is taken
/// again once its lease runs out and finishes exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn f01_worker_sigkilled_mid_render_finishes_once() {
    let mut f = Faults::start(Options {
        render_timeout_secs: 15,
        ..Options::default()
    })
    .await;
    let slow = f.page("/slow", Duration::from_secs(6));
    let fast = f.page("/fast", Duration::ZERO);
    let mut ledger = Ledger::new("f01");
    for i in 0..6 {
        let url = if i % 2 == 0 { &slow } else { &fast };
        assert_eq!(f.submit(&mut ledger, url).await, 202);
    }
    f.wait_rendering(1, Duration::from_secs(120)).await;
    let mut worker = f.workers.remove(0);
    worker.kill_group();
    assert!(!worker.alive());
    f.start_worker(&[]).await;

    let figures = f.settle("f01 worker SIGKILL", &ledger, SETTLE).await;
    f.assert_clean(&figures);
    assert_eq!(figures.succeeded, 6);
    let retried = attempts(&f).await.iter().filter(|(_, a)| *a > 1).count();
    assert!(retried >= 1, "no job was interrupted by the kill");
}

/// Case 17: SIGTERM with jobs in flight: they finish (or are given back), nothing is lost,
/// and the worker exits within its grace period (render timeout + 5 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn f17_sigterm_with_jobs_in_flight_loses_nothing() {
    let render_timeout = 15;
    let mut f = Faults::start(Options {
        render_timeout_secs: render_timeout,
        ..Options::default()
    })
    .await;
    let slow = f.page("/slow", Duration::from_secs(4));
    let mut ledger = Ledger::new("f17");
    for _ in 0..6 {
        assert_eq!(f.submit(&mut ledger, &slow).await, 202);
    }
    f.wait_rendering(2, Duration::from_secs(120)).await;
    let mut worker = f.workers.remove(0);
    let before: Vec<String> = f
        .job_states()
        .await
        .into_iter()
        .filter(|(_, s)| s == "rendering")
        .map(|(id, _)| id)
        .collect();
    let signalled = Instant::now();
    worker.signal("TERM");
    // Grace is render timeout + 5 s; a generous margin for process start-up noise.
    let status = worker
        .wait_exit(Duration::from_secs(render_timeout + 5 + 30))
        .await;
    let took = signalled.elapsed();
    let status = status.unwrap_or_else(|| panic!("the worker ignored SIGTERM: {:?}", took));
    assert!(status.success(), "the worker exited with {status}");
    println!(
        "f17: worker exited {:.1} s after SIGTERM",
        took.as_secs_f64()
    );
    let states = f.job_states().await;
    for id in &before {
        let s = &states[id];
        assert!(
            s == "success" || s == "queued",
            "{id} was in flight at SIGTERM and is now {s} (neither finished nor given back)"
        );
    }
    assert!(
        before.iter().any(|id| states[id] == "success"),
        "no job in flight finished during the drain"
    );
    f.start_worker(&[]).await;
    let figures = f.settle("f17 worker SIGTERM", &ledger, SETTLE).await;
    f.assert_clean(&figures);
    assert_eq!(figures.succeeded, 6);
}

/// Case 6: PostgreSQL stopped: submits answer `503` with `Retry-After` promptly and nothing
/// is accepted; once it is back, the same processes (none restarted) accept and finish work.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn f06_postgres_down_answers_503_and_recovers_without_restarts() {
    let mut f = Faults::start(Options::default()).await;
    let page = f.page("/p", Duration::ZERO);
    let mut ledger = Ledger::new("f06");
    for _ in 0..2 {
        assert_eq!(f.submit(&mut ledger, &page).await, 202);
    }
    f.settle("f06 before the outage", &ledger, SETTLE).await;
    f.pg.stop();
    for _ in 0..3 {
        let s = f.submit_full(&mut ledger, &page).await;
        println!(
            "f06: submit during the outage: {} in {:?}",
            s.status, s.took
        );
        assert_eq!(
            s.status, 503,
            "a submit during the outage answered {}",
            s.status
        );
        assert!(s.retry_after.is_some(), "503 without Retry-After");
        // The pool waits at most 5 s for a connection; an answer within 60 s is no hang.
        assert!(
            s.took < Duration::from_secs(60),
            "a submit hung for {:?}",
            s.took
        );
    }
    assert_eq!(
        f.rabbit.depth("render.batch"),
        0,
        "a refused submit was published"
    );
    f.pg.resume();
    // No process is restarted: their pools reconnect by themselves.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut after = 0;
    while after < 3 {
        let s = f.submit_full(&mut ledger, &page).await;
        if s.status == 202 {
            after += 1;
        } else {
            assert_eq!(
                s.status, 503,
                "after the outage a submit answered {}",
                s.status
            );
            assert!(
                Instant::now() < deadline,
                "still 503 a minute after PostgreSQL came back"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let figures = f.settle("f06 PostgreSQL stopped", &ledger, SETTLE).await;
    f.assert_clean(&figures);
    assert_eq!(figures.succeeded, 5);
    f.assert_all_alive();
}

/// Case 4: RabbitMQ stopped and started again under load: submits go on being accepted
/// (into the outbox), nothing is lost, every process reconnects by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn f04_rabbitmq_restart_under_load_loses_nothing() {
    let mut f = Faults::start(Options::default()).await;
    let slow = f.page("/slow", Duration::from_secs(2));
    let fast = f.page("/fast", Duration::ZERO);
    let mut ledger = Ledger::new("f04");
    for i in 0..10 {
        let url = if i % 2 == 0 { &slow } else { &fast };
        assert_eq!(f.submit(&mut ledger, url).await, 202);
    }
    f.wait_rendering(1, Duration::from_secs(120)).await;
    f.rabbit.stop();
    for i in 0..4 {
        let url = if i % 2 == 0 { &slow } else { &fast };
        let s = f.submit_full(&mut ledger, url).await;
        assert_eq!(
            s.status, 202,
            "a submit while RabbitMQ is down answered {}",
            s.status
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    f.rabbit.resume();
    let figures = f.settle("f04 RabbitMQ restart", &ledger, SETTLE).await;
    f.assert_clean(&figures);
    assert_eq!(figures.succeeded, 14);
    f.assert_all_alive();
}

/// Case 18: RabbitMQ blocks publishers (a memory alarm): the api goes on answering at once,
/// accepting into the outbox; the jobs wait; once the alarm clears they all finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn f18_resource_alarm_keeps_the_api_answering() {
    let mut f = Faults::start(Options::default()).await;
    let page = f.page("/p", Duration::ZERO);
    let mut ledger = Ledger::new("f18");
    let out = f.rabbit.ctl(&["set_vm_memory_high_watermark", "0"]);
    assert!(out.status.success(), "{out:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let s = f.submit_full(&mut ledger, &page).await;
        assert_eq!(
            s.status, 202,
            "a submit under the alarm answered {}",
            s.status
        );
        slowest = slowest.max(s.took);
    }
    println!("f18: slowest submit under the alarm: {slowest:?}");
    assert!(
        slowest < Duration::from_secs(30),
        "the api stalled for {slowest:?}"
    );
    let health = f
        .http
        .get(format!("{}/healthz", f.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // The alarm is real: nothing went through while it lasted.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let states = f.job_states().await;
    assert!(
        states.values().all(|s| s == "queued"),
        "jobs moved although publishing was blocked: {states:?}"
    );
    let out = f.rabbit.ctl(&["set_vm_memory_high_watermark", "0.4"]);
    assert!(out.status.success(), "{out:?}");
    let figures = f.settle("f18 resource alarm", &ledger, SETTLE).await;
    f.assert_clean(&figures);
    assert_eq!(figures.succeeded, 5);
    f.assert_all_alive();
}

/// Case 7: crashes around publishing. (a) The api dies between its commit and its publish:
/// the committed outbox row is published by another process's relay (the worker's) while
/// the api is down; the client's retry with the same job_id learns it exists (`409`).
/// (b) A relay dies between publish and delete: the row is published again after the
/// restart (two messages, proven by the queue depth) and the job still runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn f07_crash_between_commit_and_publish_loses_nothing() {
    let mut f = Faults::servers(Options::default()).await;
    f.start_api(&[("ENCONVERT_FAILPOINT", "api.after_commit")])
        .await;
    f.start_worker(&[]).await;
    f.start_notifier(&[]);
    let page = f.page("/p", Duration::ZERO);
    let mut ledger = Ledger::new("f07");
    let s = f.submit_full(&mut ledger, &page).await;
    assert_eq!(s.status, 0, "the failpoint did not fire");
    let mut api = f.api.take().unwrap();
    let exit = api.wait_exit(Duration::from_secs(30)).await;
    assert!(exit.is_some_and(|e| !e.success()), "the api did not crash");
    // The row was committed: the worker's relay publishes it and the job finishes, with
    // the api still down.
    let deadline = Instant::now() + Duration::from_secs(120);
    while f.job_states().await.get(&s.id).map(String::as_str) != Some("success") {
        assert!(Instant::now() < deadline, "the committed job never ran");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    ledger.refused.clear();
    ledger.accepted.push(s.id.clone());
    f.start_api(&[]).await;
    let retry = f
        .http
        .post(format!("{}/v1/convert/url-to-pdf", f.base))
        .header("X-API-Key", &f.key)
        .json(&serde_json::json!({"url": page, "async_mode": true, "job_id": s.id}))
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 409, "the retry did not find the job");

    // (b) No worker, an api whose relay dies after publishing.
    let mut worker = f.workers.remove(0);
    worker.kill_group();
    let mut api = f.api.take().unwrap();
    api.kill_group();
    f.start_api(&[("ENCONVERT_FAILPOINT", "relay.after_publish")])
        .await;
    let s = f.submit_full(&mut ledger, &page).await;
    let mut api = f.api.take().unwrap();
    let exit = api.wait_exit(Duration::from_secs(30)).await;
    assert!(
        exit.is_some_and(|e| !e.success()),
        "the relay failpoint did not fire"
    );
    if s.status != 202 {
        // The crash may beat the answer; the row is committed either way.
        ledger.refused.retain(|(id, _)| *id != s.id);
        ledger.accepted.push(s.id.clone());
    }
    assert_eq!(f.rabbit.depth("render.batch"), 1);
    f.start_api(&[]).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while f.rabbit.depth("render.batch") < 2 {
        assert!(
            Instant::now() < deadline,
            "the outbox row was not published again"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    f.start_worker(&[]).await;
    let figures = f
        .settle("f07 crash around publishing", &ledger, SETTLE)
        .await;
    f.assert_clean(&figures);
    assert_eq!(figures.succeeded, 2);
}
