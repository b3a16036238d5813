//! The OpenAPI document (generated from the handlers' annotations) and a readable page
//! rendered from it.

use actix_web::HttpResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{Modify, OpenApi};

use crate::responses::{
    Accepted, BatchItem, BatchStatusBody, ErrorBody, JobStatusBody, SyncResult, WebsiteAccepted,
};
use crate::routes::{convert, deliveries, project, status, website};

struct KeyHeader;

impl Modify for KeyHeader {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Enconvert API",
        version = "1",
        description = "Web pages to PDFs and screenshots. Wire-compatible with the hosted Enconvert v1 API."
    ),
    paths(
        convert::url_to_pdf,
        convert::url_to_screenshot,
        website::website_to_pdf,
        website::website_to_screenshot,
        status::batch,
        status::job,
        deliveries::list,
        deliveries::redeliver,
        project::settings,
        project::update_settings
    ),
    components(schemas(
        enconvert_domain::request::RawConvertRequest,
        enconvert_domain::request::RawPdfOptions,
        enconvert_domain::request::RawMargins,
        enconvert_domain::request::Band,
        enconvert_domain::request::Cookie,
        enconvert_domain::request::BasicAuth,
        Accepted,
        WebsiteAccepted,
        SyncResult,
        BatchStatusBody,
        BatchItem,
        JobStatusBody,
        ErrorBody
    )),
    modifiers(&KeyHeader)
)]
pub struct ApiDoc;

pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `GET /docs`: the endpoints and the request fields, for people.
pub async fn page() -> HttpResponse {
    let doc = ApiDoc::openapi();
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Enconvert API</title>\
         <style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5}\
         code{background:#f3f3f3;padding:0 .2em}table{border-collapse:collapse;width:100%}\
         td,th{border-bottom:1px solid #ddd;text-align:left;padding:.3em;vertical-align:top}</style></head><body>\
         <h1>Enconvert API v1</h1><p>Send your key in the <code>X-API-Key</code> header. \
         Every error is <code>{\"detail\": ..., \"code\": ...}</code>. \
         The machine-readable document is at <a href=\"/openapi.json\">/openapi.json</a>.</p><h2>Endpoints</h2>",
    );
    for (path, item) in &doc.paths.paths {
        for (method, op) in [("GET", &item.get), ("POST", &item.post), ("PUT", &item.put)] {
            let Some(op) = op else { continue };
            html.push_str(&format!("<h3><code>{method} {}</code></h3>", esc(path)));
            if let Some(d) = op.description.as_ref().or(op.summary.as_ref()) {
                html.push_str(&format!("<p>{}</p>", esc(d)));
            }
            html.push_str("<ul>");
            for (code, resp) in &op.responses.responses {
                let desc = match resp {
                    RefOr::T(r) => r.description.clone(),
                    RefOr::Ref(r) => r.ref_location.clone(),
                };
                html.push_str(&format!(
                    "<li><code>{}</code> {}</li>",
                    esc(code),
                    esc(&desc)
                ));
            }
            html.push_str("</ul>");
        }
    }
    if let Some(components) = &doc.components {
        for name in ["RawConvertRequest", "RawPdfOptions"] {
            if let Some(RefOr::T(Schema::Object(obj))) = components.schemas.get(name) {
                let title = if name == "RawConvertRequest" {
                    "Request fields"
                } else {
                    "pdf_options"
                };
                html.push_str(&format!(
                    "<h2>{title}</h2><table><tr><th>field</th><th>meaning</th></tr>"
                ));
                for (field, schema) in &obj.properties {
                    let desc = match schema {
                        RefOr::T(Schema::Object(o)) => o.description.clone().unwrap_or_default(),
                        _ => String::new(),
                    };
                    html.push_str(&format!(
                        "<tr><td><code>{}</code></td><td>{}</td></tr>",
                        esc(field),
                        esc(&desc)
                    ));
                }
                html.push_str("</table>");
            }
        }
    }
    html.push_str("</body></html>");
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html)
}
