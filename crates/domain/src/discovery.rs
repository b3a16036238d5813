//! Website discovery rules, without I/O: which discovery a request gets, URL normalisation
//! and the same-site rule, robots.txt rules, include/exclude patterns and the default
//! exclusions, and sitemap parsing. The worker does the fetching and feeds the answers here.

use std::collections::HashSet;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::plan::{Discovery, Plan};
use crate::request::{CrawlMode, InvalidRequest};

/// The product token robots.txt groups are matched against (case-insensitively).
pub const ROBOTS_AGENT: &str = "Enconvert";

/// Links are followed this many steps from the start URL, no further (the contract's depth).
pub const MAX_DEPTH: u32 = 10;

/// Pagination beyond this page number is left out by default.
pub const MAX_PAGINATION: u64 = 5;

/// A compiled pattern may not grow past this many bytes (a guard against patterns such as
/// `a{1000}{1000}` that are valid but would cost the worker a lot of memory).
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// How the pages of a site are found, as the `202` answer names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscoveryMethod {
    /// robots.txt `Sitemap:` lines and `/sitemap.xml`, with indexes and gzip.
    Sitemap,
    /// The sitemap plus a breadth-first crawl of same-site links.
    FullCrawl,
}

impl DiscoveryMethod {
    pub const fn as_str(self) -> &'static str {
        match self {
            DiscoveryMethod::Sitemap => "sitemap",
            DiscoveryMethod::FullCrawl => "full_crawl",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sitemap" => Some(DiscoveryMethod::Sitemap),
            "full_crawl" => Some(DiscoveryMethod::FullCrawl),
            _ => None,
        }
    }

    /// The method for a requested mode on a plan: `auto` is the most the plan allows.
    /// Call after [`crate::request::ConvertRequest::authorize`], which refuses `full` on a
    /// plan that only has sitemap discovery.
    pub fn for_request(mode: CrawlMode, plan: &Plan) -> Self {
        match mode {
            CrawlMode::Sitemap => DiscoveryMethod::Sitemap,
            CrawlMode::Full => DiscoveryMethod::FullCrawl,
            CrawlMode::Auto if plan.discovery == Discovery::Full => DiscoveryMethod::FullCrawl,
            CrawlMode::Auto => DiscoveryMethod::Sitemap,
        }
    }
}

/// What the worker needs to discover a site, stored with the batch at submit time (so the
/// plan's limit is the one in force when the request was accepted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryRequest {
    pub start_url: String,
    pub method: DiscoveryMethod,
    pub include_patterns: Vec<String>,
    pub exclude_patterns: Vec<String>,
    /// The plan's `batch_limit`: at most this many pages are rendered.
    pub page_limit: u32,
}

/// Compiles a list of client patterns; the error names the field and the pattern.
pub fn compile_patterns(field: &str, patterns: &[String]) -> Result<Vec<Regex>, InvalidRequest> {
    patterns
        .iter()
        .enumerate()
        .map(|(i, p)| {
            RegexBuilder::new(p)
                .size_limit(PATTERN_SIZE_LIMIT)
                .build()
                .map_err(|e| {
                    let why = match e {
                        regex::Error::CompiledTooBig(_) => "is too large".to_string(),
                        other => format!("is not a valid regular expression: {other}"),
                    };
                    InvalidRequest::new(field, format!("`{field}[{i}]` {why}"))
                })
        })
        .collect()
}

/// The include and exclude patterns plus the default exclusions.
///
/// Exclusions (patterns and defaults) keep a URL out entirely: it is neither rendered nor
/// crawled through. Include patterns only choose what is rendered: a page that matches none
/// is still crawled, so that `include_patterns: ["/blog/"]` finds the posts linked from `/`.
#[derive(Debug, Clone)]
pub struct Filters {
    include: Vec<Regex>,
    exclude: Vec<Regex>,
}

impl Filters {
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self, InvalidRequest> {
        Ok(Filters {
            include: compile_patterns("include_patterns", include)?,
            exclude: compile_patterns("exclude_patterns", exclude)?,
        })
    }

    /// True when the URL is excluded by a pattern or by the default exclusions.
    pub fn excluded(&self, url: &Url) -> bool {
        default_excluded(url) || self.exclude.iter().any(|r| r.is_match(url.as_str()))
    }

    /// True when the URL should be rendered (no include patterns: every page).
    pub fn included(&self, url: &Url) -> bool {
        self.include.is_empty() || self.include.iter().any(|r| r.is_match(url.as_str()))
    }
}

/// File extensions that are not web pages.
const ASSET_EXTENSIONS: &[&str] = &[
    "css", "js", "mjs", "map", "json", "xml", "rss", "atom", "txt", "csv", "png", "jpg", "jpeg",
    "gif", "svg", "webp", "avif", "ico", "bmp", "tif", "tiff", "pdf", "zip", "gz", "tgz", "tar",
    "rar", "7z", "bz2", "xz", "mp3", "mp4", "m4a", "m4v", "wav", "ogg", "oga", "ogv", "webm",
    "avi", "mov", "mkv", "flv", "woff", "woff2", "ttf", "otf", "eot", "doc", "docx", "xls", "xlsx",
    "ppt", "pptx", "odt", "ods", "odp", "exe", "dmg", "msi", "apk", "iso", "bin", "deb", "rpm",
];

/// Path segments of pages nobody wants a PDF of, and that a crawler should not poke at:
/// sign-in, administration, shopping carts and accounts.
const PRIVATE_SEGMENTS: &[&str] = &[
    "login",
    "log-in",
    "logout",
    "log-out",
    "signin",
    "sign-in",
    "signout",
    "sign-out",
    "signup",
    "sign-up",
    "register",
    "admin",
    "administrator",
    "wp-admin",
    "wp-login",
    "cart",
    "basket",
    "checkout",
    "account",
    "accounts",
    "my-account",
    "myaccount",
];

/// Query parameters that number pages of a listing.
const PAGE_PARAMS: &[&str] = &["page", "p", "paged", "pg"];

/// The default exclusions: assets by extension, sign-in/admin/cart/checkout/account pages,
/// and pagination deeper than [`MAX_PAGINATION`].
pub fn default_excluded(url: &Url) -> bool {
    let segments: Vec<String> = url
        .path_segments()
        .map(|s| {
            s.filter(|s| !s.is_empty())
                .map(str::to_ascii_lowercase)
                .collect()
        })
        .unwrap_or_default();
    if let Some(last) = segments.last()
        && let Some((_, ext)) = last.rsplit_once('.')
        && ASSET_EXTENSIONS.contains(&ext)
    {
        return true;
    }
    let private = segments.iter().any(|seg| {
        let stem = seg.rsplit_once('.').map_or(seg.as_str(), |(s, _)| s);
        PRIVATE_SEGMENTS.contains(&stem)
    });
    if private {
        return true;
    }
    // `/page/7` (WordPress and many static generators)
    let deep_path_page = segments
        .windows(2)
        .any(|w| w[0] == "page" && w[1].parse::<u64>().is_ok_and(|n| n > MAX_PAGINATION));
    let deep_query_page = url.query_pairs().any(|(k, v)| {
        PAGE_PARAMS.contains(&k.to_ascii_lowercase().as_str())
            && v.parse::<u64>().is_ok_and(|n| n > MAX_PAGINATION)
    });
    deep_path_page || deep_query_page
}

/// The same site: same scheme, host and port (default ports included).
pub fn same_site(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// A link or sitemap entry resolved against `base`: http(s) only, no user info, the
/// fragment dropped (it names a place in a page, not another page). The URL parser already
/// lower-cases the host and drops default ports.
pub fn resolve(base: &Url, href: &str) -> Option<Url> {
    let href = href.trim();
    if href.is_empty() || href.starts_with('#') {
        return None;
    }
    let mut url = base.join(href).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
        || url.host_str().is_none()
    {
        return None;
    }
    url.set_fragment(None);
    Some(url)
}

/// The identity of a page, so that it is rendered once: `/docs` and `/docs/` are the same
/// page, as are URLs that differ only in their fragment or a default port. The query is kept
/// as it is (its order can matter to the site).
pub fn page_key(url: &Url) -> String {
    let path = url.path();
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    let path = if path.is_empty() { "/" } else { path };
    let mut key = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        key.push_str(&format!(":{port}"));
    }
    key.push_str(path);
    if let Some(q) = url.query() {
        key.push('?');
        key.push_str(q);
    }
    key
}

/// Remembers the pages seen, by [`page_key`].
#[derive(Debug, Default)]
pub struct Seen(HashSet<String>);

impl Seen {
    /// True the first time a page is offered.
    pub fn first(&mut self, url: &Url) -> bool {
        self.0.insert(page_key(url))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Decodes the character references that appear in URLs inside HTML attributes
/// (`&amp;`, `&quot;`, `&#38;`, `&#x26;`...). Unknown named references stay as they are.
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let end = rest[1..]
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '#')
            .map(|j| j + 1);
        let (name, after) = match end {
            Some(j) if rest[j..].starts_with(';') => (&rest[1..j], &rest[j + 1..]),
            Some(j) => (&rest[1..j], &rest[j..]),
            None => (&rest[1..], ""),
        };
        let decoded = match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            n if n.starts_with("#x") || n.starts_with("#X") => u32::from_str_radix(&n[2..], 16)
                .ok()
                .and_then(char::from_u32),
            n if n.starts_with('#') => n[1..].parse::<u32>().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) if !name.is_empty() => {
                out.push(c);
                rest = after;
            }
            _ => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// robots.txt rules for [`ROBOTS_AGENT`]: the group naming us, else the `*` group;
/// longest match wins, `Allow` wins a tie, `*` and `$` as RFC 9309 defines them.
#[derive(Debug)]
pub enum Robots {
    /// No robots.txt (4xx): everything is allowed.
    AllowAll,
    /// robots.txt could not be read (5xx, unreachable): RFC 9309 says assume nothing is.
    DisallowAll,
    Rules(texting_robots::Robot),
}

impl Robots {
    /// Parses a robots.txt body. An unparsable file is treated as no rules (as major
    /// crawlers do) rather than as a refusal.
    pub fn parse(body: &[u8]) -> Self {
        match texting_robots::Robot::new(ROBOTS_AGENT, body) {
            Ok(r) => Robots::Rules(r),
            Err(_) => Robots::AllowAll,
        }
    }

    pub fn allowed(&self, url: &Url) -> bool {
        match self {
            Robots::AllowAll => true,
            Robots::DisallowAll => false,
            Robots::Rules(r) => r.allowed(url.as_str()),
        }
    }

    /// The `Sitemap:` lines, as written.
    pub fn sitemaps(&self) -> &[String] {
        match self {
            Robots::Rules(r) => &r.sitemaps,
            _ => &[],
        }
    }
}

/// A parsed sitemap file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sitemap {
    /// `<urlset>` (or a plain-text sitemap): page URLs in file order.
    Pages(Vec<String>),
    /// `<sitemapindex>`: the sitemaps it lists.
    Index(Vec<String>),
}

/// Parses a sitemap (sitemaps.org): an XML `<urlset>` or `<sitemapindex>` (namespace
/// prefixes allowed), or a plain-text sitemap of one URL per line. At most `max_entries`
/// entries are returned. A document cut short (a capped download) yields the entries read
/// before the cut; a document with none is an error.
pub fn parse_sitemap(data: &[u8], max_entries: usize) -> Result<Sitemap, String> {
    let text = String::from_utf8_lossy(data);
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if !trimmed.starts_with('<') {
        let pages: Vec<String> = trimmed
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("http://") || l.starts_with("https://"))
            .take(max_entries)
            .map(str::to_string)
            .collect();
        return if pages.is_empty() {
            Err("not a sitemap (neither XML nor a list of URLs)".to_string())
        } else {
            Ok(Sitemap::Pages(pages))
        };
    }
    parse_xml_sitemap(trimmed, max_entries)
}

fn parse_xml_sitemap(xml: &str, max_entries: usize) -> Result<Sitemap, String> {
    use quick_xml::events::Event;

    let mut reader = quick_xml::Reader::from_str(xml);
    let mut root: Option<String> = None;
    let mut in_entry = false;
    let mut in_loc = false;
    let mut loc = String::new();
    let mut entries: Vec<String> = Vec::new();
    let mut error: Option<String> = None;
    loop {
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => {
                error = Some(format!("malformed XML: {e}"));
                break;
            }
        };
        match event {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).to_ascii_lowercase();
                match (root.as_deref(), name.as_str()) {
                    (None, _) => root = Some(name),
                    (Some("urlset"), "url") | (Some("sitemapindex"), "sitemap") => {
                        in_entry = true;
                    }
                    (_, "loc") if in_entry => {
                        in_loc = true;
                        loc.clear();
                    }
                    _ => {}
                }
            }
            Event::End(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).to_ascii_lowercase();
                match name.as_str() {
                    "loc" if in_loc => {
                        in_loc = false;
                        let l = loc.trim();
                        if !l.is_empty() {
                            entries.push(l.to_string());
                            if entries.len() >= max_entries {
                                break;
                            }
                        }
                    }
                    "url" | "sitemap" => in_entry = false,
                    _ => {}
                }
            }
            Event::Text(t) if in_loc => {
                loc.push_str(&t.decode().map_err(|e| e.to_string())?);
            }
            Event::CData(t) if in_loc => {
                loc.push_str(&t.decode().map_err(|e| e.to_string())?);
            }
            Event::GeneralRef(r) if in_loc => {
                let name = r.decode().map_err(|e| e.to_string())?;
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    loc.push(c);
                } else if let Some(s) = quick_xml::escape::resolve_predefined_entity(&name) {
                    loc.push_str(s);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    match root.as_deref() {
        Some("urlset") if !entries.is_empty() || error.is_none() => Ok(Sitemap::Pages(entries)),
        Some("sitemapindex") if !entries.is_empty() || error.is_none() => {
            Ok(Sitemap::Index(entries))
        }
        Some("urlset" | "sitemapindex") => Err(error.unwrap_or_default()),
        Some(other) => Err(format!("not a sitemap (root element <{other}>)")),
        None => Err(error.unwrap_or_else(|| "empty document".to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).expect("url")
    }

    fn plan(name: &str) -> Plan {
        Plan::defaults()
            .into_iter()
            .find(|p| p.name == name)
            .expect("plan")
    }

    #[test]
    fn auto_is_the_most_the_plan_allows() {
        use DiscoveryMethod::FullCrawl;
        let table = [
            (CrawlMode::Auto, "starter", DiscoveryMethod::Sitemap),
            (CrawlMode::Auto, "pro", FullCrawl),
            (CrawlMode::Auto, "enterprise", FullCrawl),
            (CrawlMode::Sitemap, "pro", DiscoveryMethod::Sitemap),
            (CrawlMode::Full, "pro", FullCrawl),
        ];
        for (mode, p, want) in table {
            assert_eq!(
                DiscoveryMethod::for_request(mode, &plan(p)),
                want,
                "{mode:?} {p}"
            );
        }
        assert_eq!(FullCrawl.as_str(), "full_crawl");
        assert_eq!(
            DiscoveryMethod::parse("sitemap"),
            Some(DiscoveryMethod::Sitemap)
        );
    }

    #[test]
    fn page_keys_make_equivalent_urls_one_page() {
        let same = [
            ("https://a.example/docs/", "https://a.example/docs"),
            ("https://a.example/docs#intro", "https://a.example/docs"),
            ("https://A.Example:443/docs", "https://a.example/docs"),
            ("http://a.example:80/", "http://a.example"),
            ("http://a.example/?q=1", "http://a.example?q=1"),
            ("http://a.example/x/?q=1#f", "http://a.example/x?q=1"),
        ];
        for (a, b) in same {
            assert_eq!(page_key(&u(a)), page_key(&u(b)), "{a} = {b}");
        }
        let different = [
            ("https://a.example/docs", "http://a.example/docs"),
            ("https://a.example/docs", "https://a.example:8443/docs"),
            ("https://a.example/?a=1&b=2", "https://a.example/?b=2&a=1"),
            ("https://a.example/Docs", "https://a.example/docs"),
            ("https://a.example/docs", "https://www.a.example/docs"),
        ];
        for (a, b) in different {
            assert_ne!(page_key(&u(a)), page_key(&u(b)), "{a} != {b}");
        }
        let mut seen = Seen::default();
        assert!(seen.first(&u("https://a.example/x/")));
        assert!(!seen.first(&u("https://a.example/x#top")));
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn links_resolve_against_the_page() {
        let base = u("https://a.example/docs/intro.html");
        let table = [
            ("guide.html", Some("https://a.example/docs/guide.html")),
            ("../about#team", Some("https://a.example/about")),
            ("/x?y=1#z", Some("https://a.example/x?y=1")),
            ("//b.example/p", Some("https://b.example/p")),
            ("  /spaced  ", Some("https://a.example/spaced")),
            ("#section", None),
            ("", None),
            ("mailto:me@a.example", None),
            ("javascript:void(0)", None),
            ("tel:+123", None),
            ("ftp://a.example/f", None),
            ("https://user:pw@a.example/", None),
        ];
        for (href, want) in table {
            assert_eq!(
                resolve(&base, href).map(String::from).as_deref(),
                want,
                "{href}"
            );
        }
    }

    #[test]
    fn same_site_is_scheme_host_and_port() {
        let start = u("http://127.0.0.1:8080/");
        assert!(same_site(&start, &u("http://127.0.0.1:8080/a/b")));
        assert!(!same_site(&start, &u("http://127.0.0.1:8081/")));
        assert!(!same_site(&start, &u("https://127.0.0.1:8080/")));
        assert!(!same_site(&start, &u("http://localhost:8080/")));
        assert!(same_site(
            &u("https://a.example/"),
            &u("https://a.example:443/x")
        ));
    }

    #[test]
    fn default_exclusions() {
        let excluded = [
            "https://a.example/style.css",
            "https://a.example/app.min.js",
            "https://a.example/img/logo.PNG",
            "https://a.example/files/report.pdf",
            "https://a.example/dl/archive.zip",
            "https://a.example/login",
            "https://a.example/user/login.php",
            "https://a.example/admin/",
            "https://a.example/wp-admin/edit.php",
            "https://a.example/cart",
            "https://a.example/shop/checkout/step-1",
            "https://a.example/account/settings",
            "https://a.example/blog/page/6",
            "https://a.example/blog?page=9",
            "https://a.example/list?p=12&sort=a",
        ];
        for s in excluded {
            assert!(default_excluded(&u(s)), "{s} is excluded");
        }
        let kept = [
            "https://a.example/",
            "https://a.example/docs/intro.html",
            "https://a.example/blog/page/5",
            "https://a.example/blog?page=2",
            "https://a.example/blog/login-tips-for-beginners",
            "https://a.example/accounting",
            "https://a.example/v1.2/notes",
            "https://a.example/page/about",
        ];
        for s in kept {
            assert!(!default_excluded(&u(s)), "{s} is kept");
        }
    }

    #[test]
    fn patterns_include_and_exclude() {
        let f = Filters::new(&["/blog/".into()], &["draft".into(), r"\?print=1$".into()])
            .expect("valid");
        assert!(f.included(&u("https://a.example/blog/post")));
        assert!(!f.included(&u("https://a.example/about")));
        assert!(f.excluded(&u("https://a.example/blog/draft-1")));
        assert!(f.excluded(&u("https://a.example/blog/x?print=1")));
        assert!(
            f.excluded(&u("https://a.example/blog/x.css")),
            "defaults too"
        );
        assert!(!f.excluded(&u("https://a.example/blog/x")));
        let none = Filters::new(&[], &[]).expect("valid");
        assert!(none.included(&u("https://a.example/anything")));

        let e = Filters::new(&["ok".into(), "(unclosed".into()], &[]).expect_err("invalid");
        assert_eq!(e.field, "include_patterns");
        assert!(e.detail.contains("include_patterns[1]"), "{}", e.detail);
        let e = Filters::new(&[], &["a{1000}{1000}".into()]).expect_err("too big");
        assert_eq!(e.field, "exclude_patterns");
        assert!(e.detail.contains("too large"), "{}", e.detail);
    }

    #[test]
    fn robots_rules() {
        let txt = b"\
User-agent: *
Disallow: /private
Disallow: /tmp/
Allow: /private/open
Sitemap: https://a.example/sitemap_index.xml

User-agent: OtherBot
Disallow: /
";
        let r = Robots::parse(txt);
        let table = [
            ("https://a.example/", true),
            ("https://a.example/public", true),
            ("https://a.example/private", false),
            ("https://a.example/private/x", false),
            ("https://a.example/privateer", false),
            ("https://a.example/private/open", true),
            ("https://a.example/private/open/deeper", true),
            ("https://a.example/tmp", true),
            ("https://a.example/tmp/x", false),
        ];
        for (url, want) in table {
            assert_eq!(r.allowed(&u(url)), want, "{url}");
        }
        assert_eq!(r.sitemaps(), ["https://a.example/sitemap_index.xml"]);

        // A group naming us replaces the `*` group; names match case-insensitively.
        let ours = Robots::parse(
            b"User-agent: *\nDisallow: /\n\nUser-agent: enconvert\nDisallow: /secret\n",
        );
        assert!(ours.allowed(&u("https://a.example/page")));
        assert!(!ours.allowed(&u("https://a.example/secret/1")));

        // Longest match wins; a tie goes to Allow; wildcards and end anchors.
        let r = Robots::parse(
            b"User-agent: *\nDisallow: /*.php$\nAllow: /page\nDisallow: /page\nDisallow: /a*/b\nAllow: /shop/\nDisallow: /shop/cart\n",
        );
        let table = [
            ("https://a.example/index.php", false),
            ("https://a.example/index.php?x=1", true),
            ("https://a.example/page", true),
            ("https://a.example/abc/b", false),
            ("https://a.example/abc/c", true),
            ("https://a.example/shop/item", true),
            ("https://a.example/shop/cart/1", false),
        ];
        for (url, want) in table {
            assert_eq!(r.allowed(&u(url)), want, "{url}");
        }

        assert!(Robots::AllowAll.allowed(&u("https://a.example/x")));
        assert!(!Robots::DisallowAll.allowed(&u("https://a.example/")));
        assert!(Robots::parse(b"").allowed(&u("https://a.example/x")));
        assert!(Robots::parse(b"\x00\xff garbage").allowed(&u("https://a.example/x")));
    }

    #[test]
    fn sitemaps_parse() {
        let urlset = br#"<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc>https://a.example/</loc><lastmod>2026-01-01</lastmod></url>
  <url><loc>
     https://a.example/search?q=a&amp;page=2
  </loc></url>
  <url><loc><![CDATA[https://a.example/cdata]]></loc></url>
  <url><priority>0.5</priority></url>
</urlset>"#;
        assert_eq!(
            parse_sitemap(urlset, 100),
            Ok(Sitemap::Pages(vec![
                "https://a.example/".into(),
                "https://a.example/search?q=a&page=2".into(),
                "https://a.example/cdata".into(),
            ]))
        );
        let index = br#"<?xml version="1.0"?><sm:sitemapindex xmlns:sm="http://www.sitemaps.org/schemas/sitemap/0.9">
<sm:sitemap><sm:loc>https://a.example/s1.xml</sm:loc></sm:sitemap>
<sm:sitemap><sm:loc>https://a.example/s2.xml.gz</sm:loc></sm:sitemap></sm:sitemapindex>"#;
        assert_eq!(
            parse_sitemap(index, 100),
            Ok(Sitemap::Index(vec![
                "https://a.example/s1.xml".into(),
                "https://a.example/s2.xml.gz".into(),
            ]))
        );
        let text = b"\xef\xbb\xbfhttps://a.example/one\r\n\r\nhttps://a.example/two\nnot a url\n";
        assert_eq!(
            parse_sitemap(text, 100),
            Ok(Sitemap::Pages(vec![
                "https://a.example/one".into(),
                "https://a.example/two".into()
            ]))
        );
        // The cap, and a document cut short keeps what was read.
        assert_eq!(
            parse_sitemap(urlset, 1),
            Ok(Sitemap::Pages(vec!["https://a.example/".into()]))
        );
        let cut = &urlset[..urlset.len() - 120];
        assert!(matches!(parse_sitemap(cut, 100), Ok(Sitemap::Pages(p)) if !p.is_empty()));
        // Not sitemaps.
        assert!(parse_sitemap(b"<html><body>Not found</body></html>", 100).is_err());
        assert!(parse_sitemap(b"", 100).is_err());
        assert!(parse_sitemap(b"just words", 100).is_err());
        assert_eq!(
            parse_sitemap(b"<urlset></urlset>", 100),
            Ok(Sitemap::Pages(vec![]))
        );
    }

    #[test]
    fn entities_in_attributes_decode() {
        let table = [
            ("/a?x=1&amp;y=2", "/a?x=1&y=2"),
            ("/a?x=1&y=2", "/a?x=1&y=2"),
            ("/q?&#38;&#x26;&quot;", "/q?&&\""),
            ("&unknown;x", "&unknown;x"),
            ("trailing&", "trailing&"),
            ("&amp", "&"),
            ("&#;", "&#;"),
        ];
        for (raw, want) in table {
            assert_eq!(decode_entities(raw), want, "{raw}");
        }
    }
}
