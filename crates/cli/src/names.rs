//! File names for downloads: readable, safe on every file system, never colliding.

use std::collections::HashSet;

use url::Url;

/// The longest stem we make, in characters.
const MAX_STEM: usize = 100;

/// A stem for the file made from a page: host, then path segments and query, joined by `_`
/// (`https://example.com/docs/intro.html` → `example.com_docs_intro`).
pub fn stem_for(page: &str) -> String {
    let Ok(url) = Url::parse(page) else {
        return clean(page);
    };
    let mut parts = Vec::new();
    let mut host = url.host_str().unwrap_or("page").to_string();
    if let Some(port) = url.port() {
        host.push_str(&format!("-{port}"));
    }
    parts.push(host);
    if let Some(segments) = url.path_segments() {
        for s in segments.filter(|s| !s.is_empty()) {
            parts.push(s.to_string());
        }
    }
    let has_path = parts.len() > 1;
    if let Some(last) = parts.last_mut().filter(|_| has_path) {
        for ext in [".html", ".htm", ".php", ".aspx", ".asp", ".jsp"] {
            if let Some(stripped) = last.strip_suffix(ext)
                && !stripped.is_empty()
            {
                *last = stripped.to_string();
                break;
            }
        }
    }
    if let Some(q) = url.query().filter(|q| !q.is_empty()) {
        parts.push(q.to_string());
    }
    clean(&parts.join("_"))
}

/// Keeps letters, digits, `.`, `_` and `-`; runs of anything else become one `-`.
pub fn clean(s: &str) -> String {
    let mut out = String::new();
    let mut dash = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            out.push(c);
            dash = false;
        } else if !dash {
            out.push('-');
            dash = true;
        }
    }
    let out: String = out
        .trim_matches(|c| c == '-' || c == '.')
        .chars()
        .take(MAX_STEM)
        .collect();
    if out.is_empty() {
        "page".to_string()
    } else {
        out
    }
}

/// The extension of a download link's file (`…/invoice_20261129_101010123.pdf?...` → `pdf`).
pub fn extension_of_link(link: &str) -> Option<String> {
    let url = Url::parse(link).ok()?;
    let last = url.path_segments()?.next_back()?.to_string();
    let (_, ext) = last.rsplit_once('.')?;
    (!ext.is_empty() && ext.len() <= 5 && ext.chars().all(|c| c.is_ascii_alphanumeric()))
        .then(|| ext.to_ascii_lowercase())
}

/// Hands out `stem.ext`, then `stem_2.ext`, `stem_3.ext`... for names already given.
#[derive(Default)]
pub struct Unique(HashSet<String>);

impl Unique {
    pub fn name(&mut self, stem: &str, ext: &str) -> String {
        let mut n = 1;
        loop {
            let name = if n == 1 {
                format!("{stem}.{ext}")
            } else {
                format!("{stem}_{n}.{ext}")
            };
            if self.0.insert(name.to_ascii_lowercase()) {
                return name;
            }
            n += 1;
        }
    }
}

/// A file name the service suggested, reduced to a safe last segment.
pub fn safe_file_name(suggested: &str) -> Option<String> {
    let last = suggested.rsplit(['/', '\\']).next()?;
    let (stem, ext) = last.rsplit_once('.')?;
    let stem = clean(stem);
    let ext = clean(ext);
    (!ext.is_empty()).then(|| format!("{stem}.{ext}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_read_like_the_page() {
        assert_eq!(stem_for("https://example.com/"), "example.com");
        assert_eq!(stem_for("https://example.com"), "example.com");
        assert_eq!(
            stem_for("https://example.com/docs/intro.html"),
            "example.com_docs_intro"
        );
        assert_eq!(
            stem_for("http://127.0.0.1:8099/invoice.html"),
            "127.0.0.1-8099_invoice"
        );
        assert_eq!(
            stem_for("https://example.com/search?q=a b&page=2"),
            "example.com_search_q-a-20b-page-2"
        );
        assert!(stem_for(&format!("https://example.com/{}", "a".repeat(500))).len() <= MAX_STEM);
    }

    #[test]
    fn names_never_collide() {
        let mut u = Unique::default();
        assert_eq!(u.name("a", "pdf"), "a.pdf");
        assert_eq!(u.name("a", "pdf"), "a_2.pdf");
        assert_eq!(u.name("A", "pdf"), "A_3.pdf");
        assert_eq!(u.name("a", "png"), "a.png");
    }

    #[test]
    fn link_extensions_and_suggested_names() {
        assert_eq!(
            extension_of_link(
                "http://h/v1/files/dev/files/p/url-to-pdf/x_20261129_1.pdf?expires=1&signature=a"
            )
            .as_deref(),
            Some("pdf")
        );
        assert_eq!(extension_of_link("http://h/v1/files/x"), None);
        assert_eq!(
            safe_file_name("../../etc/passwd.txt").as_deref(),
            Some("passwd.txt")
        );
        assert_eq!(
            safe_file_name("invoice_1.pdf").as_deref(),
            Some("invoice_1.pdf")
        );
        assert_eq!(safe_file_name("noext"), None);
    }
}
