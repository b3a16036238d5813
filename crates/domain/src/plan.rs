//! Plans and what they gate. The values are data (the `plans` table, seeded from the
//! contract); this module holds the rules that read them.

use serde::{Deserialize, Serialize};

/// How far website discovery may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Discovery {
    None,
    Sitemap,
    Full,
}

impl Discovery {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Discovery::None),
            "sitemap" => Some(Discovery::Sitemap),
            "full" => Some(Discovery::Full),
            _ => None,
        }
    }
}

/// One plan's features and limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub name: String,
    pub async_mode: bool,
    pub batch_polling: bool,
    pub email_notifications: bool,
    pub has_webhook: bool,
    pub zip_output: bool,
    pub target_auth: bool,
    pub discovery: Discovery,
    pub batch_limit: u32,
    pub rpm_private: u32,
    pub rpm_public: u32,
    pub retention_hours: u32,
}

/// A feature a request asks for, named the way the `403` detail names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    AsyncMode,
    BatchPolling,
    Webhooks,
    ZipOutput,
    TargetAuth,
    WebsiteDiscovery,
    /// `crawl_mode: full` (following links), beyond sitemap discovery.
    FullCrawl,
}

impl Feature {
    pub const fn label(self) -> &'static str {
        match self {
            Feature::AsyncMode => "Async mode",
            Feature::BatchPolling => "Batch status polling",
            Feature::Webhooks => "Webhook callbacks (callback_url)",
            Feature::ZipOutput => "ZIP output",
            Feature::TargetAuth => "Target-site authentication (auth, cookies, headers)",
            Feature::WebsiteDiscovery => "Website discovery (crawl_mode)",
            Feature::FullCrawl => "Full website crawl (crawl_mode full)",
        }
    }
}

impl Plan {
    pub fn allows(&self, feature: Feature) -> bool {
        match feature {
            Feature::AsyncMode => self.async_mode,
            Feature::BatchPolling => self.batch_polling,
            Feature::Webhooks => self.has_webhook,
            Feature::ZipOutput => self.zip_output,
            Feature::TargetAuth => self.target_auth,
            Feature::WebsiteDiscovery => self.discovery != Discovery::None,
            Feature::FullCrawl => self.discovery == Discovery::Full,
        }
    }

    /// The contract's `403` detail for a feature this plan lacks.
    pub fn refusal(&self, feature: Feature) -> String {
        format!(
            "{} is not available on your current plan ({}). Upgrade your plan to use it.",
            feature.label(),
            self.name
        )
    }

    /// The contract's default plans, the seed data of the `plans` table.
    pub fn defaults() -> Vec<Plan> {
        let p = |name: &str,
                 paid: bool,
                 webhook: bool,
                 discovery: Discovery,
                 batch_limit: u32,
                 rpm: (u32, u32),
                 retention_hours: u32| Plan {
            name: name.to_string(),
            async_mode: paid,
            batch_polling: paid,
            email_notifications: paid,
            has_webhook: webhook,
            zip_output: paid,
            target_auth: paid,
            discovery,
            batch_limit,
            rpm_private: rpm.0,
            rpm_public: rpm.1,
            retention_hours,
        };
        vec![
            p("free", false, false, Discovery::None, 1, (10, 5), 1),
            p("starter", true, false, Discovery::Sitemap, 25, (60, 25), 24),
            p("pro", true, true, Discovery::Full, 100, (300, 75), 72),
            p(
                "enterprise",
                true,
                true,
                Discovery::Full,
                1000,
                (1000, 150),
                168,
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(name: &str) -> Plan {
        Plan::defaults()
            .into_iter()
            .find(|p| p.name == name)
            .expect("default plan exists")
    }

    #[test]
    fn contract_gating_table() {
        use Feature::*;
        let rows: &[(Feature, [bool; 4])] = &[
            (AsyncMode, [false, true, true, true]),
            (BatchPolling, [false, true, true, true]),
            (Webhooks, [false, false, true, true]),
            (ZipOutput, [false, true, true, true]),
            (TargetAuth, [false, true, true, true]),
            (WebsiteDiscovery, [false, true, true, true]),
            (FullCrawl, [false, false, true, true]),
        ];
        for (feature, want) in rows {
            for (name, want) in ["free", "starter", "pro", "enterprise"].iter().zip(want) {
                assert_eq!(plan(name).allows(*feature), *want, "{name} {feature:?}");
            }
        }
        assert_eq!(plan("starter").discovery, Discovery::Sitemap);
        assert_eq!(plan("enterprise").batch_limit, 1000);
        assert_eq!(plan("pro").rpm_public, 75);
    }

    #[test]
    fn refusal_names_the_feature() {
        let d = plan("starter").refusal(Feature::Webhooks);
        assert!(
            d.starts_with("Webhook callbacks (callback_url) is not available on your current plan")
        );
    }
}
