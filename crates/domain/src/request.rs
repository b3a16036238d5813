//! Conversion requests: the wire shape ([`RawConvertRequest`]), its validation into a
//! [`ConvertRequest`] whose values are known good, and the gating by key kind and plan.

use std::collections::BTreeMap;

use email_address::EmailAddress;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::address::{AllowList, SourceUrl};
use crate::plan::{Feature, Plan};
use crate::status::OutputMode;

/// A `400` answer: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct InvalidRequest {
    pub field: String,
    pub detail: String,
}

impl InvalidRequest {
    pub fn new(field: &str, detail: impl Into<String>) -> Self {
        InvalidRequest {
            field: field.to_string(),
            detail: detail.into(),
        }
    }
}

/// A `403` answer: the key kind or the plan does not allow what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Forbidden(pub String);

/// The four conversion endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Endpoint {
    #[serde(rename = "url-to-pdf")]
    UrlToPdf,
    #[serde(rename = "url-to-screenshot")]
    UrlToScreenshot,
    #[serde(rename = "website-to-pdf")]
    WebsiteToPdf,
    #[serde(rename = "website-to-screenshot")]
    WebsiteToScreenshot,
}

impl Endpoint {
    pub const fn as_str(self) -> &'static str {
        match self {
            Endpoint::UrlToPdf => "url-to-pdf",
            Endpoint::UrlToScreenshot => "url-to-screenshot",
            Endpoint::WebsiteToPdf => "website-to-pdf",
            Endpoint::WebsiteToScreenshot => "website-to-screenshot",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "url-to-pdf" => Endpoint::UrlToPdf,
            "url-to-screenshot" => Endpoint::UrlToScreenshot,
            "website-to-pdf" => Endpoint::WebsiteToPdf,
            "website-to-screenshot" => Endpoint::WebsiteToScreenshot,
            _ => return None,
        })
    }

    pub const fn kind(self) -> OutputKind {
        match self {
            Endpoint::UrlToPdf | Endpoint::WebsiteToPdf => OutputKind::Pdf,
            Endpoint::UrlToScreenshot | Endpoint::WebsiteToScreenshot => OutputKind::Screenshot,
        }
    }

    pub const fn is_website(self) -> bool {
        matches!(self, Endpoint::WebsiteToPdf | Endpoint::WebsiteToScreenshot)
    }
}

/// What a job produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    Pdf,
    Screenshot,
}

/// Which kind of API key made the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    Private,
    Public,
}

impl KeyKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyKind::Private => "private",
            KeyKind::Public => "public",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "private" => Some(KeyKind::Private),
            "public" => Some(KeyKind::Public),
            _ => None,
        }
    }

    pub const fn prefix(self) -> &'static str {
        match self {
            KeyKind::Private => "sk_live_",
            KeyKind::Public => "pk_live_",
        }
    }
}

/// HTTP basic auth for the target site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BasicAuth {
    pub username: String,
    pub password: String,
}

/// A cookie set on the target before navigation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default = "default_cookie_path")]
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<f64>,
    #[serde(default, rename = "httpOnly", skip_serializing_if = "Option::is_none")]
    pub http_only: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure: Option<bool>,
    #[serde(default, rename = "sameSite", skip_serializing_if = "Option::is_none")]
    pub same_site: Option<String>,
}

fn default_cookie_path() -> String {
    "/".to_string()
}

/// A header or footer band of a paginated PDF.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Band {
    pub content: String,
    #[serde(default = "default_band_height")]
    pub height: f64,
}

fn default_band_height() -> f64 {
    15.0
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, utoipa::ToSchema)]
pub struct RawMargins {
    pub top: Option<f64>,
    pub bottom: Option<f64>,
    pub left: Option<f64>,
    pub right: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, utoipa::ToSchema)]
pub struct RawPdfOptions {
    pub page_size: Option<String>,
    pub page_width: Option<f64>,
    pub page_height: Option<f64>,
    pub orientation: Option<String>,
    pub margins: Option<RawMargins>,
    pub scale: Option<f64>,
    pub grayscale: Option<bool>,
    pub header: Option<Band>,
    pub footer: Option<Band>,
    pub print_background: Option<bool>,
}

/// The request body as clients send it. Every field is optional here; unknown fields are
/// ignored. [`RawConvertRequest::validate`] turns it into a [`ConvertRequest`].
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct RawConvertRequest {
    /// The page to convert: one URL, or an array of URLs (a batch). http(s) only, at most
    /// 2048 characters each, public addresses only.
    #[schema(value_type = Object, example = json!("https://example.com"))]
    pub url: Option<Value>,
    /// Answer `202` at once and process in the background. Forced on for several URLs.
    pub async_mode: Option<bool>,
    /// `true` or `"zip"`: one ZIP for the batch; `false` or `"individual"`: a file per URL.
    #[schema(value_type = Object, example = json!("zip"))]
    pub output_format: Option<Value>,
    /// Sync single URL only: answer with the file's bytes.
    pub direct_download: Option<bool>,
    /// File name stem; the server appends `_{timestamp}` and the extension.
    pub output_filename: Option<String>,
    /// Your id for the job (1..64 of `[A-Za-z0-9_-]`), pollable at `/v1/convert/status/{job_id}`.
    pub job_id: Option<String>,
    /// Who gets the completion email (async jobs). Default: the project owner.
    pub notification_email: Option<String>,
    /// Where to POST the completion webhook (plans with webhooks).
    pub callback_url: Option<String>,
    /// Viewport width in CSS pixels, 320..3840 (default 1920).
    pub viewport_width: Option<u32>,
    /// Viewport height in CSS pixels, 240..2160 (default 1080).
    pub viewport_height: Option<u32>,
    /// A CSS selector to wait for before capturing (at most 1000 characters).
    pub wait_for_selector: Option<String>,
    /// How long to wait for `wait_for_selector`, ms (default 10000, at most 60000).
    pub wait_for_selector_timeout: Option<u32>,
    /// Load images and media (default true).
    pub load_media: Option<bool>,
    /// Scroll the page and its inner scrolling panes so lazy content loads (default true).
    pub enable_scroll: Option<bool>,
    /// Block known ad and tracker hosts (default false).
    pub block_ads: Option<bool>,
    /// Block video and audio (default false).
    pub block_media: Option<bool>,
    /// Fail the job when the page answers 4xx/5xx (default true); false renders the error page.
    pub fail_on_http_error: Option<bool>,
    /// HTTP basic auth for the target (paid plans).
    pub auth: Option<BasicAuth>,
    /// Cookies set before navigation, at most 50 (paid plans).
    pub cookies: Option<Vec<Cookie>>,
    /// Extra request headers, at most 20; hop-by-hop headers refused (paid plans).
    pub headers: Option<BTreeMap<String, String>>,
    /// PDF: one tall page sized to the content (default true); false paginates.
    pub single_page: Option<bool>,
    /// PDF layout.
    pub pdf_options: Option<RawPdfOptions>,
    /// Screenshot format: png (default), jpeg or webp.
    pub format: Option<String>,
    /// Screenshot quality for jpeg and webp, 1..100.
    pub quality: Option<u8>,
    /// Screenshot the whole page (default true) or only the viewport.
    pub full_page: Option<bool>,
    /// Screenshot pixel ratio, 1..3 (default 1).
    pub device_scale_factor: Option<f64>,
    /// Website endpoints: `auto` (default), `sitemap` or `full`.
    pub crawl_mode: Option<String>,
    /// Website endpoints: regular expressions a page URL must match.
    pub include_patterns: Option<Vec<String>>,
    /// Website endpoints: regular expressions that exclude a page URL.
    pub exclude_patterns: Option<Vec<String>>,
}

/// Parses a JSON body, naming the offending field when a value has the wrong type.
pub fn parse_body(body: &[u8]) -> Result<RawConvertRequest, InvalidRequest> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() || path == "." {
            InvalidRequest::new(
                "body",
                format!("The request body is not valid JSON: {inner}"),
            )
        } else {
            InvalidRequest::new(&path, format!("Invalid value for `{path}`: {inner}"))
        }
    })
}

/// Millimetre sizes of the named paper formats (portrait).
pub fn paper_size_mm(name: &str) -> Option<(f64, f64)> {
    Some(match name.to_ascii_lowercase().as_str() {
        "a0" => (841.0, 1189.0),
        "a1" => (594.0, 841.0),
        "a2" => (420.0, 594.0),
        "a3" => (297.0, 420.0),
        "a4" => (210.0, 297.0),
        "a5" => (148.0, 210.0),
        "a6" => (105.0, 148.0),
        "b0" => (1000.0, 1414.0),
        "b1" => (707.0, 1000.0),
        "b2" => (500.0, 707.0),
        "b3" => (353.0, 500.0),
        "b4" => (250.0, 353.0),
        "b5" => (176.0, 250.0),
        "letter" => (215.9, 279.4),
        "legal" => (215.9, 355.6),
        "tabloid" => (279.4, 431.8),
        "ledger" => (431.8, 279.4),
        _ => return None,
    })
}

/// Validated PDF layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PdfOptions {
    pub single_page: bool,
    pub width_mm: f64,
    pub height_mm: f64,
    pub landscape: bool,
    pub margin_top_mm: f64,
    pub margin_bottom_mm: f64,
    pub margin_left_mm: f64,
    pub margin_right_mm: f64,
    pub scale: f64,
    pub grayscale: bool,
    pub header: Option<Band>,
    pub footer: Option<Band>,
    pub print_background: bool,
}

/// Screenshot image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageFormat {
    Png,
    Jpeg,
    Webp,
}

impl ImageFormat {
    pub const fn extension(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Webp => "webp",
        }
    }

    pub const fn content_type(self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Webp => "image/webp",
        }
    }
}

/// Validated screenshot settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScreenshotOptions {
    pub format: ImageFormat,
    pub quality: Option<u8>,
    pub full_page: bool,
    pub device_scale_factor: f64,
}

/// Everything the worker needs to render one page, validated. Stored with the batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderOptions {
    pub kind: OutputKind,
    pub viewport_width: u32,
    pub viewport_height: u32,
    pub wait_for_selector: Option<String>,
    pub wait_for_selector_timeout_ms: u32,
    pub load_media: bool,
    pub enable_scroll: bool,
    pub block_ads: bool,
    pub block_media: bool,
    pub fail_on_http_error: bool,
    pub auth: Option<BasicAuth>,
    pub cookies: Vec<Cookie>,
    pub headers: BTreeMap<String, String>,
    pub pdf: PdfOptions,
    pub screenshot: ScreenshotOptions,
}

impl RenderOptions {
    pub fn extension(&self) -> &'static str {
        match self.kind {
            OutputKind::Pdf => "pdf",
            OutputKind::Screenshot => self.screenshot.format.extension(),
        }
    }

    pub fn content_type(&self) -> &'static str {
        match self.kind {
            OutputKind::Pdf => "application/pdf",
            OutputKind::Screenshot => self.screenshot.format.content_type(),
        }
    }
}

/// Website discovery settings (website endpoints only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrawlSettings {
    pub mode: CrawlMode,
    pub include_patterns: Vec<String>,
    pub exclude_patterns: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrawlMode {
    Auto,
    Sitemap,
    Full,
}

/// A validated conversion request.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertRequest {
    pub endpoint: Endpoint,
    pub urls: Vec<SourceUrl>,
    pub async_mode: bool,
    pub output_mode: OutputMode,
    pub direct_download: bool,
    pub output_filename: Option<String>,
    pub job_id: Option<String>,
    pub notification_email: Option<String>,
    pub callback_url: Option<SourceUrl>,
    pub options: RenderOptions,
    pub crawl: Option<CrawlSettings>,
}

/// Headers a client may not set on the target request.
const HOP_BY_HOP: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
];

fn bad(field: &str, detail: impl Into<String>) -> InvalidRequest {
    InvalidRequest::new(field, detail)
}

fn in_range<T: PartialOrd + Copy + std::fmt::Display>(
    field: &str,
    value: Option<T>,
    default: T,
    min: T,
    max: T,
) -> Result<T, InvalidRequest> {
    let v = value.unwrap_or(default);
    if v < min || v > max {
        return Err(bad(
            field,
            format!("`{field}` must be between {min} and {max}"),
        ));
    }
    Ok(v)
}

/// Client job ids: 1..64 of `[A-Za-z0-9_-]`.
pub fn valid_job_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Reduces a client's `output_filename` to a safe stem: no directories, no extension we
/// would duplicate, only `[A-Za-z0-9._-]`, at most 100 characters.
pub fn sanitize_filename_stem(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let base = match base.rsplit_once('.') {
        Some((stem, ext))
            if ["pdf", "png", "jpg", "jpeg", "webp", "zip"]
                .contains(&ext.to_ascii_lowercase().as_str()) =>
        {
            stem
        }
        _ => base,
    };
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let cleaned = cleaned.trim_matches('_').to_string();
    if cleaned.is_empty() {
        None
    } else {
        Some(cleaned)
    }
}

impl RawConvertRequest {
    /// Validates every field for `endpoint`. The allow list exempts configured private hosts.
    pub fn validate(
        self,
        endpoint: Endpoint,
        allow: &AllowList,
    ) -> Result<ConvertRequest, InvalidRequest> {
        let urls = self.parse_urls(endpoint, allow)?;

        let output_mode = match &self.output_format {
            None | Some(Value::Null) | Some(Value::Bool(false)) => OutputMode::Individual,
            Some(Value::Bool(true)) => OutputMode::Zip,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("zip") => OutputMode::Zip,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("individual") => {
                OutputMode::Individual
            }
            Some(_) => {
                return Err(bad(
                    "output_format",
                    "`output_format` must be true, false, \"zip\" or \"individual\"",
                ));
            }
        };
        let output_mode = if endpoint.is_website() {
            OutputMode::Zip
        } else {
            output_mode
        };
        if output_mode == OutputMode::Zip && !endpoint.is_website() && urls.len() < 2 {
            return Err(bad(
                "output_format",
                "ZIP output needs more than one URL; send a list in `url`",
            ));
        }

        let async_mode =
            endpoint.is_website() || urls.len() > 1 || self.async_mode.unwrap_or(false);
        let direct_download = self.direct_download.unwrap_or(false);
        if direct_download && async_mode {
            return Err(bad(
                "direct_download",
                "`direct_download` is only available for a synchronous single-URL conversion",
            ));
        }

        let output_filename = match self.output_filename.as_deref() {
            None => None,
            Some(name) => Some(sanitize_filename_stem(name).ok_or_else(|| {
                bad(
                    "output_filename",
                    "`output_filename` has no usable characters",
                )
            })?),
        };

        if let Some(id) = &self.job_id
            && !valid_job_id(id)
        {
            return Err(bad(
                "job_id",
                "`job_id` must be 1 to 64 characters of letters, digits, `_` and `-`",
            ));
        }

        let notification_email = match self.notification_email.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(email) => {
                if email.len() > 254 || !EmailAddress::is_valid(email) {
                    return Err(bad(
                        "notification_email",
                        "`notification_email` is not a valid email address",
                    ));
                }
                Some(email.to_string())
            }
        };

        let callback_url = match self.callback_url.as_deref() {
            None => None,
            Some(u) => Some(
                SourceUrl::parse(u, allow)
                    .map_err(|e| bad("callback_url", format!("`callback_url` {e}")))?,
            ),
        };

        let crawl = if endpoint.is_website() {
            let mode = match self.crawl_mode.as_deref().unwrap_or("auto") {
                "auto" => CrawlMode::Auto,
                "sitemap" => CrawlMode::Sitemap,
                "full" => CrawlMode::Full,
                _ => {
                    return Err(bad(
                        "crawl_mode",
                        "`crawl_mode` must be \"auto\", \"sitemap\" or \"full\"",
                    ));
                }
            };
            let include_patterns = self.include_patterns.clone().unwrap_or_default();
            let exclude_patterns = self.exclude_patterns.clone().unwrap_or_default();
            for (field, list) in [
                ("include_patterns", &include_patterns),
                ("exclude_patterns", &exclude_patterns),
            ] {
                if list.len() > 50 || list.iter().any(|p| p.is_empty() || p.len() > 500) {
                    return Err(bad(
                        field,
                        format!("`{field}` takes at most 50 patterns of 1 to 500 characters"),
                    ));
                }
            }
            // Refuse a pattern the worker could not compile now, with a 400, rather than
            // failing the discovery later.
            crate::discovery::Filters::new(&include_patterns, &exclude_patterns)?;
            Some(CrawlSettings {
                mode,
                include_patterns,
                exclude_patterns,
            })
        } else {
            None
        };

        let options = self.render_options(endpoint)?;

        Ok(ConvertRequest {
            endpoint,
            urls,
            async_mode,
            output_mode,
            direct_download,
            output_filename,
            job_id: self.job_id,
            notification_email,
            callback_url,
            options,
            crawl,
        })
    }

    fn parse_urls(
        &self,
        endpoint: Endpoint,
        allow: &AllowList,
    ) -> Result<Vec<SourceUrl>, InvalidRequest> {
        let raw: Vec<&str> = match &self.url {
            None | Some(Value::Null) => return Err(bad("url", "`url` is required")),
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(items)) if !endpoint.is_website() => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s.as_str()),
                        _ => {
                            return Err(bad("url", format!("`url[{i}]` must be a string")));
                        }
                    }
                }
                out
            }
            Some(_) if endpoint.is_website() => {
                return Err(bad("url", "`url` must be a string (the site's start URL)"));
            }
            Some(_) => {
                return Err(bad("url", "`url` must be a string or an array of strings"));
            }
        };
        if raw.is_empty() {
            return Err(bad("url", "`url` must hold at least one URL"));
        }
        // The plan's batch_limit is checked by the gate; this only bounds the work of parsing.
        if raw.len() > 10_000 {
            return Err(bad("url", "`url` holds too many URLs"));
        }
        raw.iter()
            .enumerate()
            .map(|(i, u)| {
                SourceUrl::parse(u, allow).map_err(|e| {
                    let name = if raw.len() > 1 {
                        format!("url[{i}]")
                    } else {
                        "url".to_string()
                    };
                    bad("url", format!("`{name}` {e}"))
                })
            })
            .collect()
    }

    fn render_options(&self, endpoint: Endpoint) -> Result<RenderOptions, InvalidRequest> {
        let viewport_width = in_range("viewport_width", self.viewport_width, 1920, 320, 3840)?;
        let viewport_height = in_range("viewport_height", self.viewport_height, 1080, 240, 2160)?;
        let wait_for_selector = match self.wait_for_selector.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) if s.len() > 1000 => {
                return Err(bad(
                    "wait_for_selector",
                    "`wait_for_selector` is longer than 1000 characters",
                ));
            }
            Some(s) => Some(s.to_string()),
        };
        let wait_for_selector_timeout_ms = in_range(
            "wait_for_selector_timeout",
            self.wait_for_selector_timeout,
            10_000,
            0,
            60_000,
        )?;

        if let Some(auth) = &self.auth {
            if auth.username.is_empty() || auth.username.len() > 256 || auth.password.len() > 256 {
                return Err(bad(
                    "auth",
                    "`auth.username` (1 to 256 characters) and `auth.password` (at most 256) are required",
                ));
            }
            if auth.username.contains(':') {
                return Err(bad("auth", "`auth.username` must not contain `:`"));
            }
        }
        let cookies = self.cookies.clone().unwrap_or_default();
        if cookies.len() > 50 {
            return Err(bad("cookies", "`cookies` holds at most 50 cookies"));
        }
        for (i, c) in cookies.iter().enumerate() {
            if c.name.is_empty() || c.name.len() > 256 || c.value.len() > 4096 {
                return Err(bad(
                    "cookies",
                    format!(
                        "`cookies[{i}]` needs a name (at most 256 characters) and a value of at most 4096"
                    ),
                ));
            }
            if c.domain.is_none() && c.url.is_none() {
                return Err(bad(
                    "cookies",
                    format!("`cookies[{i}]` needs `domain` or `url`"),
                ));
            }
            if let Some(s) = &c.same_site
                && !["Strict", "Lax", "None"].contains(&s.as_str())
            {
                return Err(bad(
                    "cookies",
                    format!("`cookies[{i}].sameSite` must be Strict, Lax or None"),
                ));
            }
        }
        let headers = self.headers.clone().unwrap_or_default();
        if headers.len() > 20 {
            return Err(bad("headers", "`headers` holds at most 20 headers"));
        }
        for (name, value) in &headers {
            let lower = name.to_ascii_lowercase();
            let token = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token
                || value.len() > 8192
                || value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
            {
                return Err(bad(
                    "headers",
                    format!("`headers.{name}` is not a valid header"),
                ));
            }
            if HOP_BY_HOP.contains(&lower.as_str()) {
                return Err(bad("headers", format!("`headers.{name}` may not be set")));
            }
            if lower == "authorization" && self.auth.is_some() {
                return Err(bad(
                    "headers",
                    "`auth` and an `Authorization` header cannot be used together",
                ));
            }
        }

        let raw_pdf = self.pdf_options.clone().unwrap_or_default();
        let (mut width_mm, mut height_mm) = match raw_pdf.page_size.as_deref() {
            None => (210.0, 297.0),
            Some(name) => paper_size_mm(name).ok_or_else(|| {
                bad("pdf_options.page_size", "`pdf_options.page_size` must be one of A0-A6, B0-B5, Letter, Legal, Tabloid, Ledger")
            })?,
        };
        match (raw_pdf.page_width, raw_pdf.page_height) {
            (None, None) => {}
            (Some(w), Some(h)) => {
                for (f, v) in [
                    ("pdf_options.page_width", w),
                    ("pdf_options.page_height", h),
                ] {
                    if !(10.0..=5000.0).contains(&v) {
                        return Err(bad(f, format!("`{f}` must be between 10 and 5000 mm")));
                    }
                }
                width_mm = w;
                height_mm = h;
            }
            _ => {
                return Err(bad(
                    "pdf_options.page_width",
                    "`pdf_options.page_width` and `pdf_options.page_height` go together",
                ));
            }
        }
        let landscape = match raw_pdf.orientation.as_deref() {
            None | Some("portrait") => false,
            Some("landscape") => true,
            Some(_) => {
                return Err(bad(
                    "pdf_options.orientation",
                    "`pdf_options.orientation` must be \"portrait\" or \"landscape\"",
                ));
            }
        };
        let m = raw_pdf.margins.clone().unwrap_or_default();
        let margin = |f: &str, v: Option<f64>| -> Result<f64, InvalidRequest> {
            let v = v.unwrap_or(10.0);
            if !(0.0..=500.0).contains(&v) {
                return Err(bad(f, format!("`{f}` must be between 0 and 500 mm")));
            }
            Ok(v)
        };
        let scale = raw_pdf.scale.unwrap_or(1.0);
        if !(0.1..=2.0).contains(&scale) {
            return Err(bad(
                "pdf_options.scale",
                "`pdf_options.scale` must be between 0.1 and 2.0",
            ));
        }
        for (f, band) in [
            ("pdf_options.header", &raw_pdf.header),
            ("pdf_options.footer", &raw_pdf.footer),
        ] {
            if let Some(b) = band {
                if b.content.len() > 2000 {
                    return Err(bad(
                        f,
                        format!("`{f}.content` is longer than 2000 characters"),
                    ));
                }
                if !(0.0..=200.0).contains(&b.height) {
                    return Err(bad(f, format!("`{f}.height` must be between 0 and 200 mm")));
                }
            }
        }
        let pdf = PdfOptions {
            single_page: self.single_page.unwrap_or(true),
            width_mm,
            height_mm,
            landscape,
            margin_top_mm: margin("pdf_options.margins.top", m.top)?,
            margin_bottom_mm: margin("pdf_options.margins.bottom", m.bottom)?,
            margin_left_mm: margin("pdf_options.margins.left", m.left)?,
            margin_right_mm: margin("pdf_options.margins.right", m.right)?,
            scale,
            grayscale: raw_pdf.grayscale.unwrap_or(false),
            header: raw_pdf.header,
            footer: raw_pdf.footer,
            print_background: raw_pdf.print_background.unwrap_or(true),
        };

        let format = match self
            .format
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("png") => ImageFormat::Png,
            Some("jpeg") | Some("jpg") => ImageFormat::Jpeg,
            Some("webp") => ImageFormat::Webp,
            Some(_) => {
                return Err(bad(
                    "format",
                    "`format` must be \"png\", \"jpeg\" or \"webp\"",
                ));
            }
        };
        let quality = match self.quality {
            None => None,
            Some(q) if (1..=100).contains(&q) => Some(q),
            Some(_) => return Err(bad("quality", "`quality` must be between 1 and 100")),
        };
        let device_scale_factor = in_range(
            "device_scale_factor",
            self.device_scale_factor,
            1.0,
            1.0,
            3.0,
        )?;
        let screenshot = ScreenshotOptions {
            format,
            quality,
            full_page: self.full_page.unwrap_or(true),
            device_scale_factor,
        };

        Ok(RenderOptions {
            kind: endpoint.kind(),
            viewport_width,
            viewport_height,
            wait_for_selector,
            wait_for_selector_timeout_ms,
            load_media: self.load_media.unwrap_or(true),
            enable_scroll: self.enable_scroll.unwrap_or(true),
            block_ads: self.block_ads.unwrap_or(false),
            block_media: self.block_media.unwrap_or(false),
            fail_on_http_error: self.fail_on_http_error.unwrap_or(true),
            auth: self.auth.clone(),
            cookies,
            headers,
            pdf,
            screenshot,
        })
    }
}

impl ConvertRequest {
    /// Applies the key-kind and plan rules; the `Err` is the `403` detail.
    pub fn authorize(&self, key: KeyKind, plan: &Plan) -> Result<(), Forbidden> {
        if key == KeyKind::Public {
            let refuse = |what: &str| {
                Err(Forbidden(format!(
                    "{what} is not allowed with a public key; use a private key (sk_live_...) from your server"
                )))
            };
            if self.endpoint.is_website() {
                return refuse("Website conversion");
            }
            if self.urls.len() > 1 {
                return refuse("Batch conversion (several URLs)");
            }
            if self.async_mode {
                return refuse("Async mode");
            }
        }
        let gate = |feature: Feature| {
            if plan.allows(feature) {
                Ok(())
            } else {
                Err(Forbidden(plan.refusal(feature)))
            }
        };
        if self.endpoint.is_website() {
            gate(Feature::WebsiteDiscovery)?;
            if self
                .crawl
                .as_ref()
                .is_some_and(|c| c.mode == CrawlMode::Full)
            {
                gate(Feature::FullCrawl)?;
            }
        }
        if self.async_mode {
            gate(Feature::AsyncMode)?;
        }
        if self.output_mode == OutputMode::Zip && !self.endpoint.is_website() {
            gate(Feature::ZipOutput)?;
        }
        if self.callback_url.is_some() {
            gate(Feature::Webhooks)?;
        }
        if self.options.auth.is_some()
            || !self.options.cookies.is_empty()
            || !self.options.headers.is_empty()
        {
            gate(Feature::TargetAuth)?;
        }
        let limit = plan.batch_limit as usize;
        if self.urls.len() > limit {
            return Err(Forbidden(format!(
                "This request has {} URLs; your current plan ({}) allows at most {limit} per batch",
                self.urls.len(),
                plan.name
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn allow() -> AllowList {
        AllowList::default()
    }

    fn validate(body: Value, endpoint: Endpoint) -> Result<ConvertRequest, InvalidRequest> {
        let bytes = serde_json::to_vec(&body).expect("serialises");
        parse_body(&bytes)?.validate(endpoint, &allow())
    }

    fn plan(name: &str) -> Plan {
        Plan::defaults()
            .into_iter()
            .find(|p| p.name == name)
            .expect("plan")
    }

    #[test]
    fn defaults_follow_the_contract() {
        let r = validate(json!({"url": "https://example.com"}), Endpoint::UrlToPdf).expect("valid");
        assert!(!r.async_mode);
        assert_eq!(r.output_mode, OutputMode::Individual);
        assert_eq!(
            (r.options.viewport_width, r.options.viewport_height),
            (1920, 1080)
        );
        assert!(r.options.pdf.single_page);
        assert!(r.options.load_media && r.options.enable_scroll);
        assert_eq!(r.options.wait_for_selector_timeout_ms, 10_000);
        assert_eq!(
            (r.options.pdf.width_mm, r.options.pdf.height_mm),
            (210.0, 297.0)
        );
        assert_eq!(r.options.pdf.margin_top_mm, 10.0);
        assert_eq!(r.options.extension(), "pdf");
        let s = validate(
            json!({"url": "https://example.com"}),
            Endpoint::UrlToScreenshot,
        )
        .expect("valid");
        assert_eq!(s.options.extension(), "png");
        assert!(s.options.screenshot.full_page);
    }

    #[test]
    fn several_urls_force_async() {
        let r = validate(
            json!({"url": ["https://a.example", "https://b.example"]}),
            Endpoint::UrlToPdf,
        )
        .expect("valid");
        assert!(r.async_mode);
        assert_eq!(r.urls.len(), 2);
    }

    #[test]
    fn output_format_accepts_bool_and_words() {
        for (v, want) in [
            (json!(true), OutputMode::Zip),
            (json!("zip"), OutputMode::Zip),
            (json!("individual"), OutputMode::Individual),
            (json!(false), OutputMode::Individual),
        ] {
            let r = validate(
                json!({"url": ["https://a.example", "https://b.example"], "output_format": v}),
                Endpoint::UrlToPdf,
            )
            .expect("valid");
            assert_eq!(r.output_mode, want);
        }
        let e = validate(
            json!({"url": "https://a.example", "output_format": true}),
            Endpoint::UrlToPdf,
        )
        .expect_err("zip needs several");
        assert_eq!(e.field, "output_format");
        let e = validate(
            json!({"url": ["https://a.example"], "output_format": 3}),
            Endpoint::UrlToPdf,
        )
        .expect_err("bad type");
        assert_eq!(e.field, "output_format");
    }

    #[test]
    fn wrong_types_name_the_field() {
        let e = parse_body(br#"{"url": "https://a.example", "async_mode": "yes"}"#)
            .expect_err("bad type");
        assert_eq!(e.field, "async_mode");
        assert!(e.detail.contains("async_mode"), "{}", e.detail);
        let e = parse_body(br#"{"pdf_options": {"scale": "big"}}"#).expect_err("bad type");
        assert_eq!(e.field, "pdf_options.scale");
        let e = parse_body(br#"{"url": "#).expect_err("syntax");
        assert_eq!(e.field, "body");
        let e = validate(json!({"url": 5}), Endpoint::UrlToPdf).expect_err("bad url type");
        assert_eq!(e.field, "url");
    }

    #[test]
    fn unknown_fields_are_ignored() {
        validate(
            json!({"url": "https://a.example", "sdk_version": "9.9", "future": {"x": 1}}),
            Endpoint::UrlToPdf,
        )
        .expect("valid");
    }

    #[test]
    fn field_rules() {
        let cases: &[(Value, &str)] = &[
            (json!({}), "url"),
            (json!({"url": []}), "url"),
            (json!({"url": "ftp://a.example"}), "url"),
            (
                json!({"url": ["https://a.example", "http://10.0.0.1/"]}),
                "url",
            ),
            (
                json!({"url": "https://a.example", "job_id": "has space"}),
                "job_id",
            ),
            (
                json!({"url": "https://a.example", "job_id": "x".repeat(65)}),
                "job_id",
            ),
            (
                json!({"url": "https://a.example", "notification_email": "nope"}),
                "notification_email",
            ),
            (
                json!({"url": "https://a.example", "callback_url": "http://169.254.169.254/"}),
                "callback_url",
            ),
            (
                json!({"url": "https://a.example", "viewport_width": 100}),
                "viewport_width",
            ),
            (
                json!({"url": "https://a.example", "viewport_height": 5000}),
                "viewport_height",
            ),
            (
                json!({"url": "https://a.example", "wait_for_selector_timeout": 60001}),
                "wait_for_selector_timeout",
            ),
            (
                json!({"url": "https://a.example", "wait_for_selector": "a".repeat(1001)}),
                "wait_for_selector",
            ),
            (
                json!({"url": "https://a.example", "headers": {"Host": "evil"}}),
                "headers",
            ),
            (
                json!({"url": "https://a.example", "headers": {"X-A": "a\r\nb"}}),
                "headers",
            ),
            (
                json!({"url": "https://a.example", "auth": {"username": "u", "password": "p"}, "headers": {"authorization": "Basic x"}}),
                "headers",
            ),
            (
                json!({"url": "https://a.example", "cookies": [{"name": "a", "value": "b"}]}),
                "cookies",
            ),
            (
                json!({"url": "https://a.example", "pdf_options": {"page_size": "A9"}}),
                "pdf_options.page_size",
            ),
            (
                json!({"url": "https://a.example", "pdf_options": {"scale": 3.0}}),
                "pdf_options.scale",
            ),
            (
                json!({"url": "https://a.example", "pdf_options": {"orientation": "sideways"}}),
                "pdf_options.orientation",
            ),
            (
                json!({"url": "https://a.example", "pdf_options": {"page_width": 100}}),
                "pdf_options.page_width",
            ),
            (
                json!({"url": "https://a.example", "pdf_options": {"header": {"content": "x".repeat(2001)}}}),
                "pdf_options.header",
            ),
            (json!({"url": "https://a.example", "quality": 0}), "quality"),
            (
                json!({"url": "https://a.example", "format": "gif"}),
                "format",
            ),
            (
                json!({"url": "https://a.example", "device_scale_factor": 4}),
                "device_scale_factor",
            ),
            (
                json!({"url": "https://a.example", "async_mode": true, "direct_download": true}),
                "direct_download",
            ),
            (
                json!({"url": "https://a.example", "output_filename": "///"}),
                "output_filename",
            ),
        ];
        for (body, field) in cases {
            let e = validate(body.clone(), Endpoint::UrlToPdf).expect_err(&body.to_string());
            assert_eq!(e.field, *field, "{body}: {}", e.detail);
        }
        let cookies: Vec<Value> = (0..51)
            .map(|i| json!({"name": format!("c{i}"), "value": "v", "domain": "a.example"}))
            .collect();
        let e = validate(
            json!({"url": "https://a.example", "cookies": cookies}),
            Endpoint::UrlToPdf,
        )
        .expect_err("51 cookies");
        assert_eq!(e.field, "cookies");
        let headers: serde_json::Map<String, Value> =
            (0..21).map(|i| (format!("X-H{i}"), json!("v"))).collect();
        let e = validate(
            json!({"url": "https://a.example", "headers": headers}),
            Endpoint::UrlToPdf,
        )
        .expect_err("21 headers");
        assert_eq!(e.field, "headers");
    }

    #[test]
    fn pdf_options_are_applied() {
        let r = validate(json!({"url": "https://a.example", "single_page": false, "pdf_options": {"page_size": "letter", "orientation": "landscape", "margins": {"top": 0, "left": 25}, "scale": 0.5, "grayscale": true}}), Endpoint::UrlToPdf).expect("valid");
        let p = &r.options.pdf;
        assert!(!p.single_page && p.landscape && p.grayscale);
        assert_eq!((p.width_mm, p.height_mm), (215.9, 279.4));
        assert_eq!(
            (p.margin_top_mm, p.margin_left_mm, p.margin_bottom_mm),
            (0.0, 25.0, 10.0)
        );
        assert_eq!(p.scale, 0.5);
        let r = validate(json!({"url": "https://a.example", "pdf_options": {"page_width": 100, "page_height": 50}}), Endpoint::UrlToPdf).expect("valid");
        assert_eq!(
            (r.options.pdf.width_mm, r.options.pdf.height_mm),
            (100.0, 50.0)
        );
    }

    #[test]
    fn filename_stems_are_sanitised() {
        assert_eq!(
            sanitize_filename_stem("report.pdf").as_deref(),
            Some("report")
        );
        assert_eq!(
            sanitize_filename_stem("../../etc/passwd").as_deref(),
            Some("passwd")
        );
        assert_eq!(
            sanitize_filename_stem("My Report (v2)").as_deref(),
            Some("My_Report__v2")
        );
        assert_eq!(sanitize_filename_stem("..."), None);
    }

    #[test]
    fn gating_by_key_kind_and_plan() {
        let single =
            validate(json!({"url": "https://a.example"}), Endpoint::UrlToPdf).expect("valid");
        let asynchronous = validate(
            json!({"url": "https://a.example", "async_mode": true}),
            Endpoint::UrlToPdf,
        )
        .expect("valid");
        let batch = validate(
            json!({"url": ["https://a.example", "https://b.example"]}),
            Endpoint::UrlToPdf,
        )
        .expect("valid");
        let hook = validate(json!({"url": "https://a.example", "async_mode": true, "callback_url": "https://hooks.example/x"}), Endpoint::UrlToPdf).expect("valid");
        let zip = validate(
            json!({"url": ["https://a.example", "https://b.example"], "output_format": "zip"}),
            Endpoint::UrlToPdf,
        )
        .expect("valid");
        let authed = validate(
            json!({"url": "https://a.example", "headers": {"X-Token": "t"}}),
            Endpoint::UrlToPdf,
        )
        .expect("valid");

        assert!(single.authorize(KeyKind::Public, &plan("free")).is_ok());
        let e = asynchronous
            .authorize(KeyKind::Public, &plan("enterprise"))
            .expect_err("public async");
        assert!(
            e.0.starts_with("Async mode is not allowed with a public key"),
            "{}",
            e.0
        );
        let e = batch
            .authorize(KeyKind::Public, &plan("enterprise"))
            .expect_err("public batch");
        assert!(e.0.contains("several URLs"));
        let e = asynchronous
            .authorize(KeyKind::Private, &plan("free"))
            .expect_err("free async");
        assert!(
            e.0.starts_with("Async mode is not available on your current plan"),
            "{}",
            e.0
        );
        let e = hook
            .authorize(KeyKind::Private, &plan("starter"))
            .expect_err("starter hooks");
        assert!(
            e.0.starts_with("Webhook callbacks (callback_url) is not available"),
            "{}",
            e.0
        );
        assert!(hook.authorize(KeyKind::Private, &plan("pro")).is_ok());
        assert!(zip.authorize(KeyKind::Private, &plan("starter")).is_ok());
        let e = authed
            .authorize(KeyKind::Private, &plan("free"))
            .expect_err("free auth");
        assert!(e.0.starts_with("Target-site authentication"));
        let many: Vec<String> = (0..26).map(|i| format!("https://a.example/{i}")).collect();
        let big = validate(json!({"url": many}), Endpoint::UrlToPdf).expect("valid");
        let e = big
            .authorize(KeyKind::Private, &plan("starter"))
            .expect_err("over limit");
        assert!(e.0.contains("at most 25"), "{}", e.0);
        assert!(big.authorize(KeyKind::Private, &plan("pro")).is_ok());
    }

    #[test]
    fn website_requests_are_gated_and_patterns_checked() {
        let site = |body: Value| validate(body, Endpoint::WebsiteToPdf);
        let auto = site(json!({"url": "https://a.example/"})).expect("valid");
        assert!(auto.async_mode);
        assert_eq!(auto.output_mode, OutputMode::Zip);
        assert_eq!(auto.crawl.as_ref().map(|c| c.mode), Some(CrawlMode::Auto));
        let full = site(json!({"url": "https://a.example/", "crawl_mode": "full"})).expect("valid");

        let e = auto
            .authorize(KeyKind::Public, &plan("enterprise"))
            .expect_err("public key");
        assert!(
            e.0.starts_with("Website conversion is not allowed with a public key"),
            "{}",
            e.0
        );
        let e = auto
            .authorize(KeyKind::Private, &plan("free"))
            .expect_err("free plan");
        assert!(
            e.0.starts_with(
                "Website discovery (crawl_mode) is not available on your current plan (free)"
            ),
            "{}",
            e.0
        );
        assert!(auto.authorize(KeyKind::Private, &plan("starter")).is_ok());
        let e = full
            .authorize(KeyKind::Private, &plan("starter"))
            .expect_err("starter has sitemap discovery only");
        assert!(
            e.0.starts_with("Full website crawl (crawl_mode full) is not available on your current plan (starter)"),
            "{}",
            e.0
        );
        assert!(full.authorize(KeyKind::Private, &plan("pro")).is_ok());

        for (body, field) in [
            (
                json!({"url": "https://a.example/", "crawl_mode": "deep"}),
                "crawl_mode",
            ),
            (json!({"url": ["https://a.example/"]}), "url"),
            (
                json!({"url": "https://a.example/", "include_patterns": ["(unclosed"]}),
                "include_patterns",
            ),
            (
                json!({"url": "https://a.example/", "exclude_patterns": ["ok", "[z-a]"]}),
                "exclude_patterns",
            ),
            (
                json!({"url": "https://a.example/", "include_patterns": [""]}),
                "include_patterns",
            ),
        ] {
            let e = site(body.clone()).expect_err(&body.to_string());
            assert_eq!(e.field, field, "{body}: {}", e.detail);
        }
    }
}
