//! The admin CLI against a real PostgreSQL: projects, plans and keys.

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

fn admin(db: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_enconvert-admin"))
        .args(args)
        .env(
            "DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:5432/{db}"),
        )
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
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

    psql(&format!("DROP DATABASE {db} WITH (FORCE)"));
}
