//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Environment:
  ENCONVERT_API_KEY    the API key (sk_live_... or pk_live_...), instead of --api-key
  ENCONVERT_BASE_URL   the service's address, instead of --base-url
                       (default http://127.0.0.1:8080, where `make run` serves)

Exit status:
  0    everything succeeded
  1    the work was done but some items failed (a partial or failed batch, a page that
       could not be converted); the failures are listed on stderr
  2    usage or API error: bad arguments, a refused request (the API's detail is
       printed), the service unreachable, a wait past --timeout, a file not writable
  130  interrupted (Ctrl-C); a batch already accepted goes on on the server

Prefer ENCONVERT_API_KEY to --api-key: other users of the machine can see command lines.";

/// A command-line client of the Enconvert API: web pages to PDFs and screenshots.
#[derive(Debug, Parser)]
#[command(name = "enconvert", version, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes. The key and the base URL fall back to environment variables
/// (read in `Global::api_key` and `Global::base_url`, not by clap, so that a value from the
/// environment never shows in a usage message).
#[derive(Debug, Args)]
pub struct Global {
    /// The API key [env: ENCONVERT_API_KEY].
    #[arg(long = "api-key", global = true, value_name = "KEY")]
    pub api_key_flag: Option<String>,
    /// The service's base URL [env: ENCONVERT_BASE_URL] [default: http://127.0.0.1:8080].
    #[arg(long = "base-url", global = true, value_name = "URL")]
    pub base_url_flag: Option<String>,
    /// The most a command waits for its conversions to finish, in seconds.
    #[arg(
        long,
        default_value_t = 600,
        global = true,
        value_name = "SECS",
        value_parser = clap::value_parser!(u64).range(1..=7 * 24 * 3600)
    )]
    pub timeout: u64,
    /// No progress bar and no messages on stderr except errors and failures.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

impl Global {
    /// `--api-key`, else `ENCONVERT_API_KEY`; blank counts as missing.
    pub fn api_key(&self) -> Option<String> {
        self.api_key_flag
            .clone()
            .or_else(|| std::env::var("ENCONVERT_API_KEY").ok())
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty())
    }

    /// `--base-url`, else `ENCONVERT_BASE_URL`, else where `make run` serves.
    pub fn base_url(&self) -> String {
        self.base_url_flag
            .clone()
            .or_else(|| std::env::var("ENCONVERT_BASE_URL").ok())
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_string())
    }
}

/// Where `make run` serves the API (`ENCONVERT_API_ADDR`'s default).
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:8080";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Convert one page to a PDF and write it (sync).
    Pdf(PdfCommand),
    /// Take a screenshot of one page and write it (sync; PNG by default).
    Screenshot(ScreenshotCommand),
    /// Convert a list of URLs in one async batch.
    Batch(BatchArgs),
    /// Find a website's pages and convert each, delivered as one ZIP.
    Website(WebsiteArgs),
    /// Show a batch's status (or a job's, with --job).
    Status(StatusArgs),
}

#[derive(Debug, Args)]
pub struct PdfCommand {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub render: RenderArgs,
    #[command(flatten)]
    pub pdf: PdfArgs,
}

#[derive(Debug, Args)]
pub struct ScreenshotCommand {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub render: RenderArgs,
    #[command(flatten)]
    pub shot: ShotArgs,
}

/// One page and where its file goes.
#[derive(Debug, Args)]
pub struct Target {
    /// The page's http(s) URL.
    pub url: String,
    /// Where to write the file (`-` for stdout); default: the name the service gives it.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Your id for the job (1..64 of letters, digits, `_` and `-`); default: a random one.
    #[arg(long, value_name = "ID")]
    pub job_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Pdf,
    Screenshot,
}

#[derive(Debug, Args)]
pub struct BatchArgs {
    /// A file with one URL a line (blank lines and lines starting with `#` are skipped;
    /// `-` reads stdin).
    pub file: PathBuf,
    /// What to make of each URL.
    #[arg(long, value_enum, default_value = "pdf")]
    pub kind: Kind,
    /// Bundle the files as one ZIP (needs at least two URLs).
    #[arg(long)]
    pub zip: bool,
    /// Wait for the batch to finish, then download its files.
    #[arg(long)]
    pub wait: bool,
    /// The directory to download into (with --wait); created when missing.
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    pub output: PathBuf,
    #[command(flatten)]
    pub notify: NotifyArgs,
    #[command(flatten)]
    pub render: RenderArgs,
    #[command(flatten)]
    pub pdf: PdfArgs,
    #[command(flatten)]
    pub shot: ShotArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CrawlMode {
    /// The most your plan allows.
    Auto,
    /// The pages the site's sitemap lists.
    Sitemap,
    /// The sitemap plus the pages linked from the start URL, on the same site.
    Full,
}

#[derive(Debug, Args)]
pub struct WebsiteArgs {
    /// The site's start URL.
    pub url: String,
    /// How to find the pages.
    #[arg(long, value_enum, default_value = "auto")]
    pub mode: CrawlMode,
    /// What to make of each page.
    #[arg(long, value_enum, default_value = "pdf")]
    pub kind: Kind,
    /// Only pages whose URL matches this regular expression (repeatable).
    #[arg(long, value_name = "REGEX")]
    pub include: Vec<String>,
    /// Leave out pages whose URL matches this regular expression (repeatable).
    #[arg(long, value_name = "REGEX")]
    pub exclude: Vec<String>,
    /// Wait for the site to be converted, then download the ZIP.
    #[arg(long)]
    pub wait: bool,
    /// Where to write the ZIP (with --wait); default: HOST.zip.
    #[arg(short, long, value_name = "FILE.zip")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub notify: NotifyArgs,
    #[command(flatten)]
    pub render: RenderArgs,
    #[command(flatten)]
    pub pdf: PdfArgs,
    #[command(flatten)]
    pub shot: ShotArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The batch id (or, with --job, a job id).
    pub id: String,
    /// The id is a job's, not a batch's.
    #[arg(long)]
    pub job: bool,
    /// Print the API's JSON as it came.
    #[arg(long)]
    pub json: bool,
}

/// Who hears when an async batch is done.
#[derive(Debug, Args)]
#[command(next_help_heading = "Notifications")]
pub struct NotifyArgs {
    /// Email this address when the batch is done (default: the project owner).
    #[arg(long, value_name = "EMAIL")]
    pub notify_email: Option<String>,
    /// POST a signed webhook to this URL when the batch is done.
    #[arg(long, value_name = "URL")]
    pub callback_url: Option<String>,
}

/// Options for loading the page, for every kind of output.
#[derive(Debug, Args)]
#[command(next_help_heading = "Page loading")]
pub struct RenderArgs {
    /// Browser window width in pixels (320..3840; default 1920).
    #[arg(long, value_name = "PX")]
    pub viewport_width: Option<u32>,
    /// Browser window height in pixels (240..2160; default 1080).
    #[arg(long, value_name = "PX")]
    pub viewport_height: Option<u32>,
    /// Wait until this CSS selector matches before capturing.
    #[arg(long, value_name = "SELECTOR")]
    pub wait_for: Option<String>,
    /// How long to wait for --wait-for, in milliseconds (at most 60000; default 10000).
    #[arg(long, value_name = "MS")]
    pub wait_for_timeout: Option<u32>,
    /// Do not load images and media.
    #[arg(long)]
    pub no_media: bool,
    /// Do not scroll the page to load lazy content.
    #[arg(long)]
    pub no_scroll: bool,
    /// Block known ad and tracker hosts.
    #[arg(long)]
    pub block_ads: bool,
    /// Block video and audio.
    #[arg(long)]
    pub block_media: bool,
    /// Capture the page even when it answers an HTTP error.
    #[arg(long)]
    pub allow_http_errors: bool,
    /// HTTP basic auth for the page, as USER:PASSWORD.
    #[arg(long, value_name = "USER:PASSWORD")]
    pub basic_auth: Option<String>,
    /// An extra request header for the page, as "Name: value" (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// A cookie for the page's site, as NAME=VALUE (repeatable).
    #[arg(long = "cookie", value_name = "NAME=VALUE")]
    pub cookies: Vec<String>,
    /// The stem of the file name the service gives the output.
    #[arg(long, value_name = "STEM")]
    pub filename: Option<String>,
}

/// PDF layout.
#[derive(Debug, Args)]
#[command(next_help_heading = "PDF")]
pub struct PdfArgs {
    /// Print on pages of --page-size instead of one tall page sized to the content.
    #[arg(long)]
    pub paginate: bool,
    /// Paper size: A0..A6, B0..B5, Letter, Legal, Tabloid, Ledger (implies --paginate).
    #[arg(long, value_name = "SIZE")]
    pub page_size: Option<String>,
    /// Custom paper width in mm (implies --paginate).
    #[arg(long, value_name = "MM")]
    pub page_width: Option<f64>,
    /// Custom paper height in mm (implies --paginate).
    #[arg(long, value_name = "MM")]
    pub page_height: Option<f64>,
    /// Landscape paper (implies --paginate).
    #[arg(long)]
    pub landscape: bool,
    /// All four margins in mm (default 10).
    #[arg(long, value_name = "MM")]
    pub margin: Option<f64>,
    /// Top margin in mm.
    #[arg(long, value_name = "MM")]
    pub margin_top: Option<f64>,
    /// Bottom margin in mm.
    #[arg(long, value_name = "MM")]
    pub margin_bottom: Option<f64>,
    /// Left margin in mm.
    #[arg(long, value_name = "MM")]
    pub margin_left: Option<f64>,
    /// Right margin in mm.
    #[arg(long, value_name = "MM")]
    pub margin_right: Option<f64>,
    /// Zoom, 0.1..2.0.
    #[arg(long, value_name = "FACTOR")]
    pub scale: Option<f64>,
    /// Print in shades of grey.
    #[arg(long)]
    pub grayscale: bool,
    /// A header on every page; {page} and {total_pages} are replaced.
    #[arg(long, value_name = "TEXT")]
    pub page_header: Option<String>,
    /// A footer on every page, e.g. "Page {page} of {total_pages}".
    #[arg(long, value_name = "TEXT")]
    pub page_footer: Option<String>,
    /// Leave out background colours and images.
    #[arg(long)]
    pub no_background: bool,
}

impl PdfArgs {
    /// Whether any PDF option was given.
    pub fn is_set(&self) -> bool {
        self.paginate
            || self.page_size.is_some()
            || self.page_width.is_some()
            || self.page_height.is_some()
            || self.landscape
            || self.margin.is_some()
            || self.margin_top.is_some()
            || self.margin_bottom.is_some()
            || self.margin_left.is_some()
            || self.margin_right.is_some()
            || self.scale.is_some()
            || self.grayscale
            || self.page_header.is_some()
            || self.page_footer.is_some()
            || self.no_background
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImageFormat {
    Png,
    Jpeg,
    Webp,
}

/// Screenshot output.
#[derive(Debug, Args)]
#[command(next_help_heading = "Screenshot")]
pub struct ShotArgs {
    /// Image format.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<ImageFormat>,
    /// JPEG or WebP quality, 1..100 (default 90).
    #[arg(long, value_name = "1-100")]
    pub quality: Option<u8>,
    /// Capture only the viewport instead of the full page.
    #[arg(long, conflicts_with = "full_page")]
    pub viewport_only: bool,
    /// Capture the full scrollable page (the default).
    #[arg(long)]
    pub full_page: bool,
    /// Device pixel ratio, 1..3 (2 doubles the image's pixels).
    #[arg(long, value_name = "RATIO")]
    pub scale_factor: Option<f64>,
}

impl ShotArgs {
    /// Whether any screenshot option was given.
    pub fn is_set(&self) -> bool {
        self.format.is_some()
            || self.quality.is_some()
            || self.viewport_only
            || self.full_page
            || self.scale_factor.is_some()
    }
}
