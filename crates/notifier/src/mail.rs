//! Completion emails: built from the domain's content model, sent over SMTP or written to a
//! folder.

use std::path::PathBuf;

use enconvert_domain::notify::EmailContent;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

pub enum Mailer {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Folder(AsyncFileTransport<Tokio1Executor>, PathBuf),
}

impl Mailer {
    pub fn smtp(url: &str) -> anyhow::Result<Self> {
        Ok(Mailer::Smtp(
            AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?.build(),
        ))
    }

    pub fn folder(dir: PathBuf) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Mailer::Folder(
            AsyncFileTransport::<Tokio1Executor>::new(&dir),
            dir,
        ))
    }

    pub async fn send(
        &self,
        from: &Mailbox,
        to: &str,
        content: &EmailContent,
    ) -> anyhow::Result<()> {
        let to: Mailbox = to.parse()?;
        let message = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(content.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                text(content),
                html(content),
            ))?;
        match self {
            Mailer::Smtp(t) => {
                t.send(message).await?;
            }
            Mailer::Folder(t, dir) => {
                let id = t.send(message).await?;
                tracing::info!(file = %dir.join(format!("{id}.eml")).display(), "email written to the mail folder (SMTP_URL is unset)");
            }
        }
        Ok(())
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

pub fn text(c: &EmailContent) -> String {
    let mut out = format!("{}\n\nJob ID: {}\n", c.subject, c.job_id);
    if let Some(b) = &c.batch_id {
        out.push_str(&format!("Batch ID: {b}\n"));
    }
    out.push_str(&format!("Status: {}\n", c.status_text));
    if let Some(rows) = &c.tasks {
        out.push_str("\n#  URL  Status  Output file\n");
        for r in rows {
            out.push_str(&format!(
                "{}  {}  {}  {}\n",
                r.number, r.url, r.status, r.filename
            ));
        }
    }
    out.push_str(&format!(
        "\nDownload your files from your dashboard: {}\n",
        c.dashboard_url
    ));
    out
}

pub fn html(c: &EmailContent) -> String {
    let colour = if c.success { "#1e8e3e" } else { "#d93025" };
    let mut out = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\">\
         <div class=\"banner\" style=\"background:{colour};color:#fff;padding:16px;font-size:18px\">{}</div>\
         <p>Job ID: <code>{}</code></p>",
        escape(&c.subject),
        escape(&c.job_id)
    );
    if let Some(b) = &c.batch_id {
        out.push_str(&format!("<p>Batch ID: <code>{}</code></p>", escape(b)));
    }
    out.push_str(&format!(
        "<p>Status: <strong>{}</strong></p>",
        escape(&c.status_text)
    ));
    if let Some(rows) = &c.tasks {
        out.push_str("<table border=\"1\" cellpadding=\"4\"><tr><th>#</th><th>URL</th><th>Status</th><th>Output file</th></tr>");
        for r in rows {
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                r.number,
                escape(&r.url),
                escape(&r.status),
                escape(&r.filename)
            ));
        }
        out.push_str("</table>");
    }
    out.push_str(&format!(
        "<p>Download your files from <a href=\"{}\">your dashboard</a>.</p></body></html>",
        escape(&c.dashboard_url)
    ));
    out
}
