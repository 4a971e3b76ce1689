//! `PXSYNC_CONFIG`: several salons served by one deployment, from one JSON file.
//!
//! ```json
//! {
//!   "salons": [
//!     {
//!       "planexpo_event": "santexpo-2026",
//!       "planexpo_base_url": "https://tenant.planexpo.fr",
//!       "planexpo_api_key": {"env": "PLANEXPO_API_KEY_SANTEXPO"},
//!       "webhook_secret": {"file": "/var/run/secrets/pxsync/webhook-santexpo"},
//!       "inwink_event_id": "8c1f5a2e-3b4d-4e6f-9a7b-1c2d3e4f5a6b",
//!       "inwink_base_url": "https://api.inwink.com",
//!       "inwink_token_url": "https://auth.inwink.com/connect/token",
//!       "inwink_client_id": "pxsync-santexpo",
//!       "inwink_client_secret": {"env": "INWINK_CLIENT_SECRET_SANTEXPO"},
//!       "inwink_scope": null,
//!       "inwink_rate_limit": 20,
//!       "poll_interval": "5s",
//!       "rescan_interval": "24h"
//!     }
//!   ]
//! }
//! ```
//! Secrets are references (`{"env": NAME}` or `{"file": PATH}`, e.g. a mounted Kubernetes
//! secret), never values: the file can live in a ConfigMap. Errors name the salon and the field,
//! never a secret.

use anyhow::{Context, bail};
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SalonsConfig {
    pub salons: Vec<SalonConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SalonConfig {
    pub planexpo_event: String,
    pub planexpo_base_url: String,
    pub planexpo_api_key: SecretRef,
    #[serde(default)]
    pub webhook_secret: Option<SecretRef>,
    pub inwink_event_id: String,
    pub inwink_base_url: String,
    pub inwink_token_url: String,
    pub inwink_client_id: String,
    pub inwink_client_secret: SecretRef,
    #[serde(default)]
    pub inwink_scope: Option<String>,
    /// Calls per second to this salon's inwink event, all emitter processes together (optional;
    /// unset: no cap, the emitter adapts to 429s). Salons sharing an inwink event share its cap.
    #[serde(default)]
    pub inwink_rate_limit: Option<f64>,
    #[serde(default = "default_poll")]
    pub poll_interval: String,
    #[serde(default = "default_rescan")]
    pub rescan_interval: String,
}

fn default_poll() -> String {
    "5s".into()
}

fn default_rescan() -> String {
    "24h".into()
}

/// Where a secret is read from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum SecretRef {
    Env(String),
    File(std::path::PathBuf),
}

impl SecretRef {
    pub fn resolve(&self, salon: &str, field: &str) -> anyhow::Result<String> {
        let value = match self {
            SecretRef::Env(name) => std::env::var(name).with_context(|| {
                format!("salon {salon}: {field}: environment variable {name} is not set")
            })?,
            SecretRef::File(path) => std::fs::read_to_string(path)
                .with_context(|| format!("salon {salon}: {field}: cannot read {}", path.display()))?
                .trim_end()
                .to_owned(),
        };
        if value.is_empty() {
            bail!("salon {salon}: {field}: the referenced secret is empty");
        }
        Ok(value)
    }
}

impl SalonsConfig {
    pub fn load(path: &Path) -> anyhow::Result<SalonsConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("PXSYNC_CONFIG: cannot read {}", path.display()))?;
        let config: SalonsConfig = serde_json::from_str(&text).map_err(|e| {
            // Serde quotes values in most messages (a secret pasted by mistake would be
            // echoed): keep only the messages that name fields.
            let text = e.to_string();
            let detail = if text.starts_with("missing field") || text.starts_with("unknown field") {
                text
            } else {
                "a value does not fit the documented schema (secrets are {\"env\": NAME} or {\"file\": PATH})".into()
            };
            anyhow::anyhow!("PXSYNC_CONFIG {}: line {}, column {}: {detail}", path.display(), e.line(), e.column())
        })?;
        if config.salons.is_empty() {
            bail!("PXSYNC_CONFIG {}: no salon", path.display());
        }
        let mut seen = std::collections::BTreeSet::new();
        for s in &config.salons {
            if !seen.insert(&s.planexpo_event) {
                bail!("PXSYNC_CONFIG: salon {} appears twice", s.planexpo_event);
            }
            if let Some(r) = s.inwink_rate_limit
                && !(r.is_finite() && r > 0.0)
            {
                bail!(
                    "salon {}: inwink_rate_limit: must be a number of calls per second above 0",
                    s.planexpo_event
                );
            }
            for (field, d) in [
                ("poll_interval", &s.poll_interval),
                ("rescan_interval", &s.rescan_interval),
            ] {
                humantime::parse_duration(d)
                    .map_err(|e| anyhow::anyhow!("salon {}: {field}: {e}", s.planexpo_event))?;
            }
        }
        Ok(config)
    }
}

impl SalonConfig {
    /// This salon as the mask's prerequisites sheet sees it: ids, and where each secret is read
    /// from (never the secret). `path` is the salons file, named in messages.
    pub fn deployment(&self, path: &Path) -> pxsync_mask::Deployment {
        use pxsync_mask::{PrerequisiteKey as K, SecretSource, Setting, SettingValue};
        let plain = |name: &str, value: &str| Setting {
            name: name.to_owned(),
            value: SettingValue::Plain(value.to_owned()),
        };
        let secret = |name: &str, r: Option<&SecretRef>| Setting {
            name: name.to_owned(),
            value: SettingValue::Secret(match r {
                Some(SecretRef::Env(var)) => SecretSource::Env(var.clone()),
                Some(SecretRef::File(file)) => SecretSource::File(file.display().to_string()),
                None => SecretSource::Missing,
            }),
        };
        pxsync_mask::Deployment {
            source: format!(
                "PXSYNC_CONFIG {} (salon {})",
                path.display(),
                self.planexpo_event
            ),
            settings: std::collections::BTreeMap::from([
                (
                    K::PlanexpoBaseUrl,
                    plain("planexpo_base_url", &self.planexpo_base_url),
                ),
                (
                    K::PlanexpoEventSlug,
                    plain("planexpo_event", &self.planexpo_event),
                ),
                (
                    K::InwinkEventId,
                    plain("inwink_event_id", &self.inwink_event_id),
                ),
                (
                    K::InwinkClientId,
                    plain("inwink_client_id", &self.inwink_client_id),
                ),
                (
                    K::PlanexpoApiKeyRef,
                    secret("planexpo_api_key", Some(&self.planexpo_api_key)),
                ),
                (
                    K::InwinkClientSecretRef,
                    secret("inwink_client_secret", Some(&self.inwink_client_secret)),
                ),
                (
                    K::WebhookSecretRef,
                    secret("webhook_secret", self.webhook_secret.as_ref()),
                ),
            ]),
        }
    }

    fn duration(&self, d: &str) -> Duration {
        humantime::parse_duration(d).unwrap_or(Duration::from_secs(5))
    }

    /// The ingestor's view of this salon.
    pub fn ingestor_salon(&self) -> anyhow::Result<crate::ingestor::Salon> {
        let planexpo = pxsync_planexpo::PlanexpoClient::new(pxsync_planexpo::PlanexpoConfig {
            base_url: self.planexpo_base_url.clone(),
            api_key: pxsync_planexpo::Secret::new(
                self.planexpo_api_key
                    .resolve(&self.planexpo_event, "planexpo_api_key")?,
            ),
            event: self.planexpo_event.clone(),
            timeout: Duration::from_secs(15),
        })
        .with_context(|| format!("salon {}", self.planexpo_event))?;
        Ok(crate::ingestor::Salon {
            planexpo,
            inwink_event_id: self.inwink_event_id.clone(),
            poll_interval: self.duration(&self.poll_interval),
            rescan_interval: self.duration(&self.rescan_interval),
            page_size: crate::ingestor::DEFAULT_PAGE_SIZE,
        })
    }

    pub fn webhook_secret(&self) -> anyhow::Result<Option<String>> {
        self.webhook_secret
            .as_ref()
            .map(|s| s.resolve(&self.planexpo_event, "webhook_secret"))
            .transpose()
    }

    /// The emitter's inwink client of this salon.
    pub fn inwink_client(&self) -> anyhow::Result<pxsync_inwink::InwinkClient> {
        pxsync_inwink::InwinkClient::new(pxsync_inwink::InwinkConfig {
            base_url: self.inwink_base_url.clone(),
            token_url: self.inwink_token_url.clone(),
            client_id: self.inwink_client_id.clone(),
            client_secret: pxsync_inwink::Secret::new(
                self.inwink_client_secret
                    .resolve(&self.planexpo_event, "inwink_client_secret")?,
            ),
            scope: self.inwink_scope.clone(),
            event_id: self.inwink_event_id.clone(),
            timeout: Duration::from_secs(10),
        })
        .with_context(|| format!("salon {}", self.planexpo_event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("pxsync-config-{}.json", fastrand::u64(..)));
        std::fs::write(&path, text).unwrap();
        path
    }

    const ONE: &str = r#"{"salons": [{"planexpo_event": "a", "planexpo_base_url": "http://127.0.0.1:1", "planexpo_api_key": {"env": "PXSYNC_TEST_UNSET_KEY"},
        "inwink_event_id": "e", "inwink_base_url": "http://127.0.0.1:2", "inwink_token_url": "http://127.0.0.1:2/oauth/token",
        "inwink_client_id": "c", "inwink_client_secret": {"file": "/nonexistent/secret"}}]}"#;

    #[test]
    fn a_valid_file_loads_with_defaults() {
        let c = SalonsConfig::load(&write(ONE)).unwrap();
        assert_eq!(c.salons[0].poll_interval, "5s");
        assert_eq!(c.salons[0].rescan_interval, "24h");
    }

    #[test]
    fn errors_name_the_salon_and_field_never_a_secret() {
        let c = SalonsConfig::load(&write(ONE)).unwrap();
        let e = format!(
            "{:#}",
            c.salons[0].ingestor_salon().err().expect("an error")
        );
        assert!(
            e.contains(
                "salon a: planexpo_api_key: environment variable PXSYNC_TEST_UNSET_KEY is not set"
            ),
            "{e}"
        );
        let Err(e) = c.salons[0].inwink_client() else {
            panic!("an unreadable file is an error")
        };
        let e = format!("{e:#}");
        assert!(
            e.contains("salon a: inwink_client_secret: cannot read /nonexistent/secret"),
            "{e}"
        );
        let literal = ONE.replace(r#"{"env": "PXSYNC_TEST_UNSET_KEY"}"#, r#""px-live-123456""#);
        let e = format!("{:#}", SalonsConfig::load(&write(&literal)).unwrap_err());
        assert!(
            !e.contains("px-live-123456"),
            "a literal secret is refused without being echoed: {e}"
        );
        let twice = ONE.replace(r#"{"salons": [{"#, r#"{"salons": [{"planexpo_event": "a", "planexpo_base_url": "x", "planexpo_api_key": {"env": "K"}, "inwink_event_id": "e", "inwink_base_url": "x", "inwink_token_url": "x", "inwink_client_id": "c", "inwink_client_secret": {"env": "S"}}, {"#);
        assert!(
            format!("{:#}", SalonsConfig::load(&write(&twice)).unwrap_err())
                .contains("salon a appears twice")
        );
        let bad = ONE.replace(
            r#""inwink_client_id": "c","#,
            r#""inwink_client_id": "c", "poll_interval": "soon","#,
        );
        assert!(
            format!("{:#}", SalonsConfig::load(&write(&bad)).unwrap_err())
                .contains("salon a: poll_interval")
        );
        let capped = ONE.replace(
            r#""inwink_client_id": "c","#,
            r#""inwink_client_id": "c", "inwink_rate_limit": 12.5,"#,
        );
        assert_eq!(
            SalonsConfig::load(&write(&capped)).unwrap().salons[0].inwink_rate_limit,
            Some(12.5)
        );
        let zero = ONE.replace(
            r#""inwink_client_id": "c","#,
            r#""inwink_client_id": "c", "inwink_rate_limit": 0,"#,
        );
        assert!(
            format!("{:#}", SalonsConfig::load(&write(&zero)).unwrap_err())
                .contains("salon a: inwink_rate_limit")
        );
    }
}
