//! The `enconvert` binary against the real stack (api, worker with Chromium, notifier on a
//! private PostgreSQL database and RabbitMQ vhost), converting pages served on 127.0.0.1.
//! Each test checks the files the command writes, what it prints and its exit status.

#![expect(clippy::unwrap_used, reason = "tests")]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use enconvert_e2e::peers::{HttpPeer, Reply};
use enconvert_e2e::{Stack, StackOptions, pdf_info, pdf_text};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The most one command may take on a loaded machine.
const COMMAND_LIMIT: Duration = Duration::from_secs(300);

struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

fn command(base: &str, key: Option<&str>, args: &[&str], dir: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_enconvert"));
    cmd.args(args)
        .current_dir(dir)
        .env("ENCONVERT_BASE_URL", base)
        .env_remove("ENCONVERT_API_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(key) = key {
        cmd.env("ENCONVERT_API_KEY", key);
    }
    cmd
}

/// Runs `enconvert ARGS` in `dir` with the stack's base URL and `key` in the environment.
async fn enconvert(base: &str, key: Option<&str>, args: &[&str], dir: &Path) -> Run {
    let out = tokio::time::timeout(COMMAND_LIMIT, command(base, key, args, dir).output())
        .await
        .unwrap_or_else(|_| panic!("enconvert {args:?} ran past {COMMAND_LIMIT:?}"))
        .unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "enconvert {args:?} panicked: {}",
        run.stderr
    );
    run
}

fn page(text: &str) -> Reply {
    Reply::html(&format!(
        "<!doctype html><html><head><title>{text}</title></head><body style=\"margin:0\"><h1>{text}</h1><p>Rendered for the CLI test.</p></body></html>"
    ))
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("enc-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn png_size(data: &[u8]) -> (u32, u32) {
    let reader = png::Decoder::new(std::io::Cursor::new(data))
        .read_info()
        .unwrap();
    (reader.info().width, reader.info().height)
}

/// The entries of a ZIP file: (name, bytes).
async fn zip_entries(path: &Path) -> Vec<(String, Vec<u8>)> {
    let data = std::fs::read(path).unwrap();
    let reader = async_zip::base::read::mem::ZipFileReader::new(data)
        .await
        .unwrap();
    let mut out = Vec::new();
    for i in 0..reader.file().entries().len() {
        let name = reader.file().entries()[i]
            .filename()
            .as_str()
            .unwrap()
            .to_string();
        let mut entry = reader.reader_with_entry(i).await.unwrap();
        let mut data = Vec::new();
        entry.read_to_end_checked(&mut data).await.unwrap();
        out.push((name, data));
    }
    out
}

/// The files in `dir`, sorted.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pdf_and_screenshot_write_their_files_and_errors_say_why() {
    let stack = Stack::start(StackOptions::default()).await;
    let site = HttpPeer::start().await;
    site.route("/invoice.html", vec![page("INVOICE-4711")]);
    site.route("/broken", vec![Reply::status(503)]);
    let project = stack.project("starter", "owner@example.com").await;
    let key = project.private_key.as_str();
    let base = stack.base.as_str();
    let dir = temp_dir();
    let invoice = site.url("/invoice.html");

    // A PDF, one tall page by default; the file holds the page's text.
    let run = enconvert(
        base,
        Some(key),
        &["pdf", &invoice, "-o", "out/invoice.pdf"],
        &dir,
    )
    .await;
    assert!(
        run.code == 2 && run.stderr.contains("cannot write a file in out"),
        "a missing directory is refused before converting: {} {}",
        run.code,
        run.stderr
    );
    let run = enconvert(
        base,
        Some(key),
        &["pdf", &invoice, "-o", "invoice.pdf"],
        &dir,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("saved invoice.pdf"), "{}", run.stderr);
    let pdf = std::fs::read(dir.join("invoice.pdf")).unwrap();
    assert!(pdf.starts_with(b"%PDF"));
    assert!(pdf_text(&pdf).contains("INVOICE-4711"));

    // Paper options reach the renderer: A4 landscape is wider than tall, on paginated pages.
    let run = enconvert(
        base,
        Some(key),
        &[
            "pdf",
            &invoice,
            "-o",
            "-",
            "--landscape",
            "--page-size",
            "A4",
        ],
        &dir,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with(b"%PDF"),
        "-o - writes the PDF to stdout"
    );
    let (pages, w, h) = pdf_info(&run.stdout);
    assert!(pages >= 1 && w > h, "landscape A4: {w} x {h}");
    assert!((w - 842.0).abs() < 2.0, "A4 is 842 points long: {w}");

    // Without -o: the name the service gave the file, in the current directory.
    let sub = dir.join("default-name");
    std::fs::create_dir_all(&sub).unwrap();
    let run = enconvert(
        base,
        Some(key),
        &["pdf", &invoice, "--filename", "my-invoice"],
        &sub,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let names = files_in(&sub);
    assert!(
        names.len() == 1 && names[0].starts_with("my-invoice_") && names[0].ends_with(".pdf"),
        "{names:?}"
    );

    // A screenshot at the viewport's size, with a public key given as a flag and --quiet.
    let run = enconvert(
        base,
        None,
        &[
            "--api-key",
            &project.public_key,
            "-q",
            "screenshot",
            &invoice,
            "-o",
            "shot.png",
            "--viewport-width",
            "800",
            "--viewport-height",
            "600",
            "--viewport-only",
        ],
        &dir,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        png_size(&std::fs::read(dir.join("shot.png")).unwrap()),
        (800, 600)
    );
    assert!(run.stderr.is_empty(), "--quiet: {}", run.stderr);

    // A page that cannot be converted: exit 1, the API's reason, no file.
    let run = enconvert(
        base,
        Some(key),
        &["pdf", &site.url("/broken"), "-o", "broken.pdf"],
        &dir,
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("HTTP 503"), "{}", run.stderr);
    assert!(!dir.join("broken.pdf").exists());

    // A bad key: the API's detail, exit 2, and the key is never printed.
    let bad_key = "sk_live_not-a-real-key-0123456789";
    let run = enconvert(base, Some(bad_key), &["pdf", &invoice, "-o", "x.pdf"], &dir).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "Missing, unknown or revoked API key. Send a valid key in the X-API-Key header."
        ),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("HTTP 401"), "{}", run.stderr);
    assert!(!run.stderr.contains(bad_key) && !run.out().contains(bad_key));
    assert!(!dir.join("x.pdf").exists());

    // A refused option: the API's detail names the field.
    let run = enconvert(
        base,
        Some(key),
        &[
            "screenshot",
            &invoice,
            "-o",
            "y.png",
            "--viewport-width",
            "100",
        ],
        &dir,
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("viewport_width") && run.stderr.contains("HTTP 400"),
        "{}",
        run.stderr
    );

    // Usage errors: clear messages, exit 2, no request needed.
    let run = enconvert(base, None, &["pdf", &invoice, "-o", "z.pdf"], &dir).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("ENCONVERT_API_KEY"), "{}", run.stderr);
    let run = enconvert(
        base,
        Some(key),
        &["pdf", "example.com/page", "-o", "z.pdf"],
        &dir,
    )
    .await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("`example.com/page` is not a URL"),
        "{}",
        run.stderr
    );
    let run = enconvert(
        base,
        Some(key),
        &["pdf", "ftp://example.com/", "-o", "z.pdf"],
        &dir,
    )
    .await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("not an http(s) URL"), "{}", run.stderr);
    let run = enconvert(base, Some(key), &["pdf"], &dir).await;
    assert_eq!(run.code, 2, "a missing argument is a usage error");
    let run = enconvert(
        "http://127.0.0.1:9",
        Some(key),
        &["pdf", &invoice, "-o", "z.pdf"],
        &dir,
    )
    .await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("could not connect"), "{}", run.stderr);
    let run = enconvert("not a url", Some(key), &["status", "x"], &dir).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("base URL"), "{}", run.stderr);
    assert!(!dir.join("z.pdf").exists());
    let leftovers: Vec<String> = files_in(&dir)
        .into_iter()
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "no half-written files: {leftovers:?}");

    for args in [&["--help"][..], &["pdf", "--help"], &["batch"]] {
        let run = enconvert(base, Some(key), args, &dir).await;
        assert!(
            !run.out().contains(key) && !run.stderr.contains(key),
            "help and usage never show the key"
        );
    }
    let run = enconvert(base, None, &["--help"], &dir).await;
    assert_eq!(run.code, 0);
    for documented in ["ENCONVERT_API_KEY", "ENCONVERT_BASE_URL", "Exit status"] {
        assert!(run.out().contains(documented), "{}", run.out());
    }

    stack.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_download_what_succeeded_and_report_what_failed() {
    let stack = Stack::start(StackOptions::default()).await;
    let site = HttpPeer::start().await;
    site.route("/", vec![page("HOME-PAGE")]);
    site.route("/docs/intro.html", vec![page("INTRO-PAGE")]);
    site.route("/gone", vec![Reply::status(404)]);
    let project = stack.project("pro", "owner@example.com").await;
    let key = project.private_key.as_str();
    let base = stack.base.as_str();
    let dir = temp_dir();
    let (home, intro, gone) = (
        site.url("/"),
        site.url("/docs/intro.html"),
        site.url("/gone"),
    );
    let host = format!("127.0.0.1-{}", site.addr.port());

    // A batch with a failing URL: the good files are written, the failure is named, exit 1.
    std::fs::write(
        dir.join("urls.txt"),
        format!("# pages to convert\n{home}\n\n{intro}\n{gone}\n"),
    )
    .unwrap();
    let run = enconvert(
        base,
        Some(key),
        &["batch", "urls.txt", "--wait", "-o", "out"],
        &dir,
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("failed: {gone}: The page answered HTTP 404")),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("[="),
        "no progress bar when stderr is not a terminal: {}",
        run.stderr
    );
    let out = dir.join("out");
    assert_eq!(
        files_in(&out),
        vec![format!("{host}.pdf"), format!("{host}_docs_intro.pdf")]
    );
    assert!(
        pdf_text(&std::fs::read(out.join(format!("{host}.pdf"))).unwrap()).contains("HOME-PAGE")
    );
    assert!(
        pdf_text(&std::fs::read(out.join(format!("{host}_docs_intro.pdf"))).unwrap())
            .contains("INTRO-PAGE")
    );

    // Without --wait: the batch id on stdout; then its status, for people and as JSON.
    let run = enconvert(base, Some(key), &["batch", "urls.txt"], &dir).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let batch_id = run.out().trim().to_string();
    assert_eq!(batch_id.len(), 36, "a batch id: {}", run.out());
    let api = stack
        .wait_batch(key, &batch_id, Duration::from_secs(180))
        .await;
    assert_eq!(api["status"], "partial", "{api}");
    let run = enconvert(base, Some(key), &["status", &batch_id], &dir).await;
    assert_eq!(run.code, 1, "a partial batch: {}", run.out());
    let text = run.out();
    assert!(
        text.contains(&format!("batch {batch_id}: partial")),
        "{text}"
    );
    assert!(
        text.contains("3 item(s): 2 succeeded, 1 failed, 0 in progress"),
        "{text}"
    );
    assert!(text.contains("The page answered HTTP 404"), "{text}");
    assert!(text.contains(&gone) && text.contains(&intro), "{text}");
    let run = enconvert(base, Some(key), &["status", &batch_id, "--json"], &dir).await;
    let json: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(json["batch_id"], batch_id.as_str());
    assert_eq!(json["failed"], 1);
    assert_eq!(json["items"].as_array().unwrap().len(), 3);
    // One job of it, by its id.
    let job_id = api["items"][0]["job_id"].as_str().unwrap().to_string();
    let run = enconvert(base, Some(key), &["status", "--job", &job_id], &dir).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.out().contains(&format!("job {job_id}: success")),
        "{}",
        run.out()
    );
    // Unknown batches: the API's 404 detail.
    let run = enconvert(
        base,
        Some(key),
        &["status", "00000000-0000-0000-0000-000000000000"],
        &dir,
    )
    .await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("HTTP 404"), "{}", run.stderr);

    // A public key cannot start batches: the API's 403 detail.
    let run = enconvert(
        base,
        Some(&project.public_key),
        &["batch", "urls.txt"],
        &dir,
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("public key") && run.stderr.contains("HTTP 403"),
        "{}",
        run.stderr
    );

    // --zip: one archive with one screenshot per URL.
    std::fs::write(dir.join("good.txt"), format!("{home}\n{intro}\n")).unwrap();
    let run = enconvert(
        base,
        Some(key),
        &[
            "batch",
            "good.txt",
            "--zip",
            "--wait",
            "--kind",
            "screenshot",
            "--viewport-width",
            "640",
            "-o",
            "zipped",
        ],
        &dir,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let zips = files_in(&dir.join("zipped"));
    assert!(
        zips.len() == 1 && zips[0].starts_with("batch-") && zips[0].ends_with(".zip"),
        "{zips:?}"
    );
    let entries = zip_entries(&dir.join("zipped").join(&zips[0])).await;
    assert_eq!(
        entries.len(),
        2,
        "{:?}",
        entries.iter().map(|e| &e.0).collect::<Vec<_>>()
    );
    for (name, data) in &entries {
        assert!(name.ends_with(".png"), "{name}");
        assert_eq!(png_size(data).0, 640, "{name}");
    }

    // Bad lists: missing, empty, not URLs, --zip with one URL.
    let run = enconvert(base, Some(key), &["batch", "missing.txt"], &dir).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("cannot read missing.txt"),
        "{}",
        run.stderr
    );
    std::fs::write(dir.join("empty.txt"), "\n# nothing here\n\n").unwrap();
    let run = enconvert(base, Some(key), &["batch", "empty.txt", "--wait"], &dir).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("empty.txt holds no URL"),
        "{}",
        run.stderr
    );
    std::fs::write(dir.join("bad.txt"), format!("{home}\nnot a url\n")).unwrap();
    let run = enconvert(base, Some(key), &["batch", "bad.txt"], &dir).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("line 2: `not a url` is not a URL"),
        "{}",
        run.stderr
    );
    std::fs::write(dir.join("one.txt"), format!("{home}\n")).unwrap();
    let run = enconvert(base, Some(key), &["batch", "one.txt", "--zip"], &dir).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("--zip needs at least two URLs"),
        "{}",
        run.stderr
    );
    let run = enconvert(
        base,
        Some(key),
        &["batch", "good.txt", "--landscape", "--kind", "screenshot"],
        &dir,
    )
    .await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("PDF options"), "{}", run.stderr);

    stack.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn website_converts_a_small_site_into_one_zip() {
    let stack = Stack::start(StackOptions::default()).await;
    let site = HttpPeer::start().await;
    let link_page = |title: &str, links: &[&str]| {
        let anchors: String = links
            .iter()
            .map(|l| format!("<li><a href=\"{l}\">{l}</a></li>"))
            .collect();
        Reply::html(&format!(
            "<!doctype html><html><head><title>{title}</title></head><body><h1>{title}</h1><ul>{anchors}</ul></body></html>"
        ))
    };
    site.route("/robots.txt", vec![Reply::status(404)]);
    site.route("/sitemap.xml", vec![Reply::status(404)]);
    site.route(
        "/",
        vec![link_page("SITE-HOME", &["/about.html", "/docs/intro.html"])],
    );
    site.route("/about.html", vec![link_page("SITE-ABOUT", &["/"])]);
    site.route(
        "/docs/intro.html",
        vec![link_page("SITE-INTRO", &["/missing"])],
    );
    site.route("/missing", vec![Reply::status(404)]);
    let project = stack.project("pro", "owner@example.com").await;
    let key = project.private_key.as_str();
    let base = stack.base.as_str();
    let dir = temp_dir();

    // A full crawl: every page in one ZIP; the page that answers 404 fails (exit 1).
    let run = enconvert(
        base,
        Some(key),
        &[
            "website",
            &site.url("/"),
            "--mode",
            "full",
            "--wait",
            "-o",
            "site.zip",
        ],
        &dir,
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "failed: {}: The page answered HTTP 404",
            site.url("/missing")
        )),
        "{}",
        run.stderr
    );
    let mut entries = zip_entries(&dir.join("site.zip")).await;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names, vec!["about.pdf", "docs_intro.pdf", "index.pdf"]);
    for ((_, pdf), text) in entries
        .iter()
        .zip(["SITE-ABOUT", "SITE-INTRO", "SITE-HOME"])
    {
        assert!(pdf_text(pdf).contains(text), "{text}");
    }

    // Everything excluded but the pages that work: exit 0, default name from the host.
    let run = enconvert(
        base,
        Some(key),
        &[
            "website",
            &site.url("/"),
            "--mode",
            "full",
            "--exclude",
            "/missing",
            "--wait",
        ],
        &dir,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let entries = zip_entries(&dir.join("127.0.0.1.zip")).await;
    assert_eq!(entries.len(), 3);

    // Sitemap mode on a site without a sitemap: nothing to convert, the reason, exit 1.
    let run = enconvert(
        base,
        Some(key),
        &[
            "website",
            &site.url("/"),
            "--mode",
            "sitemap",
            "--wait",
            "-o",
            "none.zip",
        ],
        &dir,
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("failed:"), "{}", run.stderr);
    assert!(!dir.join("none.zip").exists());

    // A plan without website discovery: the API's 403 detail, exit 2.
    let free = stack.project("free", "owner@example.com").await;
    let run = enconvert(
        base,
        Some(&free.private_key),
        &["website", &site.url("/"), "--wait", "-o", "free.zip"],
        &dir,
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("not available on your current plan"),
        "{}",
        run.stderr
    );

    stack.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_conversions_wait_time_out_and_stop_on_ctrl_c() {
    let stack = Stack::start(StackOptions {
        sync_timeout: Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    let site = HttpPeer::start().await;
    site.route(
        "/slow",
        vec![page("SLOW-PAGE").with_delay(Duration::from_secs(3))],
    );
    site.route(
        "/slower",
        vec![page("SLOWER-PAGE").with_delay(Duration::from_secs(25))],
    );
    let project = stack.project("starter", "owner@example.com").await;
    let key = project.private_key.as_str();
    let base = stack.base.as_str();
    let dir = temp_dir();

    // The service stops waiting (504); the CLI polls the job by its id and still writes it.
    let run = enconvert(
        base,
        Some(key),
        &["pdf", &site.url("/slow"), "-o", "slow.pdf"],
        &dir,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the conversion goes on; waiting for job cli-"),
        "{}",
        run.stderr
    );
    assert!(pdf_text(&std::fs::read(dir.join("slow.pdf")).unwrap()).contains("SLOW-PAGE"));

    // --timeout: exit 2, and how to look the batch up later.
    std::fs::write(
        dir.join("slow.txt"),
        format!("{}\n{}\n", site.url("/slower"), site.url("/slow")),
    )
    .unwrap();
    let run = enconvert(
        base,
        Some(key),
        &[
            "batch",
            "slow.txt",
            "--wait",
            "--timeout",
            "3",
            "-o",
            "late",
        ],
        &dir,
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("still processing after 3 s"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("enconvert status "), "{}", run.stderr);

    // Ctrl-C while waiting: exit 130, the batch named, nothing half-written.
    let mut child = command(
        base,
        Some(key),
        &["batch", "slow.txt", "--wait", "-o", "interrupted"],
        &dir,
    )
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    let batch_line = tokio::time::timeout(COMMAND_LIMIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push_str(&line);
            seen.push('\n');
            if line.starts_with("batch ") {
                return line;
            }
        }
        panic!("no batch line: {seen}");
    })
    .await
    .unwrap();
    let batch_id = batch_line
        .trim_start_matches("batch ")
        .split(':')
        .next()
        .unwrap()
        .to_string();
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(COMMAND_LIMIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    let mut rest = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        rest.push_str(&line);
        rest.push('\n');
    }
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(rest.contains("interrupted"), "{rest}");
    assert!(
        rest.contains(&format!("enconvert status {batch_id}")),
        "{rest}"
    );
    assert!(
        files_in(&dir.join("interrupted")).is_empty(),
        "nothing written before the batch finished"
    );

    stack.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
