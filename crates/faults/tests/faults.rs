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
