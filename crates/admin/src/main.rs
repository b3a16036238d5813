//! `enconvert-admin`: projects, plans and keys, and the dead-letter queues, for operators.
//!
//! New keys are printed once and never stored in clear. A new webhook secret is printed
//! by `rotate-webhook-secret`; `show-webhook-secret` prints the current one. `dlq list`
//! and `dlq replay` inspect and replay dead letters (RabbitMQ, `AMQP_URL`).

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use enconvert_config::{Settings, telemetry};
use enconvert_db::models::Project;
use enconvert_db::{Conn, Db, keys, projects, webhook_secrets};
use enconvert_domain::request::KeyKind;
use enconvert_queue::{AmqpConfig, dead};
use secrecy::ExposeSecret;

#[derive(Parser)]
#[command(
    name = "enconvert-admin",
    version,
    about = "Administer Enconvert projects and keys"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending database migrations.
    Migrate,
    /// Create a project and print its new private and public keys (shown once).
    CreateProject {
        #[arg(long)]
        name: String,
        #[arg(long)]
        owner_email: String,
        #[arg(long, default_value = "free")]
        plan: String,
    },
    /// List projects.
    ListProjects,
    /// Change the project owner's email address (where completion emails go by default).
    SetOwnerEmail {
        /// Project id or name.
        project: String,
        email: String,
    },
    /// Change a project's plan.
    SetPlan {
        /// Project id or name.
        project: String,
        plan: String,
    },
    /// Turn the completion email to the project owner's address on or off (requests that
    /// name a notification_email still send it).
    SetDefaultEmail {
        /// Project id or name.
        project: String,
        #[arg(value_enum)]
        state: OnOff,
    },
    /// Print the project's current webhook signing secret (created if it has none yet).
    ShowWebhookSecret {
        /// Project id or name.
        project: String,
    },
    /// Replace the project's webhook signing secret and print the new one. The
    /// old secret keeps signing, next to the new one, for the grace period.
    RotateWebhookSecret {
        /// Project id or name.
        project: String,
        #[arg(long, default_value_t = 24)]
        grace_hours: u64,
    },
    /// List keys whose display prefix starts with PREFIX (e.g. `sk_live_AbCd`).
    ListKeys { prefix: String },
    /// Create a new key for a project and print it once.
    CreateKey {
        /// Project id or name.
        project: String,
        #[arg(long, value_parser = ["private", "public"], default_value = "private")]
        kind: String,
    },
    /// Revoke a key by its id; it then gets the same 401 as an unknown key.
    RevokeKey { key_id: uuid::Uuid },
    /// End every dashboard session of a project (each person must sign in again).
    RevokeSessions {
        /// Project id or name.
        project: String,
    },
    /// Ensure the development project (plan enterprise) with ENCONVERT_DEV_API_KEY as its key.
    EnsureDevProject {
        #[arg(long, default_value = "dev@enconvert.localhost")]
        owner_email: String,
    },
    /// Dead-letter queues: inspect and replay.
    #[command(subcommand)]
    Dlq(Dlq),
}

#[derive(Subcommand)]
enum Dlq {
    /// Messages in each `.dead` queue, and a peek at the first ones (ids, type, why they
    /// died; never a body). Peeked messages stay in the queue.
    List {
        /// One queue (`render.batch` or `render.batch.dead`); all by default.
        #[arg(long)]
        queue: Option<String>,
        /// Messages shown per queue.
        #[arg(long, default_value_t = 10)]
        peek: usize,
    },
    /// Publish dead letters back to their original route; each leaves the dead-letter queue
    /// only once RabbitMQ has confirmed its publish.
    Replay {
        /// The queue (`render.batch` or `render.batch.dead`).
        #[arg(long)]
        queue: String,
        /// At most this many messages (all by default).
        #[arg(long)]
        limit: Option<usize>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::from_env()?;
    // Logs to stderr: stdout carries only what a command prints (keys, secrets).
    telemetry::init_stderr(settings.log_json);
    if let Command::Dlq(cmd) = cli.command {
        // RabbitMQ only: no database needed.
        return dlq(&settings, cmd).await;
    }
    let url = settings.database_url.expose_secret().to_string();
    enconvert_db::migrate(&url, std::time::Duration::from_secs(30)).await?;
    if matches!(cli.command, Command::Migrate) {
        println!("migrations applied");
        return Ok(());
    }
    let db = Db::new(&url, 2)?;
    let mut conn = db.conn().await?;
    match cli.command {
        Command::Migrate => {}
        Command::CreateProject {
            name,
            owner_email,
            plan,
        } => {
            if !email_address::EmailAddress::is_valid(&owner_email) {
                bail!("--owner-email is not a valid email address");
            }
            if !projects::plan_exists(&mut conn, &plan).await? {
                bail!("no plan named `{plan}`");
            }
            let project = projects::create_project(&mut conn, &name, &owner_email, &plan)
                .await
                .with_context(|| {
                    format!("could not create project `{name}` (is the name taken?)")
                })?;
            println!(
                "project {} ({}) created on plan {}",
                project.name, project.id, project.plan
            );
            for kind in [KeyKind::Private, KeyKind::Public] {
                let key = new_key(&mut conn, &project, kind).await?;
                println!("{} key: {key}", kind.as_str());
            }
            println!("Store these keys now: they are not shown again.");
        }
        Command::ListProjects => {
            for p in projects::list_projects(&mut conn).await? {
                println!(
                    "{}\t{}\t{}\tdefault-email={}",
                    p.id, p.name, p.plan, p.default_email_enabled
                );
            }
        }
        Command::SetOwnerEmail { project, email } => {
            let p = find(&mut conn, &project).await?;
            if !email_address::EmailAddress::is_valid(&email) {
                bail!("the owner email is not a valid email address");
            }
            projects::set_owner_email(&mut conn, p.id, &email).await?;
            println!("project {}: owner email changed", p.name);
        }
        Command::SetPlan { project, plan } => {
            let p = find(&mut conn, &project).await?;
            if !projects::plan_exists(&mut conn, &plan).await? {
                bail!("no plan named `{plan}`");
            }
            projects::set_plan(&mut conn, p.id, &plan).await?;
            println!("project {} is now on plan {plan}", p.name);
        }
        Command::SetDefaultEmail { project, state } => {
            let p = find(&mut conn, &project).await?;
            let enabled = matches!(state, OnOff::On);
            projects::set_default_email(&mut conn, p.id, enabled).await?;
            println!(
                "project {}: completion emails to the owner's address are {}",
                p.name,
                if enabled { "on" } else { "off" }
            );
        }
        Command::ShowWebhookSecret { project } => {
            let p = find(&mut conn, &project).await?;
            let secret = webhook_secrets::current(&mut conn, p.id).await?;
            println!("{secret}");
        }
        Command::RotateWebhookSecret {
            project,
            grace_hours,
        } => {
            let p = find(&mut conn, &project).await?;
            let grace = std::time::Duration::from_secs(grace_hours.saturating_mul(3600));
            let secret = webhook_secrets::rotate(&mut conn, p.id, grace).await?;
            println!("{secret}");
            eprintln!(
                "project {}: new webhook signing secret printed above; the previous one keeps signing for {grace_hours} h",
                p.name
            );
        }
        Command::ListKeys { prefix } => {
            for k in projects::keys_by_prefix(&mut conn, &prefix).await? {
                let state = if k.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    k.id, k.prefix, k.kind, k.project_id, state
                );
            }
        }
        Command::CreateKey { project, kind } => {
            let p = find(&mut conn, &project).await?;
            let kind = KeyKind::parse(&kind).context("--kind is private or public")?;
            let key = new_key(&mut conn, &p, kind).await?;
            println!("{} key: {key}", kind.as_str());
            println!("Store this key now: it is not shown again.");
        }
        Command::RevokeKey { key_id } => {
            if projects::revoke_key(&mut conn, key_id).await? {
                println!("key {key_id} revoked");
            } else {
                bail!("no active key {key_id}");
            }
        }
        Command::RevokeSessions { project } => {
            let p = find(&mut conn, &project).await?;
            let n = enconvert_db::sessions::revoke_project(&mut conn, p.id).await?;
            println!("project {}: {n} dashboard sessions ended", p.name);
        }
        Command::EnsureDevProject { owner_email } => {
            let key = settings
                .api
                .dev_api_key
                .as_ref()
                .context("ENCONVERT_DEV_API_KEY is not set")?
                .expose_secret()
                .to_string();
            if keys::kind_of(&key) != Some(KeyKind::Private) {
                bail!(
                    "ENCONVERT_DEV_API_KEY must look like sk_live_ followed by at least 12 characters"
                );
            }
            let project = match projects::find_project_by_name(&mut conn, "development").await? {
                Some(p) => p,
                None => {
                    projects::create_project(&mut conn, "development", &owner_email, "enterprise")
                        .await?
                }
            };
            let hash = keys::hash(&key);
            match projects::key_by_hash(&mut conn, &hash).await? {
                Some(k) if k.project_id != project.id => {
                    bail!("ENCONVERT_DEV_API_KEY belongs to another project")
                }
                Some(_) => {}
                None => {
                    projects::insert_key(
                        &mut conn,
                        project.id,
                        KeyKind::Private.as_str(),
                        &keys::display_prefix(&key),
                        hash,
                    )
                    .await?;
                }
            }
            println!(
                "development project {} ready (plan {})",
                project.id, project.plan
            );
        }
        Command::Dlq(_) => {}
    }
    Ok(())
}

fn queue_arg(name: &str) -> anyhow::Result<&'static str> {
    dead::source_of(name).with_context(|| {
        format!(
            "no queue `{name}`; one of: {}",
            dead::source_queues().join(", ")
        )
    })
}

fn show(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("-")
}

async fn dlq(settings: &Settings, cmd: Dlq) -> anyhow::Result<()> {
    let cfg = AmqpConfig {
        url: settings.amqp_url.expose_secret().to_string(),
        connection_name: enconvert_queue::process_label("admin"),
        delivery_limit: settings.delivery_limit,
        broker: Default::default(),
    };
    let conn = enconvert_queue::open(&cfg)
        .await
        .context("cannot reach RabbitMQ (AMQP_URL)")?;
    let result = match cmd {
        Dlq::List { queue, peek } => {
            let only = queue.as_deref().map(queue_arg).transpose()?;
            for q in dead::depths(&conn, only).await? {
                let Some(n) = q.messages else {
                    println!("{}	not declared (no process has started yet)", q.name);
                    continue;
                };
                println!("{}	{n} message(s)", q.name);
                if n == 0 || peek == 0 {
                    continue;
                }
                for m in dead::peek(&conn, q.source, peek).await? {
                    println!(
                        "  message={} type={} batch={} job={} reason={} queue={} deaths={} died_at={}",
                        show(&m.message_id),
                        show(&m.message_type),
                        show(&m.batch_id),
                        show(&m.job_id),
                        show(&m.reason),
                        show(&m.died_in),
                        m.deaths,
                        m.died_at.map_or("-".to_string(), |t| t.to_string()),
                    );
                }
            }
            Ok(())
        }
        Dlq::Replay { queue, limit } => {
            let source = queue_arg(&queue)?;
            let done = dead::replay(&conn, source, limit.unwrap_or(usize::MAX)).await?;
            for m in &done.messages {
                println!(
                    "replayed message={} type={} batch={} job={}",
                    show(&m.message_id),
                    show(&m.message_type),
                    show(&m.batch_id),
                    show(&m.job_id)
                );
            }
            println!(
                "{} message(s) replayed from {}",
                done.messages.len(),
                enconvert_queue::topology::dead_letter_queue(source)
            );
            match done.stopped {
                Some(why) => Err(anyhow::anyhow!(
                    "stopped: {why}; the message stays in the dead-letter queue"
                )),
                None => Ok(()),
            }
        }
    };
    let _ = conn.close(200, "done").await;
    result
}

async fn new_key(conn: &mut Conn, project: &Project, kind: KeyKind) -> anyhow::Result<String> {
    let (key, hash) = keys::generate(kind);
    projects::insert_key(
        conn,
        project.id,
        kind.as_str(),
        &keys::display_prefix(&key),
        hash,
    )
    .await?;
    Ok(key)
}

async fn find(conn: &mut Conn, id_or_name: &str) -> anyhow::Result<Project> {
    let found = match uuid::Uuid::parse_str(id_or_name) {
        Ok(id) => projects::find_project(conn, id).await?,
        Err(_) => projects::find_project_by_name(conn, id_or_name).await?,
    };
    found.with_context(|| format!("no project `{id_or_name}`"))
}
