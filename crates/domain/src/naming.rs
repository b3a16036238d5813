//! Object keys and file names:
//! `{env}/files/{project_id}/{endpoint}/{stem}_{YYYYMMDD}_{HHMMSSmmm}.{ext}`.

use chrono::{DateTime, Utc};
use url::{Host, Url};
use uuid::Uuid;

use crate::request::Endpoint;

/// The default stem for a URL: the host's first meaningful label (`www.example.com` gives
/// `example`); IP addresses become `127_0_0_1`.
pub fn stem_from_url(url: &Url) -> String {
    let stem = match url.host() {
        Some(Host::Domain(d)) => {
            let d = d.trim_end_matches('.');
            let d = d.strip_prefix("www.").unwrap_or(d);
            d.split('.').next().unwrap_or(d).to_string()
        }
        Some(Host::Ipv4(ip)) => ip.to_string(),
        Some(Host::Ipv6(ip)) => ip.to_string(),
        None => String::new(),
    };
    let stem: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    if stem.trim_matches('_').is_empty() {
        "page".to_string()
    } else {
        stem
    }
}

/// `{stem}_{YYYYMMDD}_{HHMMSSmmm}.{ext}`.
pub fn file_name(stem: &str, at: DateTime<Utc>, ext: &str) -> String {
    format!("{stem}_{}.{ext}", at.format("%Y%m%d_%H%M%S%3f"))
}

/// The full object key of a file.
pub fn object_key(env: &str, project_id: Uuid, endpoint: Endpoint, filename: &str) -> String {
    format!("{env}/files/{project_id}/{}/{filename}", endpoint.as_str())
}

/// A ZIP entry name for a page, derived from its URL path, unique within `taken`.
pub fn zip_entry_name(
    url: &Url,
    ext: &str,
    taken: &mut std::collections::HashSet<String>,
) -> String {
    let path = url.path().trim_matches('/');
    let base: String = if path.is_empty() {
        "index".to_string()
    } else {
        let p = path.rsplit_once('.').map_or(path, |(stem, e)| {
            if e.len() <= 5 && !e.contains('/') {
                stem
            } else {
                path
            }
        });
        p.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(150)
            .collect()
    };
    let mut name = format!("{base}.{ext}");
    let mut n = 2;
    while !taken.insert(name.clone()) {
        name = format!("{base}_{n}.{ext}");
        n += 1;
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("url")
    }

    #[test]
    fn names_follow_the_contract() {
        let at = Utc
            .with_ymd_and_hms(2026, 4, 5, 12, 34, 56)
            .single()
            .expect("time")
            + chrono::Duration::milliseconds(789);
        assert_eq!(stem_from_url(&url("https://www.example.com/a")), "example");
        assert_eq!(stem_from_url(&url("http://127.0.0.1:8080/")), "127_0_0_1");
        let name = file_name("example", at, "pdf");
        assert_eq!(name, "example_20260405_123456789.pdf");
        assert_eq!(
            object_key("env", Uuid::nil(), Endpoint::UrlToPdf, &name),
            "env/files/00000000-0000-0000-0000-000000000000/url-to-pdf/example_20260405_123456789.pdf"
        );
    }

    #[test]
    fn zip_entries_do_not_collide() {
        let mut taken = Default::default();
        assert_eq!(
            zip_entry_name(&url("https://a.example/"), "pdf", &mut taken),
            "index.pdf"
        );
        assert_eq!(
            zip_entry_name(&url("https://a.example/docs/intro.html"), "pdf", &mut taken),
            "docs_intro.pdf"
        );
        assert_eq!(
            zip_entry_name(&url("https://a.example/docs/intro"), "pdf", &mut taken),
            "docs_intro_2.pdf"
        );
        assert_eq!(
            zip_entry_name(&url("https://a.example/?page=2"), "pdf", &mut taken),
            "index_2.pdf"
        );
    }
}
