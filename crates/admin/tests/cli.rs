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
