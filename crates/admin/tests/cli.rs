//! The admin CLI against a real PostgreSQL and RabbitMQ: projects, plans, owner emails,
//! keys, webhook secrets, and the dead-letter queues.

#![expect(clippy::unwrap_used, reason = "tests")]

use std::process::Command;

fn psql(sql: &str) {
    let ok = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-qc",
            sql,
        ])
        .status()
        .unwrap()
        .success();
    assert!(ok, "{sql}");
}

/// One value from a query of database `db`.
fn psql_value(db: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", db, "-tAc", sql])
        .output()
        .unwrap();
    assert!(out.status.success(), "{sql}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn admin(db: &str, args: &[&str]) -> (bool, String) {
    let (ok, out, _) = admin_env(db, "%2f", args);
    (ok, out)
}

/// Runs the CLI against database `db` and RabbitMQ vhost `vhost`: success, stdout, stderr.
fn admin_env(db: &str, vhost: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_enconvert-admin"))
        .args(args)
        .env(
            "DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:5432/{db}"),
        )
        .env(
            "AMQP_URL",
            format!("amqp://guest:guest@127.0.0.1:5672/{vhost}"),
        )
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn projects_plans_and_keys() {
    let db = format!("enc_admin_{}", std::process::id());
    psql(&format!("CREATE DATABASE {db}"));

    let (ok, out) = admin(
        &db,
        &[
            "create-project",
            "--name",
            "acme",
            "--owner-email",
            "ops@acme.example",
            "--plan",
            "pro",
        ],
    );
    assert!(ok, "{out}");
    let private = out
        .lines()
        .find_map(|l| l.strip_prefix("private key: "))
        .unwrap()
        .to_string();
    let public = out
        .lines()
        .find_map(|l| l.strip_prefix("public key: "))
        .unwrap()
        .to_string();
    assert!(private.starts_with("sk_live_") && public.starts_with("pk_live_"));

    let (ok, out) = admin(&db, &["list-projects"]);
    assert!(ok && out.contains("\tacme\tpro\t"), "{out}");
    let (ok, _) = admin(&db, &["set-plan", "acme", "enterprise"]);
    assert!(ok);
    let (_, out) = admin(&db, &["list-projects"]);
    assert!(out.contains("\tacme\tenterprise\t"), "{out}");
    let (ok, _) = admin(&db, &["set-plan", "acme", "platinum"]);
    assert!(!ok, "unknown plans are refused");
    let (ok, _) = admin(
        &db,
        &[
            "create-project",
            "--name",
            "bad",
            "--owner-email",
            "not-an-email",
        ],
    );
    assert!(!ok, "bad owner emails are refused");

    // Keys: listed by prefix (never in full), revoked by id.
    let prefix: String = private.chars().take(12).collect();
    let (ok, out) = admin(&db, &["list-keys", &prefix]);
    assert!(ok, "{out}");
    assert!(
        !out.contains(&private),
        "the key itself is never shown again"
    );
    let line = out.lines().next().unwrap();
    assert!(line.ends_with("\tactive"), "{line}");
    let id = line.split('\t').next().unwrap().to_string();

    // Dashboard sessions of a project end at once.
    let project_id = line.split('\t').nth(3).unwrap().to_string();
    let count = || {
        let out = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", &db, "-tAc"])
            .arg("SELECT count(*) FROM dashboard_sessions")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let ok = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", &db, "-qc"])
        .arg(format!(
            "INSERT INTO dashboard_sessions (token_hash, project_id, key_id, csrf_token, expires_at) \
             VALUES ('\\x01', '{project_id}', '{id}', 't', now() + interval '1 hour'), \
                    ('\\x02', '{project_id}', '{id}', 't', now() + interval '1 hour')"
        ))
        .status()
        .unwrap()
        .success();
    assert!(ok);
    assert_eq!(count(), "2");
    let (ok, out) = admin(&db, &["revoke-sessions", "acme"]);
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "project acme: 2 dashboard sessions ended");
    assert_eq!(count(), "0");

    let (ok, _) = admin(&db, &["revoke-key", &id]);
    assert!(ok);
    let (_, out) = admin(&db, &["list-keys", &prefix]);
    assert!(out.lines().next().unwrap().ends_with("\trevoked"));
    let (ok, _) = admin(&db, &["revoke-key", &id]);
    assert!(!ok, "revoking twice fails");

    let (ok, out) = admin(&db, &["create-key", "acme", "--kind", "public"]);
    assert!(ok && out.starts_with("public key: pk_live_"), "{out}");

    // Owner email and the default-email switch.
    let project_id = psql_value(&db, "SELECT id FROM projects WHERE name = 'acme'");
    let (ok, out) = admin(&db, &["set-owner-email", "acme", "billing@acme.example"]);
    assert!(ok, "{out}");
    assert!(
        !out.contains("billing@acme.example"),
        "emails are not echoed"
    );
    assert_eq!(
        psql_value(&db, "SELECT owner_email FROM projects WHERE name = 'acme'"),
        "billing@acme.example"
    );
    let (ok, _) = admin(&db, &["set-owner-email", "acme", "nope"]);
    assert!(!ok, "bad owner emails are refused");
    let (ok, _) = admin(&db, &["set-owner-email", "no-such-project", "a@b.example"]);
    assert!(!ok, "unknown projects are refused");
    let (ok, _) = admin(&db, &["set-default-email", &project_id, "off"]);
    assert!(ok, "projects are found by id too");
    let (_, out) = admin(&db, &["list-projects"]);
    assert!(
        out.contains("\tacme\tenterprise\tdefault-email=false"),
        "{out}"
    );
    let (ok, _) = admin(&db, &["set-default-email", "acme", "on"]);
    assert!(ok);
    let (_, out) = admin(&db, &["list-projects"]);
    assert!(
        out.contains("\tacme\tenterprise\tdefault-email=true"),
        "{out}"
    );

    // Webhook secrets: shown, rotated with a grace period during which both sign.
    let (ok, first) = admin(&db, &["show-webhook-secret", "acme"]);
    let first = first.trim().to_string();
    assert!(ok && first.starts_with("whsec_"), "{first}");
    let (_, again) = admin(&db, &["show-webhook-secret", "acme"]);
    assert_eq!(again.trim(), first, "showing does not rotate");
    let (ok, second) = admin(
        &db,
        &["rotate-webhook-secret", "acme", "--grace-hours", "2"],
    );
    let second = second.trim().to_string();
    assert!(
        ok && second.starts_with("whsec_") && second != first,
        "{second}"
    );
    let (_, shown) = admin(&db, &["show-webhook-secret", "acme"]);
    assert_eq!(shown.trim(), second);
    let live = format!(
        "SELECT count(*) FROM webhook_secrets WHERE project_id = '{project_id}' \
         AND (expires_at IS NULL OR expires_at > now())"
    );
    assert_eq!(
        psql_value(&db, &live),
        "2",
        "the old secret signs during the grace"
    );
    let grace = psql_value(
        &db,
        &format!(
            "SELECT round(extract(epoch FROM expires_at - now()) / 3600) FROM webhook_secrets \
             WHERE project_id = '{project_id}' AND expires_at IS NOT NULL"
        ),
    );
    assert_eq!(grace, "2", "the grace period is the one asked for");

    psql(&format!("DROP DATABASE {db} WITH (FORCE)"));
}

#[test]
fn migrate_and_the_development_project() {
    let db = format!("enc_admin_dev_{}", std::process::id());
    psql(&format!("CREATE DATABASE {db}"));
    let (ok, out) = admin(&db, &["migrate"]);
    assert!(ok && out.contains("migrations applied"), "{out}");
    assert_eq!(
        psql_value(&db, "SELECT count(*) > 0 FROM plans"),
        "t",
        "the schema and its plans are there"
    );

    let key = "sk_live_DevelopmentKey0123456789";
    let run = |key: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_enconvert-admin"))
            .args(["ensure-dev-project"])
            .env(
                "DATABASE_URL",
                format!("postgres://postgres@127.0.0.1:5432/{db}"),
            )
            .env("ENCONVERT_DEV_API_KEY", key)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    for _ in 0..2 {
        let (ok, out) = run(key);
        assert!(ok && out.contains("(plan enterprise)"), "{out}");
        assert!(!out.contains(key), "the key is not echoed");
    }
    let (_, out) = admin(&db, &["list-keys", "sk_live_Deve"]);
    assert_eq!(out.lines().count(), 1, "ensured twice, one key: {out}");
    assert!(out.ends_with("\tactive\n"), "{out}");
    let (ok, _) = run("not-a-key");
    assert!(!ok, "a malformed development key is refused");

    psql(&format!("DROP DATABASE {db} WITH (FORCE)"));
}

mod dead_letters {
    use std::time::Duration;

    use enconvert_queue::{AmqpConfig, topology};
    use lapin::options::{
        BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions,
        ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions,
    };
    use lapin::types::FieldTable;
    use lapin::{BasicProperties, Channel};

    const RABBIT_API: &str = "http://127.0.0.1:15672/api";

    async fn management(method: reqwest::Method, path: &str, body: Option<serde_json::Value>) {
        let mut req = reqwest::Client::new()
            .request(method, format!("{RABBIT_API}{path}"))
            .basic_auth("guest", Some("guest"));
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.unwrap().error_for_status().unwrap();
    }

    async fn depth(channel: &Channel, queue: &str) -> u32 {
        channel
            .queue_declare(
                queue,
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap()
            .message_count()
    }

    async fn wait_depth(channel: &Channel, queue: &str, n: u32) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while depth(channel, queue).await != n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{queue} never held {n} message(s)"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn admin(vhost: &str, args: &[&str]) -> (bool, String, String) {
        super::admin_env("postgres", vhost, args)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dead_letters_are_listed_and_replayed() {
        let vhost = format!("enc_t_admin_dlq_{}", std::process::id());
        management(
            reqwest::Method::PUT,
            &format!("/vhosts/{vhost}"),
            Some(serde_json::json!({})),
        )
        .await;
        management(
            reqwest::Method::PUT,
            &format!("/permissions/{vhost}/guest"),
            Some(serde_json::json!({"configure": ".*", "write": ".*", "read": ".*"})),
        )
        .await;

        // Before any process declared the topology, the CLI says so.
        let (ok, out, err) = admin(&vhost, &["dlq", "list"]);
        assert!(ok, "{err}");
        assert!(out.contains("render.batch.dead\tnot declared"), "{out}");

        let cfg = AmqpConfig {
            url: format!("amqp://guest:guest@127.0.0.1:5672/{vhost}"),
            connection_name: "admin-test".into(),
            delivery_limit: 5,
            broker: Default::default(),
        };
        let conn = enconvert_queue::connect(&cfg).await.unwrap();
        let channel = conn.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();

        // A render message that a worker gave up on.
        let job_id = "0190a5b2-0000-7000-8000-000000000001";
        let batch_id = "0190a5b2-0000-7000-8000-0000000000b1";
        let body = serde_json::json!({"job_id": job_id, "batch_id": batch_id}).to_string();
        channel
            .basic_publish(
                topology::WORK_EXCHANGE,
                topology::RENDER_BATCH,
                BasicPublishOptions::default(),
                body.as_bytes(),
                BasicProperties::default()
                    .with_message_id("m-1".into())
                    .with_type("render.job".into())
                    .with_correlation_id(batch_id.into())
                    .with_delivery_mode(2),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        let got = channel
            .basic_get(topology::RENDER_BATCH, BasicGetOptions { no_ack: false })
            .await
            .unwrap()
            .unwrap();
        got.delivery
            .nack(BasicNackOptions {
                requeue: false,
                multiple: false,
            })
            .await
            .unwrap();
        wait_depth(&channel, "render.batch.dead", 1).await;

        // Listed with its ids and why it died; peeking leaves it there.
        for _ in 0..2 {
            let (ok, out, err) = admin(&vhost, &["dlq", "list"]);
            assert!(ok, "{err}");
            assert!(out.contains("render.batch.dead\t1 message(s)"), "{out}");
            assert!(out.contains("render.sync.dead\t0 message(s)"), "{out}");
            assert!(out.contains("notifier.events.dead\t0 message(s)"), "{out}");
            let line = out.lines().find(|l| l.contains("message=m-1")).unwrap();
            for part in [
                "type=render.job",
                &format!("batch={batch_id}"),
                &format!("job={job_id}"),
                "reason=rejected",
                "queue=render.batch",
                "deaths=1",
            ] {
                assert!(line.contains(part), "{part} missing: {line}");
            }
        }
        wait_depth(&channel, "render.batch.dead", 1).await;
        let (ok, out, _) = admin(&vhost, &["dlq", "list", "--queue", "render.sync"]);
        assert!(ok && !out.contains("render.batch"), "{out}");
        let (ok, _, err) = admin(&vhost, &["dlq", "list", "--queue", "elsewhere"]);
        assert!(!ok && err.contains("no queue `elsewhere`"), "{err}");

        // A replay whose publish RabbitMQ cannot route (the work queue unbound) leaves it dead.
        channel
            .queue_unbind(
                topology::RENDER_BATCH,
                topology::WORK_EXCHANGE,
                topology::RENDER_BATCH,
                FieldTable::default(),
            )
            .await
            .unwrap();
        let (ok, out, err) = admin(&vhost, &["dlq", "replay", "--queue", "render.batch"]);
        assert!(!ok, "{out}");
        assert!(err.contains("has no queue bound"), "{err}");
        assert!(err.contains("stays in the dead-letter queue"), "{err}");
        assert!(out.contains("0 message(s) replayed"), "{out}");
        wait_depth(&channel, "render.batch.dead", 1).await;
        channel
            .queue_bind(
                topology::RENDER_BATCH,
                topology::WORK_EXCHANGE,
                topology::RENDER_BATCH,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();

        // Replayed to its original route, without its death record; the dead queue is empty.
        let (ok, out, err) = admin(
            &vhost,
            &[
                "dlq",
                "replay",
                "--queue",
                "render.batch.dead",
                "--limit",
                "5",
            ],
        );
        assert!(ok, "{out} {err}");
        assert!(
            out.contains("1 message(s) replayed from render.batch.dead"),
            "{out}"
        );
        assert!(out.contains(&format!("job={job_id}")), "{out}");
        assert_eq!(depth(&channel, "render.batch.dead").await, 0);
        let again = channel
            .basic_get(topology::RENDER_BATCH, BasicGetOptions { no_ack: false })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&again.delivery.data), body);
        let props = &again.delivery.properties;
        assert_eq!(props.message_id().as_ref().map(|s| s.as_str()), Some("m-1"));
        assert_eq!(
            props.kind().as_ref().map(|s| s.as_str()),
            Some("render.job")
        );
        assert!(
            props
                .headers()
                .as_ref()
                .is_none_or(|h| !h.inner().contains_key("x-death")),
            "{props:?}"
        );
        again
            .delivery
            .ack(BasicAckOptions::default())
            .await
            .unwrap();
        let (ok, out, _) = admin(&vhost, &["dlq", "list"]);
        assert!(
            ok && out.contains("render.batch.dead\t0 message(s)"),
            "{out}"
        );

        let _ = conn.close(200, "done").await;
        management(reqwest::Method::DELETE, &format!("/vhosts/{vhost}"), None).await;
    }
}
