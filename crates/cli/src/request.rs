//! Request bodies from the command line's options.

use anyhow::{anyhow, bail};
use serde_json::{Map, Value, json};
use url::Url;

use crate::args::{ImageFormat, Kind, NotifyArgs, PdfArgs, RenderArgs, ShotArgs};

/// A target page's URL, checked before anything is sent.
pub fn page_url(s: &str) -> anyhow::Result<Url> {
    let s = s.trim();
    let url = Url::parse(s).map_err(|e| anyhow!("`{s}` is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        bail!("`{s}` is not an http(s) URL");
    }
    Ok(url)
}

/// The fields every conversion shares; `cookie_url` is the site the cookies are for.
pub fn render_fields(r: &RenderArgs, cookie_url: &Url) -> anyhow::Result<Map<String, Value>> {
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    if let Some(v) = r.viewport_width {
        put("viewport_width", json!(v));
    }
    if let Some(v) = r.viewport_height {
        put("viewport_height", json!(v));
    }
    if let Some(v) = &r.wait_for {
        put("wait_for_selector", json!(v));
    }
    if let Some(v) = r.wait_for_timeout {
        put("wait_for_selector_timeout", json!(v));
    }
    if r.no_media {
        put("load_media", json!(false));
    }
    if r.no_scroll {
        put("enable_scroll", json!(false));
    }
    if r.block_ads {
        put("block_ads", json!(true));
    }
    if r.block_media {
        put("block_media", json!(true));
    }
    if r.allow_http_errors {
        put("fail_on_http_error", json!(false));
    }
    if let Some(v) = &r.filename {
        put("output_filename", json!(v));
    }
    if let Some(auth) = &r.basic_auth {
        let Some((user, password)) = auth.split_once(':') else {
            bail!("--basic-auth takes USER:PASSWORD");
        };
        put("auth", json!({"username": user, "password": password}));
    }
    if !r.headers.is_empty() {
        let mut headers = Map::new();
        for h in &r.headers {
            match h.split_once(':') {
                Some((name, value)) if !name.trim().is_empty() => {
                    headers.insert(name.trim().to_string(), json!(value.trim()));
                }
                _ => bail!("--header takes \"Name: value\", not `{h}`"),
            }
        }
        put("headers", Value::Object(headers));
    }
    if !r.cookies.is_empty() {
        let mut cookies = Vec::new();
        for c in &r.cookies {
            match c.split_once('=') {
                Some((name, value)) if !name.trim().is_empty() => cookies.push(json!({
                    "name": name.trim(),
                    "value": value,
                    "url": cookie_url.as_str(),
                })),
                _ => bail!("--cookie takes NAME=VALUE, not `{c}`"),
            }
        }
        put("cookies", Value::Array(cookies));
    }
    Ok(m)
}

/// The PDF fields; layout options that only mean something on paper imply pagination.
pub fn pdf_fields(p: &PdfArgs, m: &mut Map<String, Value>) {
    let paper =
        p.page_size.is_some() || p.page_width.is_some() || p.page_height.is_some() || p.landscape;
    if p.paginate || paper {
        m.insert("single_page".into(), json!(false));
    }
    let mut o = Map::new();
    if let Some(v) = &p.page_size {
        o.insert("page_size".into(), json!(v));
    }
    if let Some(v) = p.page_width {
        o.insert("page_width".into(), json!(v));
    }
    if let Some(v) = p.page_height {
        o.insert("page_height".into(), json!(v));
    }
    if p.landscape {
        o.insert("orientation".into(), json!("landscape"));
    }
    let mut margins = Map::new();
    for (side, v) in [
        ("top", p.margin_top),
        ("bottom", p.margin_bottom),
        ("left", p.margin_left),
        ("right", p.margin_right),
    ] {
        if let Some(v) = v.or(p.margin) {
            margins.insert(side.into(), json!(v));
        }
    }
    if !margins.is_empty() {
        o.insert("margins".into(), Value::Object(margins));
    }
    if let Some(v) = p.scale {
        o.insert("scale".into(), json!(v));
    }
    if p.grayscale {
        o.insert("grayscale".into(), json!(true));
    }
    if let Some(v) = &p.page_header {
        o.insert("header".into(), json!({"content": v}));
    }
    if let Some(v) = &p.page_footer {
        o.insert("footer".into(), json!({"content": v}));
    }
    if p.no_background {
        o.insert("print_background".into(), json!(false));
    }
    if !o.is_empty() {
        m.insert("pdf_options".into(), Value::Object(o));
    }
}

/// The screenshot fields.
pub fn shot_fields(s: &ShotArgs, m: &mut Map<String, Value>) {
    if let Some(f) = s.format {
        m.insert("format".into(), json!(format_name(f)));
    }
    if let Some(q) = s.quality {
        m.insert("quality".into(), json!(q));
    }
    if s.viewport_only {
        m.insert("full_page".into(), json!(false));
    } else if s.full_page {
        m.insert("full_page".into(), json!(true));
    }
    if let Some(v) = s.scale_factor {
        m.insert("device_scale_factor".into(), json!(v));
    }
}

fn format_name(f: ImageFormat) -> &'static str {
    match f {
        ImageFormat::Png => "png",
        ImageFormat::Jpeg => "jpeg",
        ImageFormat::Webp => "webp",
    }
}

/// The file extension of a screenshot in format `f`.
pub fn image_extension(f: Option<ImageFormat>) -> &'static str {
    match f {
        None | Some(ImageFormat::Png) => "png",
        Some(ImageFormat::Jpeg) => "jpg",
        Some(ImageFormat::Webp) => "webp",
    }
}

/// The kind's fields, refusing the other kind's options rather than dropping them silently.
pub fn kind_fields(
    kind: Kind,
    pdf: &PdfArgs,
    shot: &ShotArgs,
    m: &mut Map<String, Value>,
) -> anyhow::Result<()> {
    match kind {
        Kind::Pdf if shot.is_set() => {
            bail!("the screenshot options (--format, --quality, ...) need --kind screenshot")
        }
        Kind::Screenshot if pdf.is_set() => {
            bail!("the PDF options (--paginate, --landscape, --margin, ...) apply to --kind pdf")
        }
        Kind::Pdf => pdf_fields(pdf, m),
        Kind::Screenshot => shot_fields(shot, m),
    }
    Ok(())
}

/// Who hears when an async batch is done.
pub fn notify_fields(n: &NotifyArgs, m: &mut Map<String, Value>) {
    if let Some(v) = &n.notify_email {
        m.insert("notification_email".into(), json!(v));
    }
    if let Some(v) = &n.callback_url {
        m.insert("callback_url".into(), json!(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_before_sending() {
        assert!(page_url("https://example.com/a").is_ok());
        assert!(page_url("  http://127.0.0.1:8099/x ").is_ok());
        for bad in [
            "example.com",
            "ftp://example.com/",
            "",
            "http://",
            "mailto:a@b.c",
        ] {
            assert!(page_url(bad).is_err(), "{bad}");
        }
    }
}
