//! Completion emails: the domain's content model rendered through askama templates
//! (`templates/completion.html` and `.txt`; the HTML one escapes every value), sent over
//! SMTP or written to a folder.

use std::path::PathBuf;

use askama::Template;
use enconvert_domain::notify::EmailContent;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// The banner's colour on success.
pub const GREEN: &str = "#1e8e3e";
/// The banner's colour on failure.
pub const RED: &str = "#d93025";

#[derive(Template)]
#[template(path = "completion.html")]
struct HtmlEmail<'a> {
    c: &'a EmailContent,
    colour: &'static str,
    headline: &'a str,
}

#[derive(Template)]
#[template(path = "completion.txt")]
struct TextEmail<'a> {
    c: &'a EmailContent,
    headline: &'a str,
}

fn colour(c: &EmailContent) -> &'static str {
    if c.success { GREEN } else { RED }
}

/// The HTML part.
pub fn html(c: &EmailContent) -> Result<String, askama::Error> {
    HtmlEmail {
        c,
        colour: colour(c),
        headline: &c.subject,
    }
    .render()
}

/// The plain-text alternative.
pub fn text(c: &EmailContent) -> Result<String, askama::Error> {
    let mut out = TextEmail {
        c,
        headline: &c.subject,
    }
    .render()?;
    out.push('\n');
    Ok(out)
}

/// Why an email was not sent.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct MailError {
    /// True when trying again cannot help (a malformed address, a permanent SMTP refusal).
    pub permanent: bool,
    pub message: String,
}

impl MailError {
    fn permanent(message: impl Into<String>) -> Self {
        MailError {
            permanent: true,
            message: message.into(),
        }
    }
}

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
    ) -> Result<(), MailError> {
        let to: Mailbox = to
            .parse()
            .map_err(|_| MailError::permanent("the recipient is not a valid address"))?;
        let render = |e: askama::Error| MailError::permanent(format!("template failed: {e}"));
        let message = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(content.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                text(content).map_err(render)?,
                html(content).map_err(render)?,
            ))
            .map_err(|e| MailError::permanent(format!("could not build the email: {e}")))?;
        match self {
            Mailer::Smtp(t) => {
                t.send(message).await.map_err(|e| MailError {
                    // Connection failures and 4xx replies are worth another try.
                    permanent: e.is_permanent(),
                    message: format!("SMTP: {e}"),
                })?;
            }
            Mailer::Folder(t, dir) => {
                let id = t.send(message).await.map_err(|e| MailError {
                    permanent: false,
                    message: format!("mail folder: {e}"),
                })?;
                tracing::info!(file = %dir.join(format!("{id}.eml")).display(), "email written to the mail folder (SMTP_URL is unset)");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn zip_content() -> EmailContent {
        EmailContent::for_zip_batch(
            "b-1",
            true,
            "https://dash.example/dashboard/batches/b-1?a=1&b=2",
            &[
                (
                    "https://example.com/<script>alert(1)</script>".to_string(),
                    true,
                    Some("a&b.pdf".to_string()),
                ),
                (
                    format!("https://example.com/{}", "x".repeat(80)),
                    false,
                    None,
                ),
            ],
        )
    }

    #[test]
    fn html_escapes_every_value_and_colours_the_banner() {
        let h = html(&zip_content()).unwrap();
        assert!(h.contains(&format!("background:{GREEN}")), "{h}");
        assert!(!h.contains("<script>"), "{h}");
        assert!(h.contains("&#60;script&#62;"), "{h}");
        assert!(h.contains("a&#38;b.pdf"), "{h}");
        assert!(h.contains("href=\"https://dash.example/dashboard/batches/b-1?a=1&#38;b=2\""));
        assert_eq!(h.matches("<tr style=\"border-top").count(), 2);
        let failed = EmailContent::for_job("j-1", Some("b-1"), false, "https://d/batches/b-1");
        let h = html(&failed).unwrap();
        assert!(h.contains(&format!("background:{RED}")));
        assert!(
            !h.contains("<table class=\"tasks\""),
            "no table in individual mode"
        );
        assert!(h.contains("<code class=\"job-id\">j-1</code>"));
        assert!(h.contains("<code class=\"batch-id\">b-1</code>"));
    }

    #[test]
    fn text_has_the_same_facts_unescaped() {
        let t = text(&zip_content()).unwrap();
        assert!(t.starts_with("Your batch b-1 is complete: 1 of 2 succeeded\n\nJob ID: b-1\nBatch ID: b-1\nStatus: success\n"), "{t}");
        assert!(
            t.contains("1  https://example.com/<script>alert(1)</script>  success  a&b.pdf\n"),
            "{t}"
        );
        let cut = enconvert_domain::notify::truncate_url(&format!(
            "https://example.com/{}",
            "x".repeat(80)
        ));
        assert_eq!(cut.chars().count(), 50);
        assert!(t.contains(&format!("2  {cut}  failed  -\n")), "{t}");
        assert!(
            t.ends_with("https://dash.example/dashboard/batches/b-1?a=1&b=2\n"),
            "{t}"
        );
        let j = text(&EmailContent::for_job(
            "j-1",
            Some("b-1"),
            true,
            "https://d",
        ))
        .unwrap();
        assert!(!j.contains("URL"), "{j}");
    }
}
