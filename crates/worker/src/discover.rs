//! Website discovery: finds the pages of a website batch through the guarded egress client,
//! then writes one job per page (or fails the batch when there is none).
//!
//! The rules (robots.txt, patterns, default exclusions, URL identity, sitemap parsing) live in
//! `enconvert_domain::discovery`; this module fetches and decides the order. Every request
//! has its own timeout, the whole discovery a time budget, every response a size cap.

use std::collections::{HashSet, VecDeque};
use std::io::Read;
use std::time::Duration;

use enconvert_db::batches;
use enconvert_db::models::Job;
use enconvert_domain::OutputMode;
use enconvert_domain::discovery::{
    self, DiscoveryMethod, DiscoveryRequest, Filters, MAX_DEPTH, Robots, Seen, Sitemap,
};
use enconvert_domain::events::{BatchCompleted, DiscoverJob, RenderJob};
use enconvert_egress::{Egress, Reply};
use enconvert_queue::consumer::Disposition;
use enconvert_queue::messages;
use tokio::time::Instant;
use url::Url;

use crate::Worker;

/// A response body is read up to this many bytes (pages and sitemap files alike).
pub(crate) const MAX_RESPONSE: usize = 5 * 1024 * 1024;
/// A gzipped sitemap is inflated up to this many bytes (the sitemaps.org limit is 50 MB).
const MAX_INFLATED: usize = 50 * 1024 * 1024;
/// robots.txt is read up to this many bytes (what Google reads; RFC 9309 asks for 500 KiB).
const MAX_ROBOTS: usize = 500 * 1024;
/// Sitemap files fetched per discovery, indexes included.
const MAX_SITEMAP_FILES: usize = 50;
/// How deep sitemap indexes may nest.
const MAX_SITEMAP_NESTING: u32 = 3;
/// Sitemap entries considered per discovery.
const MAX_SITEMAP_ENTRIES: usize = 100_000;
/// Links taken from one page.
const MAX_LINKS_PER_PAGE: usize = 5_000;
/// Redirects followed for robots.txt and sitemap files (RFC 9309 asks for at least five).
const MAX_REDIRECTS: usize = 5;

/// Limits of one discovery.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// The whole discovery; the pages found by then are used.
    pub budget: Duration,
    /// Pages fetched by a full crawl, whatever the budget.
    pub max_fetches: usize,
}

/// What a discovery found.
#[derive(Debug)]
pub(crate) struct Found {
    /// The pages to render, in discovery order, at most the request's page limit.
    pub pages: Vec<Url>,
    /// Distinct pages found (can exceed `pages` when the limit cut the list).
    pub total: usize,
    /// Why nothing was found, when `pages` is empty.
    pub problem: String,
}

/// Finds the pages of a site as the request asks.
pub(crate) async fn discover(egress: &Egress, req: &DiscoveryRequest, limits: &Limits) -> Found {
    let empty = |problem: String| Found {
        pages: Vec::new(),
        total: 0,
        problem,
    };
    let start = match Url::parse(&req.start_url) {
        Ok(u) => u,
        Err(e) => return empty(format!("The start URL cannot be read: {e}")),
    };
    let filters = match Filters::new(&req.include_patterns, &req.exclude_patterns) {
        Ok(f) => f,
        Err(e) => return empty(e.detail),
    };
    let mut d = Discovery {
        egress,
        deadline: Instant::now() + limits.budget,
        start,
        filters,
        robots: Robots::AllowAll,
        limit: usize::try_from(req.page_limit).unwrap_or(usize::MAX),
        seen: Seen::default(),
        pages: Vec::new(),
        notes: Vec::new(),
    };
    d.robots = d.robots().await;
    if matches!(d.robots, Robots::DisallowAll) {
        let problem = d.notes.join("; ");
        return empty(problem);
    }
    let sitemap = d.sitemap_entries().await;
    let total = match req.method {
        DiscoveryMethod::Sitemap => d.list_sitemap(&sitemap),
        DiscoveryMethod::FullCrawl => d.crawl(&sitemap, limits.max_fetches).await,
    };
    let problem = if d.pages.is_empty() {
        let why = match (req.method, sitemap.is_empty()) {
            (DiscoveryMethod::Sitemap, true) => {
                "No sitemap listing pages of this site was found (robots.txt Sitemap lines, /sitemap.xml); crawl_mode \"full\" follows links instead".to_string()
            }
            (DiscoveryMethod::Sitemap, false) => {
                "The sitemap lists no page of this site that robots.txt, the default exclusions and your include/exclude patterns allow".to_string()
            }
            (DiscoveryMethod::FullCrawl, _) => {
                "No page to render was found from the start URL (robots.txt, the default exclusions and your include/exclude patterns apply)".to_string()
            }
        };
        if d.notes.is_empty() {
            why
        } else {
            format!("{why}: {}", d.notes.join("; "))
        }
    } else {
        String::new()
    };
    Found {
        pages: d.pages,
        total,
        problem,
    }
}

struct Discovery<'a> {
    egress: &'a Egress,
    deadline: Instant,
    start: Url,
    filters: Filters,
    robots: Robots,
    limit: usize,
    seen: Seen,
    pages: Vec<Url>,
    /// What went wrong on the way, for the error of a discovery that found nothing.
    notes: Vec<String>,
}

impl Discovery<'_> {
    /// One GET, bounded by the egress client's own timeout and by what is left of the budget.
    async fn get(&self, url: &Url) -> Result<Reply, String> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("the discovery time budget ran out".to_string());
        }
        match tokio::time::timeout(left, self.egress.get(url.as_str())).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("the discovery time budget ran out".to_string()),
        }
    }

    /// A GET that follows same-site redirects (robots.txt and sitemap files).
    async fn get_following(&self, url: &Url) -> Result<(Url, Reply), String> {
        let mut url = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let reply = self.get(&url).await?;
            match redirect_target(&url, &reply) {
                Some(next) if discovery::same_site(&self.start, &next) => url = next,
                Some(next) => return Err(format!("redirected off the site to {next}")),
                None => return Ok((url, reply)),
            }
        }
        Err("too many redirects".to_string())
    }

    fn out_of_time(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// robots.txt of the start URL's site, as RFC 9309 reads the answer: 2xx gives the rules,
    /// 4xx means there are none, anything else (5xx, unreachable) means nothing may be fetched.
    async fn robots(&mut self) -> Robots {
        let Ok(url) = self.start.join("/robots.txt") else {
            return Robots::AllowAll;
        };
        match self.get_following(&url).await {
            Ok((_, reply)) if (200..300).contains(&reply.status) => {
                let body = &reply.body[..reply.body.len().min(MAX_ROBOTS)];
                Robots::parse(body)
            }
            Ok((_, reply)) if (400..500).contains(&reply.status) => Robots::AllowAll,
            Ok((_, reply)) => {
                self.notes.push(format!(
                    "robots.txt answered HTTP {}, so the site's rules are unknown and nothing is fetched (RFC 9309)",
                    reply.status
                ));
                Robots::DisallowAll
            }
            Err(e) if e.starts_with("redirected off the site") => Robots::AllowAll,
            Err(e) => {
                self.notes.push(format!(
                    "robots.txt could not be read ({e}), so the site's rules are unknown and nothing is fetched (RFC 9309)"
                ));
                Robots::DisallowAll
            }
        }
    }

    /// Page URLs of the site's sitemaps, in file order: the robots.txt `Sitemap:` lines on
    /// this site, then `/sitemap.xml`; indexes are followed, gzip is inflated.
    async fn sitemap_entries(&mut self) -> Vec<Url> {
        let mut queue: VecDeque<(Url, u32)> = VecDeque::new();
        let mut queued: HashSet<String> = HashSet::new();
        let start = self.start.clone();
        let mut push = |queue: &mut VecDeque<(Url, u32)>, url: Url, level: u32| {
            // Sitemaps of other sites list other sites' pages (sitemaps.org): not fetched.
            if discovery::same_site(&start, &url) && queued.insert(discovery::page_key(&url)) {
                queue.push_back((url, level));
            }
        };
        for line in self.robots.sitemaps() {
            if let Some(url) = discovery::resolve(&self.start, line) {
                push(&mut queue, url, 0);
            }
        }
        if let Ok(url) = self.start.join("/sitemap.xml") {
            push(&mut queue, url, 0);
        }
        let mut entries: Vec<Url> = Vec::new();
        let mut files = 0;
        while let Some((url, level)) = queue.pop_front() {
            if files >= MAX_SITEMAP_FILES
                || entries.len() >= MAX_SITEMAP_ENTRIES
                || self.out_of_time()
            {
                break;
            }
            files += 1;
            let (url, reply) = match self.get_following(&url).await {
                Ok(r) => r,
                Err(e) => {
                    self.notes.push(format!("sitemap {url}: {e}"));
                    continue;
                }
            };
            if !(200..300).contains(&reply.status) {
                continue;
            }
            let body = match inflate(&reply.body, MAX_INFLATED) {
                Ok(b) => b,
                Err(e) => {
                    self.notes.push(format!("sitemap {url}: {e}"));
                    continue;
                }
            };
            match discovery::parse_sitemap(&body, MAX_SITEMAP_ENTRIES - entries.len()) {
                Ok(Sitemap::Index(list)) if level < MAX_SITEMAP_NESTING => {
                    for loc in list {
                        if let Some(u) = discovery::resolve(&url, &loc) {
                            push(&mut queue, u, level + 1);
                        }
                    }
                }
                Ok(Sitemap::Index(_)) => {
                    self.notes
                        .push(format!("sitemap {url}: indexes nest too deep"));
                }
                Ok(Sitemap::Pages(list)) => {
                    entries.extend(list.iter().filter_map(|loc| discovery::resolve(&url, loc)));
                }
                Err(e) => self.notes.push(format!("sitemap {url}: {e}")),
            }
        }
        entries
    }

    /// True when a URL may be visited at all: this site, allowed by robots.txt, not excluded.
    fn eligible(&self, url: &Url) -> bool {
        discovery::same_site(&self.start, url)
            && self.robots.allowed(url)
            && !self.filters.excluded(url)
    }

    /// Sitemap mode: the sitemap's pages, in its order. Returns the number found.
    fn list_sitemap(&mut self, entries: &[Url]) -> usize {
        let mut total = 0;
        for url in entries {
            if self.eligible(url) && self.filters.included(url) && self.seen.first(url) {
                total += 1;
                if self.pages.len() < self.limit {
                    self.pages.push(url.clone());
                }
            }
        }
        total
    }

    /// Lists a fetched page unless it is excluded or not included.
    fn list(&mut self, url: &Url) {
        if self.pages.len() < self.limit
            && !self.filters.excluded(url)
            && self.filters.included(url)
        {
            self.pages.push(url.clone());
        }
    }

    /// Full mode: a breadth-first crawl from the start URL, seeded with the sitemap's pages.
    /// A page is listed once fetched (so redirects and non-HTML answers are not pages);
    /// pages that answer an error are listed, so the batch shows them as failed items.
    /// Returns the number of pages found.
    async fn crawl(&mut self, sitemap: &[Url], max_fetches: usize) -> usize {
        let mut frontier: VecDeque<(Url, u32)> = VecDeque::new();
        // The start URL is crawled even when a pattern excludes it from rendering: it is
        // where the links are.
        let start = self.start.clone();
        self.seen.first(&start);
        if self.robots.allowed(&start) {
            frontier.push_back((start, 0));
        } else {
            self.notes
                .push("robots.txt disallows the start URL".to_string());
        }
        for url in sitemap {
            if self.eligible(url) && self.seen.first(url) {
                frontier.push_back((url.clone(), 1));
            }
        }
        let mut fetches = 0;
        while self.pages.len() < self.limit {
            let Some((url, depth)) = frontier.pop_front() else {
                break;
            };
            if fetches >= max_fetches || self.out_of_time() {
                frontier.push_front((url, depth));
                break;
            }
            fetches += 1;
            let reply = match self.get(&url).await {
                Ok(r) => r,
                Err(e) if self.out_of_time() => {
                    self.notes.push(e);
                    frontier.push_front((url, depth));
                    break;
                }
                Err(e) => {
                    // Unreachable or slow: list it; the render records why it fails.
                    tracing::debug!(url = %url, error = %e, "page fetch failed during discovery");
                    self.list(&url);
                    continue;
                }
            };
            if let Some(next) = redirect_target(&url, &reply) {
                // The browser would land on the target: that is the page, found at this depth.
                if self.eligible(&next) && self.seen.first(&next) {
                    frontier.push_back((next, depth));
                }
                continue;
            }
            if !(200..300).contains(&reply.status) {
                self.list(&url);
                continue;
            }
            if !is_html(&reply) {
                continue;
            }
            self.list(&url);
            if depth >= MAX_DEPTH {
                continue;
            }
            for link in links(&reply.body, &url) {
                if self.eligible(&link) && self.seen.first(&link) {
                    frontier.push_back((link, depth + 1));
                }
            }
        }
        let waiting = frontier
            .iter()
            .filter(|(u, _)| !self.filters.excluded(u) && self.filters.included(u))
            .count();
        self.pages.len() + waiting
    }
}

/// Where a 3xx answer points, resolved against the request URL.
fn redirect_target(url: &Url, reply: &Reply) -> Option<Url> {
    if !(300..400).contains(&reply.status) {
        return None;
    }
    let location = reply.headers.get("location")?.to_str().ok()?;
    discovery::resolve(url, location)
}

/// True when the answer is an HTML document.
fn is_html(reply: &Reply) -> bool {
    match reply
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
    {
        Some(ct) => {
            let ct = ct.to_ascii_lowercase();
            ct.contains("text/html") || ct.contains("application/xhtml")
        }
        // No type given: sniff, as a browser would.
        None => {
            let head = String::from_utf8_lossy(&reply.body[..reply.body.len().min(512)])
                .trim_start()
                .to_ascii_lowercase();
            head.starts_with("<!doctype html") || head.starts_with("<html")
        }
    }
}

/// Inflates a gzip body (recognised by its magic bytes, whatever the headers say) up to `cap`
/// bytes; other bodies are returned as they are. A stream cut short (a capped download)
/// gives what was inflated before the cut.
fn inflate(body: &[u8], cap: usize) -> Result<Vec<u8>, String> {
    if !body.starts_with(&[0x1f, 0x8b]) {
        return Ok(body.to_vec());
    }
    let mut out = Vec::new();
    let limit = u64::try_from(cap).unwrap_or(u64::MAX);
    let result = flate2::read::MultiGzDecoder::new(body)
        .take(limit)
        .read_to_end(&mut out);
    match result {
        Ok(_) => Ok(out),
        Err(_) if !out.is_empty() => Ok(out),
        Err(e) => Err(format!("not a valid gzip file: {e}")),
    }
}

/// The links of an HTML page (`<a href>`, `<area href>`), resolved against its `<base href>`
/// or its URL. A streaming tokenizer reads it, so comments and scripts hold no links.
fn links(html: &[u8], page: &Url) -> Vec<Url> {
    use lol_html::{HtmlRewriter, Settings, element};

    let mut base: Option<String> = None;
    let mut hrefs: Vec<String> = Vec::new();
    {
        let mut rewriter = HtmlRewriter::new(
            Settings::new()
                .append_element_content_handler(element!("base[href]", |el| {
                    if base.is_none() {
                        base = el.get_attribute("href");
                    }
                    Ok(())
                }))
                .append_element_content_handler(element!("a[href], area[href]", |el| {
                    if hrefs.len() < MAX_LINKS_PER_PAGE
                        && let Some(h) = el.get_attribute("href")
                    {
                        hrefs.push(h);
                    }
                    Ok(())
                })),
            |_: &[u8]| {},
        );
        // A page that does not parse to its end still gives the links read before.
        let _ = rewriter.write(html);
        let _ = rewriter.end();
    }
    let base = base
        .and_then(|b| discovery::resolve(page, &discovery::decode_entities(&b)))
        .unwrap_or_else(|| page.clone());
    hrefs
        .iter()
        .filter_map(|h| discovery::resolve(&base, &discovery::decode_entities(h)))
        .collect()
}

impl Worker {
    pub(crate) async fn discover_site(&self, work: &DiscoverJob) -> anyhow::Result<Disposition> {
        let batch = {
            let mut conn = self.db.conn().await?;
            batches::get(&mut conn, work.batch_id).await?
        };
        let Some(batch) = batch else {
            return Ok(Disposition::Ack);
        };
        if batch.discovery_status.as_deref() != Some("pending") {
            tracing::info!("discovery already done; dropping the duplicate message");
            return Ok(Disposition::Ack);
        }
        let request: Option<DiscoveryRequest> = batch
            .discovery_request
            .clone()
            .and_then(|v| serde_json::from_value(v).ok());
        let found = match request {
            Some(request) => discover(&self.egress, &request, &self.discovery).await,
            None => Found {
                pages: Vec::new(),
                total: 0,
                problem: "The discovery request stored with the batch cannot be read".to_string(),
            },
        };
        let total = i32::try_from(found.total).unwrap_or(i32::MAX);
        let mut conn = self.db.conn().await?;
        if found.pages.is_empty() {
            let failed = batches::fail_discovery(&mut conn, batch.id, &found.problem, total, |b| {
                vec![messages::batch_completed(&BatchCompleted {
                    batch_id: b.id,
                    project_id: b.project_id,
                    status: b.status(),
                    output_mode: OutputMode::Zip,
                })]
            })
            .await?;
            if failed.is_some() {
                tracing::info!(problem = %found.problem, "discovery found no page; batch failed");
                self.relay_wake.notify_one();
            }
            return Ok(Disposition::Ack);
        }
        let jobs: Vec<Job> = found
            .pages
            .iter()
            .enumerate()
            .map(|(i, url)| {
                Job::new_queued(
                    batch.id,
                    batch.project_id,
                    None,
                    i32::try_from(i).unwrap_or(i32::MAX),
                    url.to_string(),
                )
            })
            .collect();
        let outbox: Vec<_> = jobs
            .iter()
            .map(|j| {
                messages::render(
                    &RenderJob {
                        job_id: j.id,
                        batch_id: batch.id,
                    },
                    false,
                )
            })
            .collect();
        if batches::complete_discovery(&mut conn, batch.id, total, &jobs, &outbox).await? {
            tracing::info!(
                pages = jobs.len(),
                total_discovered = found.total,
                "discovery done"
            );
            self.relay_wake.notify_one();
        } else {
            tracing::info!("discovery recorded by another delivery; result discarded");
        }
        Ok(Disposition::Ack)
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn links_come_from_anchors_only() {
        let html = br#"<!doctype html><html><head>
            <link rel="stylesheet" href="/style.css">
            <script>var s = '<a href="/in-script">x</a>';</script>
            </head><body>
            <!-- <a href="/in-comment">x</a> -->
            <a href="/a">A</a> <a href='b.html#top'>B</a> <a href="/q?x=1&amp;y=2">Q</a>
            <a href="mailto:x@y.z">mail</a> <a>no href</a>
            <map><area href="/area" alt=""></map>
            <a href="http://other.example/">ext</a>
            </body></html>"#;
        let got: Vec<String> = links(html, &u("http://s.example/dir/page"))
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(
            got,
            [
                "http://s.example/a",
                "http://s.example/dir/b.html",
                "http://s.example/q?x=1&y=2",
                "http://s.example/area",
                "http://other.example/",
            ]
        );
        let based = links(
            br#"<html><head><base href="/root/"></head><body><a href="x">x</a></body></html>"#,
            &u("http://s.example/dir/page"),
        );
        assert_eq!(based, [u("http://s.example/root/x")]);
        assert!(
            links(
                b"\xff\xfe not html at all <a href=",
                &u("http://s.example/")
            )
            .is_empty()
        );
    }

    #[test]
    fn gzip_is_inflated_with_a_cap() {
        use std::io::Write;
        let plain = b"<urlset><url><loc>http://s.example/a</loc></url></urlset>".repeat(100);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&plain).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(inflate(&gz, 1 << 20).unwrap(), plain);
        assert_eq!(inflate(&gz, 100).unwrap().len(), 100, "capped");
        assert_eq!(inflate(&plain, 10).unwrap(), plain, "not gzip: as is");
        let cut = &gz[..gz.len() / 2];
        assert!(
            !inflate(cut, 1 << 20).unwrap().is_empty(),
            "a cut stream keeps its start"
        );
        assert!(inflate(&[0x1f, 0x8b, 0, 0], 100).is_err());
    }
}
