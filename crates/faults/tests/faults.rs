//! The fault-injection suite (issue 6, docs/reliability.md): each test starts its own
//! PostgreSQL cluster and RabbitMQ node, runs the real binaries as OS processes, submits
//! jobs with known ids, injects one fault, lets the system settle and counts the ledger.
//! Run with `make test-faults`.

#![expect(clippy::unwrap_used, reason = "tests")]

use std::time::{Duration, Instant};

use enconvert_faults::site::Hostile;
use enconvert_faults::{Faults, Ledger, Options, children, descendants};

/// How long a ledger may take to settle (`FAULTS_SETTLE_SECS`, default 300).
static SETTLE: std::sync::LazyLock<Duration> = std::sync::LazyLock::new(|| {
    Duration::from_secs(
        std::env::var("FAULTS_SETTLE_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(300),
    )
});

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

/// After a fault: a good page submitted now renders, and every process is still alive.
async fn next_page_renders(f: &mut Faults, case: &str) {
    let good = f.page("/good", Duration::ZERO);
    let mut after = Ledger::new(&format!("{case}-after"));
    assert_eq!(f.submit(&mut after, &good).await, 202);
    let figures = f
        .settle(&format!("{case} next page"), &after, *SETTLE)
        .await;
    f.assert_clean(&figures);
    assert_eq!(figures.succeeded, 1);
    f.assert_all_alive();
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

    let figures = f.settle("f01 worker SIGKILL", &ledger, *SETTLE).await;
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
    let figures = f.settle("f17 worker SIGTERM", &ledger, *SETTLE).await;
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
    f.settle("f06 before the outage", &ledger, *SETTLE).await;
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
    let figures = f.settle("f06 PostgreSQL stopped", &ledger, *SETTLE).await;
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
    let figures = f.settle("f04 RabbitMQ restart", &ledger, *SETTLE).await;
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
    let figures = f.settle("f18 resource alarm", &ledger, *SETTLE).await;
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
        api.log_text().contains("relay.after_publish"),
        "the api did not stop at the relay failpoint: {}",
        api.log_text()
    );
    assert!(
        exit.is_some_and(|e| !e.success()),
        "the relay failpoint did not fire"
    );
    if s.status != 202 {
        // The crash may beat the answer; the row is committed either way.
        ledger.refused.retain(|(id, _)| *id != s.id);
        ledger.accepted.push(s.id.clone());
    }
    // The queue's message count comes from statistics that lag by a few seconds: wait for
    // the one confirmed message to show (nothing consumes the queue now).
    let deadline = Instant::now() + Duration::from_secs(30);
    while f.rabbit.depth("render.batch") < 1 {
        assert!(
            Instant::now() < deadline,
            "the published message is not queued"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
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
        .settle("f07 crash around publishing", &ledger, *SETTLE)
        .await;
    f.assert_clean(&figures);
    assert_eq!(figures.succeeded, 2);
}

async fn job_rows(f: &Faults) -> Vec<(Option<String>, String, Option<String>, i32)> {
    use diesel::{ExpressionMethods, QueryDsl};
    use diesel_async::RunQueryDsl;
    use enconvert_db::schema::jobs;
    let mut conn = f.db.conn().await.unwrap();
    jobs::table
        .filter(jobs::project_id.eq(f.project_id))
        .select((
            jobs::client_job_id,
            jobs::status,
            jobs::error,
            jobs::attempts,
        ))
        .load(&mut conn)
        .await
        .unwrap()
}

/// Case 3: a page that crashes the renderer every time it loads. The job is retried up to
/// the delivery limit, then failed with an error; its batch completes `partial`; one
/// failure notification per channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn f03_page_crashing_the_renderer_every_time_is_given_up() {
    let limit = 3;
    let f = Faults::start(Options {
        delivery_limit: limit,
        render_timeout_secs: 20,
        // `/crash` kills every renderer of the worker, where a real crash takes its own
        // page's renderer only: one job at a time keeps the good pages out of its way (the
        // ready pages and the control tab still die with it).
        concurrency: 1,
        ..Options::default()
    })
    .await;
    let hostile = Hostile::start().await;
    hostile.set_victims(f.workers.iter().map(|w| w.pid()).collect());
    let good = f.page("/good", Duration::ZERO);
    let good2 = f.page("/good2", Duration::ZERO);
    let crash = hostile.url("/crash");
    let mut ledger = Ledger::new("f03");
    assert_eq!(f.submit(&mut ledger, &crash).await, 202);
    assert_eq!(f.submit(&mut ledger, &good).await, 202);
    let resp = f
        .http
        .post(format!("{}/v1/convert/url-to-pdf", f.base))
        .header("X-API-Key", &f.key)
        .json(&serde_json::json!({
            "url": [good, crash, good2],
            "callback_url": f.hooks.url("/hook"),
        }))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(status, 202, "{body}");
    let batch_id = body["batch_id"].as_str().unwrap().to_string();

    let figures = f.settle("f03 renderer crash", &ledger, *SETTLE).await;
    f.assert_clean(&figures);
    assert_eq!((figures.succeeded, figures.failed), (1, 1));
    let rows = job_rows(&f).await;
    let crashed = rows
        .iter()
        .find(|r| r.0.as_deref() == Some("f03-0"))
        .unwrap();
    println!(
        "f03: crash page requested {} times, {} renderers killed, job: {crashed:?}",
        hostile.hits("/crash"),
        hostile.renderers_killed()
    );
    assert!(
        hostile.renderers_killed() >= 1,
        "the page never crashed a renderer"
    );
    assert!(
        crashed.2.as_deref().is_some_and(|e| !e.is_empty()),
        "failed without an error"
    );

    let deadline = Instant::now() + *SETTLE;
    let batch = loop {
        let b = f.batch(&batch_id).await;
        if b["status"] != "processing" {
            break b;
        }
        assert!(Instant::now() < deadline, "the batch never completed: {b}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(batch["status"], "partial", "{batch}");
    let failed = &batch["items"][1];
    assert!(
        failed["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{batch}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let hooks: Vec<serde_json::Value> = f
        .hooks
        .seen("/hook")
        .iter()
        .map(|s| serde_json::from_slice(&s.body).unwrap())
        .filter(|h: &serde_json::Value| h["batch_id"] == batch_id.as_str())
        .collect();
    let failures = hooks.iter().filter(|h| h["status"] == "failed").count();
    assert_eq!((hooks.len(), failures), (3, 1), "{hooks:?}");
}

/// Case 2: Chromium killed mid-render: the worker launches a new one, the job is retried and
/// finishes once, and no zombie process is left under the worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn f02_chromium_killed_mid_render_is_relaunched() {
    let mut f = Faults::start(Options::default()).await;
    let slow = f.page("/slow", Duration::from_secs(6));
    let mut ledger = Ledger::new("f02");
    for _ in 0..3 {
        assert_eq!(f.submit(&mut ledger, &slow).await, 202);
    }
    f.wait_rendering(1, Duration::from_secs(120)).await;
    let worker = f.workers[0].pid();
    let browsers: Vec<u32> = children(worker)
        .into_iter()
        .filter(|(_, _, cmd)| cmd.contains("chrom") && !cmd.contains("--type="))
        .map(|(pid, _, _)| pid)
        .collect();
    assert!(!browsers.is_empty(), "no Chromium under the worker");
    for pid in &browsers {
        let _ = std::process::Command::new("kill")
            .args(["-s", "KILL", &pid.to_string()])
            .output();
    }
    let figures = f.settle("f02 Chromium killed", &ledger, *SETTLE).await;
    f.assert_clean(&figures);
    assert_eq!(figures.succeeded, 3);
    let retried = attempts(&f).await.iter().filter(|(_, a)| *a > 1).count();
    assert!(retried >= 1, "no job was interrupted by the kill");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let zombies: Vec<_> = descendants(worker)
        .into_iter()
        .filter(|(_, state, _)| *state == 'Z')
        .collect();
    assert!(
        zombies.is_empty(),
        "zombie processes under the worker: {zombies:?}"
    );
    let now: Vec<u32> = children(worker)
        .into_iter()
        .filter(|(_, _, cmd)| cmd.contains("chrom") && !cmd.contains("--type="))
        .map(|(pid, _, _)| pid)
        .collect();
    assert_eq!(now.len(), 1, "browsers under the worker: {now:?}");
    assert!(
        !browsers.contains(&now[0]),
        "the killed browser is still there"
    );
    f.assert_all_alive();
}

/// Case 8: pages that never finish loading (no answer at all, or a byte a second) fail at
/// the render deadline with a clear error; the worker stays healthy and renders the next
/// page.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn f08_never_ending_pages_fail_at_their_deadline() {
    let mut f = Faults::start(Options {
        render_timeout_secs: 10,
        ..Options::default()
    })
    .await;
    let hostile = Hostile::start().await;
    let mut ledger = Ledger::new("f08");
    assert_eq!(f.submit(&mut ledger, &hostile.url("/hang")).await, 202);
    assert_eq!(f.submit(&mut ledger, &hostile.url("/drip")).await, 202);
    let figures = f.settle("f08 never-ending pages", &ledger, *SETTLE).await;
    f.assert_clean(&figures);
    assert_eq!(figures.failed, 2);
    for row in job_rows(&f).await {
        let error = row.2.unwrap_or_default();
        assert!(
            error.to_lowercase().contains("timeout"),
            "{:?} failed with {error:?}",
            row.0
        );
    }
    next_page_renders(&mut f, "f08").await;
}

/// Case 3, worst form: a page that kills its worker (and its Chromium) every time. Its
/// message never reaches the delivery limit (the lease keeps redeliveries away and the
/// reconciler requeues it with a fresh message), so the job's attempts are capped: after
/// the limit it is failed with an error instead of killing workers forever. The test plays
/// the process supervisor, starting a worker again whenever one dies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn f03_page_killing_its_worker_every_time_is_given_up() {
    let limit = 2;
    let mut f = Faults::start(Options {
        delivery_limit: limit,
        render_timeout_secs: 5,
        // One job at a time: the other job must not die with the page's worker.
        concurrency: 1,
        ..Options::default()
    })
    .await;
    let hostile = Hostile::start().await;
    hostile.set_victims(f.workers.iter().map(|w| w.pid()).collect());
    let mut ledger = Ledger::new("f03k");
    assert_eq!(
        f.submit(&mut ledger, &hostile.url("/kill-worker")).await,
        202
    );
    let good = f.page("/good", Duration::ZERO);
    assert_eq!(f.submit(&mut ledger, &good).await, 202);
    let deadline = Instant::now() + *SETTLE;
    let mut restarts = 0;
    loop {
        let state = f.job_states().await.get("f03k-0").cloned();
        if state.as_deref() == Some("failed") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the job is still {state:?} after {restarts} worker restarts"
        );
        if !f.workers[0].alive() {
            f.workers.clear();
            f.start_worker(&[]).await;
            hostile.set_victims(f.workers.iter().map(|w| w.pid()).collect());
            restarts += 1;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let figures = f
        .settle("f03 page killing its worker", &ledger, *SETTLE)
        .await;
    f.assert_clean(&figures);
    assert_eq!((figures.succeeded, figures.failed), (1, 1));
    let rows = job_rows(&f).await;
    let row = rows
        .iter()
        .find(|r| r.0.as_deref() == Some("f03k-0"))
        .unwrap();
    println!(
        "f03k: {restarts} worker restarts, page requested {} times, job {row:?}",
        hostile.hits("/kill-worker")
    );
    assert_eq!(
        hostile.hits("/kill-worker"),
        limit as usize,
        "attempts of the page"
    );
    assert!(
        row.2.as_deref().unwrap_or("").contains("gave up"),
        "{row:?}"
    );
}

/// Case 3, dead-letter path: a render message that crashes its worker before anything is
/// recorded (the `worker.render` failpoint). RabbitMQ counts each delivery; after the limit
/// the message is dead-lettered, and the dead-letter consumer fails the job with an error,
/// with its notifications. The test plays the supervisor, restarting the worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn f03_dead_lettered_render_message_fails_its_job() {
    let limit = 3;
    let crash = [("ENCONVERT_FAILPOINT", "worker.render")];
    let mut f = Faults::servers(Options {
        delivery_limit: limit,
        ..Options::default()
    })
    .await;
    f.start_api(&[]).await;
    f.start_notifier(&[]);
    f.spawn_worker(&crash);
    let good = f.page("/good", Duration::ZERO);
    let mut ledger = Ledger::new("f03d");
    assert_eq!(f.submit(&mut ledger, &good).await, 202);
    let deadline = Instant::now() + *SETTLE;
    let mut restarts = 0;
    loop {
        let state = f.job_states().await.get("f03d-0").cloned();
        if state.as_deref() == Some("failed") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the job is still {state:?} after {restarts} worker restarts"
        );
        if !f.workers[0].alive() {
            f.workers.clear();
            f.spawn_worker(&crash);
            restarts += 1;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let figures = f
        .settle("f03 dead-lettered message", &ledger, *SETTLE)
        .await;
    f.assert_clean(&figures);
    assert_eq!(figures.failed, 1);
    let rows = job_rows(&f).await;
    println!("f03d: {restarts} worker crashes, job {:?}", rows[0]);
    assert!(
        restarts >= limit,
        "the job failed before its delivery limit"
    );
    assert!(
        rows[0].2.as_deref().unwrap_or("").contains("gave up"),
        "{rows:?}"
    );
    // The job's failure commits before the dead letter is acknowledged (and the job may
    // have been failed by the attempt cap before its dead letter arrived): the queue
    // empties just after, not necessarily by now.
    assert!(
        f.rabbit
            .drained(&["render.batch.dead"], Duration::from_secs(15))
            .await,
        "the dead letter was not consumed within 15 s: {}",
        f.rabbit.queues()
    );
}

/// Resident memory of a process, in MiB (from /proc).
fn rss_mib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

/// Case 9: a huge page (`HUGE_ROWS` table rows, tens of MB of HTML). The job fails with a
/// size error as soon as its document passes the worker's limit (`ENCONVERT_MAX_DOCUMENT_MB`,
/// 8 MiB by default), long before its deadline; the worker's own memory stays bounded; the
/// worker renders the next page.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn f09_huge_page_ends_and_memory_stays_bounded() {
    let mut f = Faults::start(Options {
        render_timeout_secs: 60,
        ..Options::default()
    })
    .await;
    let hostile = Hostile::start().await;
    let worker = f.workers[0].pid();
    let before = rss_mib(worker);
    let mut ledger = Ledger::new("f09");
    let submitted = Instant::now();
    assert_eq!(f.submit(&mut ledger, &hostile.url("/huge")).await, 202);
    let mut peak = before;
    let deadline = Instant::now() + *SETTLE;
    loop {
        peak = peak.max(rss_mib(worker));
        let state = f.job_states().await.get("f09-0").cloned();
        if matches!(state.as_deref(), Some("success" | "failed")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the huge page is still {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let figures = f.settle("f09 huge page", &ledger, *SETTLE).await;
    f.assert_clean(&figures);
    let ended = submitted.elapsed();
    let rows = job_rows(&f).await;
    println!(
        "f09: {} rows; job {:?} ended after {ended:?}; worker RSS {before} MiB before, {peak} MiB at most",
        enconvert_faults::site::HUGE_ROWS,
        rows[0]
    );
    assert_eq!(rows[0].1, "failed", "{rows:?}");
    assert!(
        rows[0]
            .2
            .as_deref()
            .is_some_and(|e| e.starts_with("The page is too large")),
        "{rows:?}"
    );
    // Ended by the size limit, not by the 60 s render deadline.
    assert!(ended < Duration::from_secs(30), "{ended:?}");
    assert!(peak < 1024, "the worker grew to {peak} MiB");
    next_page_renders(&mut f, "f09").await;
}

/// Case 3 for websites: a discover message that crashes its worker on every delivery is
/// dead-lettered after the limit; the dead-letter consumer fails the website batch's
/// discovery with an error, so the batch completes (`failed`) and is announced once,
/// instead of staying `processing` forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn f03_dead_lettered_discovery_fails_its_website_batch() {
    let limit = 3;
    let crash = [("ENCONVERT_FAILPOINT", "worker.discover")];
    let mut f = Faults::servers(Options {
        delivery_limit: limit,
        env: vec![("ENCONVERT_DISCOVERY_WAIT_SECS".into(), "0".into())],
        ..Options::default()
    })
    .await;
    f.start_api(&[]).await;
    f.start_notifier(&[]);
    f.spawn_worker(&crash);
    let root = f.page("/", Duration::ZERO);
    let resp = f
        .http
        .post(format!("{}/v1/convert/website-to-pdf", f.base))
        .header("X-API-Key", &f.key)
        .json(&serde_json::json!({"url": root, "callback_url": f.hooks.url("/hook")}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(status, 202, "{body}");
    let batch_id = body["batch_id"].as_str().unwrap().to_string();
    let (batch, restarts) = f.batch_through_crashes(&batch_id, &crash, *SETTLE).await;
    println!("f03w: {restarts} worker crashes, batch {batch}");
    assert!(
        restarts >= limit,
        "the discovery failed before its delivery limit"
    );
    assert_eq!(batch["status"], "failed", "{batch}");
    assert_eq!(batch["discovery"], "failed", "{batch}");
    assert!(
        batch["error"].as_str().unwrap_or("").contains("gave up"),
        "{batch}"
    );
    let hooks = f.hooks.wait_for("/hook", 1, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(f.hooks.seen("/hook").len(), 1, "{hooks:?}");
    // The dead letter is acknowledged just after the batch's failure commits. In about one
    // run in ten (seen in CI and here, RabbitMQ 3.10), it was instead back to ready seconds
    // later with no consumer listed on any of the live worker's queues, though its
    // connection was open and nothing was logged on either side. Not understood yet: the
    // queues are printed when it happens, and a fresh worker must then drain it.
    if !f
        .rabbit
        .drained(&["discover.dead"], Duration::from_secs(15))
        .await
    {
        println!("f03w: the dead letter is still queued 15 s after the batch failed");
        println!("f03w: queues\n{}", f.rabbit.queues());
        for args in [
            &[
                "list_consumers",
                "queue_name",
                "channel_pid",
                "consumer_tag",
                "active",
            ][..],
            &[
                "list_channels",
                "pid",
                "name",
                "consumer_count",
                "messages_unacknowledged",
            ][..],
            &["list_connections", "pid", "name", "channels", "state"][..],
        ] {
            let out = f.rabbit.ctl(args);
            println!("f03w: {args:?}\n{}", String::from_utf8_lossy(&out.stdout));
        }
        f.workers.clear();
        f.spawn_worker(&[]);
        assert!(
            f.rabbit
                .drained(&["discover.dead"], Duration::from_secs(60))
                .await,
            "the dead letter was not consumed by a fresh worker either: {}",
            f.rabbit.queues()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(f.hooks.seen("/hook").len(), 1, "announced again");
    }
}

/// Case 3, ZIP archives: a batch whose archive message crashes its worker every delivery is
/// dead-lettered after the limit; the dead-letter consumer fails the batch with an error and
/// it is announced once, instead of staying `processing` with its archive pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn f03_dead_lettered_archive_fails_its_zip_batch() {
    let limit = 3;
    let crash = [("ENCONVERT_FAILPOINT", "worker.archive")];
    let mut f = Faults::servers(Options {
        delivery_limit: limit,
        ..Options::default()
    })
    .await;
    f.start_api(&[]).await;
    f.start_notifier(&[]);
    f.spawn_worker(&crash);
    let pages = [f.page("/a", Duration::ZERO), f.page("/b", Duration::ZERO)];
    let resp = f
        .http
        .post(format!("{}/v1/convert/url-to-pdf", f.base))
        .header("X-API-Key", &f.key)
        .json(&serde_json::json!({
            "url": pages,
            "output_format": "zip",
            "callback_url": f.hooks.url("/hook"),
        }))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(status, 202, "{body}");
    let batch_id = body["batch_id"].as_str().unwrap().to_string();
    let (batch, restarts) = f.batch_through_crashes(&batch_id, &crash, *SETTLE).await;
    println!("f03z: {restarts} worker crashes, batch {batch}");
    assert!(
        restarts >= limit,
        "the archive failed before its delivery limit"
    );
    assert_eq!(batch["status"], "failed", "{batch}");
    assert_eq!(batch["completed"], 2, "both pages rendered: {batch}");
    assert!(batch["zip_download_url"].is_null(), "{batch}");
    assert!(
        batch["error"]
            .as_str()
            .unwrap_or("")
            .contains("ZIP archive"),
        "{batch}"
    );
    // The crashing worker may be down now with more copies of the message waiting (a relay
    // that crashed between publishing and deleting its outbox row publishes it again): a
    // worker without the fault, as after a fix, drains them without touching the batch.
    f.workers.clear();
    f.spawn_worker(&[]);
    assert!(
        f.rabbit
            .drained(
                &["archive.build.dead", "archive.build"],
                Duration::from_secs(60)
            )
            .await,
        "the dead letters were not consumed: {}",
        f.rabbit.queues()
    );
    let hooks = f.hooks.wait_for("/hook", 1, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let seen = f.hooks.seen("/hook");
    assert_eq!(seen.len(), 1, "{hooks:?}");
    let hook: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(hook["status"], "failed", "{hook}");
    let after = f.batch(&batch_id).await;
    assert_eq!(after["status"], "failed", "{after}");
}

/// Webhook deliveries of the project: (job's client id, status, attempts, last error).
async fn deliveries(f: &Faults) -> Vec<(String, String, i32, Option<String>)> {
    use diesel::{ExpressionMethods, JoinOnDsl, NullableExpressionMethods, QueryDsl};
    use diesel_async::RunQueryDsl;
    use enconvert_db::schema::{jobs, notifications};
    let mut conn = f.db.conn().await.unwrap();
    let rows: Vec<(Option<String>, String, i32, Option<String>)> = notifications::table
        .inner_join(jobs::table.on(notifications::job_id.eq(jobs::id.nullable())))
        .filter(notifications::channel.eq("webhook"))
        .filter(jobs::project_id.eq(f.project_id))
        .select((
            jobs::client_job_id,
            notifications::status,
            notifications::attempts,
            notifications::last_error,
        ))
        .load(&mut conn)
        .await
        .unwrap();
    rows.into_iter()
        .map(|(id, s, a, e)| (id.unwrap_or_default(), s, a, e))
        .collect()
}

/// Case 14: hostile webhook receivers, one answering 50 MB, one never answering. The 50 MB
/// answer is read only up to the cap (the delivery counts, the notifier's memory stays
/// flat); the silent one times out and is retried; a polite receiver's delivery is not held
/// up by either (it arrives while the silent one is still pending).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn f14_hostile_webhook_receivers_are_capped_and_timed_out() {
    let f = Faults::start(Options::default()).await;
    let hostile = Hostile::start().await;
    let page = f.page("/p", Duration::ZERO);
    for (id, hook) in [
        ("f14-hang", hostile.url("/hook-hang")),
        ("f14-huge", hostile.url("/hook-huge")),
    ] {
        let resp = f
            .http
            .post(format!("{}/v1/convert/url-to-pdf", f.base))
            .header("X-API-Key", &f.key)
            .json(&serde_json::json!({
                "url": page, "async_mode": true, "job_id": id, "callback_url": hook,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
    }
    // Both hostile deliveries are under way before the polite one is even submitted.
    let deadline = Instant::now() + *SETTLE;
    while hostile.hits("/hook-hang") == 0 || hostile.hits("/hook-huge") == 0 {
        assert!(
            Instant::now() < deadline,
            "the hostile receivers were never called"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut ledger = Ledger::new("f14-polite");
    assert_eq!(f.submit(&mut ledger, &page).await, 202);
    let figures = f.settle("f14 polite receiver", &ledger, *SETTLE).await;
    f.assert_clean(&figures);
    let now = deliveries(&f).await;
    let hang = now.iter().find(|d| d.0 == "f14-hang").unwrap();
    println!("f14: when the polite webhook arrived: {now:?}");
    assert_ne!(
        hang.1, "sent",
        "the silent receiver cannot have been delivered to"
    );
    let notifier_rss = rss_mib(f.notifier.as_ref().unwrap().pid());
    // The silent receiver: timed out (10 s) on every attempt of the schedule (1, 2, 4 s).
    let deadline = Instant::now() + *SETTLE;
    let (hang, huge) = loop {
        let d = deliveries(&f).await;
        let hang = d.iter().find(|d| d.0 == "f14-hang").cloned().unwrap();
        let huge = d.iter().find(|d| d.0 == "f14-huge").cloned().unwrap();
        if hang.1 != "pending" && huge.1 != "pending" {
            break (hang, huge);
        }
        assert!(Instant::now() < deadline, "deliveries still pending: {d:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!("f14: silent {hang:?}; 50 MB {huge:?}; notifier RSS {notifier_rss} MiB");
    assert_eq!(huge.1, "sent", "{huge:?}");
    assert_eq!(hang.1, "failed", "{hang:?}");
    assert_eq!(hang.2, 4, "one attempt and three retries: {hang:?}");
    assert!(
        hang.3
            .as_deref()
            .unwrap_or("")
            .to_lowercase()
            .contains("time"),
        "{hang:?}"
    );
    assert!(
        notifier_rss < 200,
        "the notifier grew to {notifier_rss} MiB"
    );
    let sent = hostile.huge_answer_sent();
    println!(
        "f14: the 50 MB answer got {} KiB out before the notifier hung up",
        sent / 1024
    );
    assert!(
        sent < 40 * 1024 * 1024,
        "the notifier read the whole 50 MB answer"
    );
}

/// Case 10: a soak. `FAULTS_SOAK` renders (default 200; `FAULTS_SOAK=1000` for the full
/// case) with the browser recycled every 50 jobs: every job ends once, the worker keeps at
/// most one browser besides the one being retired, and neither the worker's memory nor the
/// number of Chromium processes (counted while one browser runs) grows from the first quarter
/// of the run to the last.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn f10_soak_keeps_processes_and_memory_flat() {
    let total: usize = std::env::var("FAULTS_SOAK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let recycle = 50;
    let mut f = Faults::start(Options {
        env: vec![(
            "ENCONVERT_BROWSER_RECYCLE_AFTER".into(),
            recycle.to_string(),
        )],
        ..Options::default()
    })
    .await;
    let worker = f.workers[0].pid();
    let processes = || descendants(worker).len();
    // Chromium browser processes (not their renderers and helpers): the worker's own
    // children. Among its descendants, a helper the browser has forked but not yet exec'd
    // still shows the browser's command line. Counted among descendants, one sample under
    // the suite's load saw four browsers at once, though no browser beyond the five the
    // soak launched was ever seen (such helpers would explain it).
    let browser_pids = || -> Vec<u32> {
        children(worker)
            .iter()
            .filter(|(_, state, cmd)| {
                *state != 'Z' && cmd.contains("chromium") && !cmd.contains("--type=")
            })
            .map(|p| p.0)
            .collect()
    };
    let browsers = || browser_pids().len();
    let mut seen_browsers = std::collections::BTreeSet::new();
    let pages: Vec<String> = (0..4)
        .map(|i| f.page(&format!("/soak{i}"), Duration::ZERO))
        .collect();
    let mut ledger = Ledger::new("f10");
    // (renders done, worker RSS MiB, Chromium processes, browsers) over the run.
    let mut samples: Vec<(usize, u64, usize, usize)> = Vec::new();
    let chunk = 25;
    for start in (0..total).step_by(chunk) {
        for i in start..(start + chunk).min(total) {
            assert_eq!(f.submit(&mut ledger, &pages[i % pages.len()]).await, 202);
        }
        let deadline = Instant::now() + *SETTLE;
        loop {
            let states = f.job_states().await;
            let done = states
                .values()
                .filter(|s| matches!(s.as_str(), "success" | "failed"))
                .count();
            samples.push((done, rss_mib(worker), processes(), browsers()));
            seen_browsers.extend(browser_pids());
            if done >= (start + chunk).min(total) {
                break;
            }
            assert!(Instant::now() < deadline, "the soak stalled at {done}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let figures = f.settle("f10 soak", &ledger, *SETTLE).await;
    f.assert_clean(&figures);
    assert_eq!(figures.succeeded, total, "{figures:?}");

    let quarter = |q: usize| -> Vec<&(usize, u64, usize, usize)> {
        samples
            .iter()
            .filter(|s| s.0 * 4 / total.max(1) == q)
            .collect()
    };
    let peak_rss = |v: &[&(usize, u64, usize, usize)]| v.iter().map(|s| s.1).max().unwrap_or(0);
    // Chromium's processes while one browser ran: a successor launched ahead of a recycle
    // doubles the count for a few seconds, in whichever quarter the recycle falls.
    let peak_procs = |v: &[&(usize, u64, usize, usize)]| {
        v.iter()
            .filter(|s| s.3 <= 1)
            .map(|s| s.2)
            .max()
            .unwrap_or(0)
    };
    // The typical count (the median of those samples): a peak also catches the moments a
    // browser forks a helper or a dying one's processes are not yet gone, which under the
    // suite's load once made 14 -> 21 with nothing left over. Processes that stay behind
    // raise the median too.
    let typical_procs = |v: &[&(usize, u64, usize, usize)]| {
        let mut counts: Vec<usize> = v.iter().filter(|s| s.3 == 1).map(|s| s.2).collect();
        counts.sort_unstable();
        counts.get(counts.len() / 2).copied().unwrap_or(0)
    };
    let (first, last) = (quarter(0), quarter(3));
    let most_browsers = samples.iter().map(|s| s.3).max().unwrap_or(0);
    let most_procs = samples.iter().map(|s| s.2).max().unwrap_or(0);
    let all: Vec<_> = samples.iter().collect();
    println!(
        "f10: {total} renders, recycled every {recycle}: worker RSS peak {} MiB in the first quarter, {} MiB in the last; Chromium processes with one browser peak {} then {} (median {} then {}), {most_procs} with any; at most {most_browsers} browsers at once, {} in all",
        peak_rss(&first),
        peak_rss(&last),
        peak_procs(&first),
        peak_procs(&last),
        typical_procs(&first),
        typical_procs(&last),
        seen_browsers.len(),
    );
    assert!(most_browsers <= 2, "browsers piled up: {most_browsers}");
    // Recycling happened: a run of `total` jobs saw several browsers one after another.
    assert!(
        seen_browsers.len() > total / recycle / 2,
        "the browser was not recycled: {} seen",
        seen_browsers.len()
    );
    assert!(
        peak_rss(&last) <= peak_rss(&first) + 150,
        "the worker grew: {} -> {} MiB",
        peak_rss(&first),
        peak_rss(&last)
    );
    assert!(
        typical_procs(&first) > 0 && typical_procs(&last) > 0,
        "no sample with one browser in the first or last quarter: {samples:?}"
    );
    assert!(
        typical_procs(&last) <= typical_procs(&first) + 4,
        "Chromium processes grew: median {} -> {}",
        typical_procs(&first),
        typical_procs(&last)
    );
    // Two browsers at once (a successor and the one it replaces) are no larger than two.
    assert!(
        most_procs <= 2 * peak_procs(&all) + 4,
        "Chromium processes piled up: {most_procs} at most, {} with one browser",
        peak_procs(&all)
    );
    f.assert_all_alive();
}
