//! The prerequisites sheet against the deployment's configuration (`PXSYNC_CONFIG` or the
//! environment). The caller describes the deployment as a [`Deployment`]: its ids, and *where*
//! it reads each secret from (an environment variable's name, a file's path), never a secret.
//! [`check_prerequisites`] compares the sheet with it and returns located issues.

use crate::layout::PrerequisiteKey;
use crate::secret::looks_like_secret;
use crate::{LocatedIssue, Prerequisite, REDACTED, Severity};
use std::collections::BTreeMap;

/// Where the deployment reads a secret from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable, by name (set in the deployment's environment).
    Env(String),
    /// A file, by path (e.g. a mounted Kubernetes secret).
    File(String),
    /// The deployment does not set it.
    Missing,
}

/// One setting of the deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingValue {
    /// An id, a slug or a URL.
    Plain(String),
    /// A secret: only where it is read from.
    Secret(SecretSource),
}

/// One setting as the deployment names it (`PXSYNC_PLANEXPO_EVENT`, or the salons file's field
/// `planexpo_event`) and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub name: String,
    pub value: SettingValue,
}

/// A salon's settings as the deployment has them. Keys it does not know are left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// Where the settings come from, for messages: "the environment", or
    /// "PXSYNC_CONFIG /etc/pxsync/salons.json (salon santexpo-2026)".
    pub source: String,
    pub settings: BTreeMap<PrerequisiteKey, Setting>,
}

impl Deployment {
    /// What the prerequisites sheet should say for this deployment (for `pxsync mask draft`):
    /// the ids as configured, `env:NAME` for a secret read from a variable, and
    /// `secret:name/key` for a secret read from the file `…/name/key` (a Kubernetes secret
    /// mounted as files). Secrets the deployment does not set, and files that do not look like
    /// a mounted secret, are left out (the draft keeps its default there).
    pub fn sheet_values(&self) -> BTreeMap<PrerequisiteKey, String> {
        let mut out = BTreeMap::new();
        for (key, setting) in &self.settings {
            let value = match &setting.value {
                SettingValue::Plain(v) if !v.trim().is_empty() => v.trim().to_owned(),
                SettingValue::Secret(SecretSource::Env(var)) => format!("env:{var}"),
                SettingValue::Secret(SecretSource::File(path)) => {
                    let mut parts = path.rsplit('/');
                    let (Some(file), Some(dir)) = (parts.next(), parts.next()) else {
                        continue;
                    };
                    let reference = format!("secret:{dir}/{file}");
                    if !crate::secret::is_reference(&reference) {
                        continue;
                    }
                    reference
                }
                _ => continue,
            };
            out.insert(*key, value);
        }
        out
    }
}

/// Compares the prerequisites sheet with the deployment and with the event being imported
/// (`event`, the `--event` slug). Every difference is an error naming the sheet, the row and
/// column B, and the setting of the deployment it differs from: an id that is not the
/// configured one, or a reference (`env:NAME`, `secret:name/key`) that does not point where the
/// deployment reads that secret. A reference the deployment cannot be compared with (it does
/// not set the secret) is a warning, except the webhook secret's, which is optional. Secrets are never in the messages: only variable names,
/// file paths and secret names, which are references.
pub fn check_prerequisites(
    sheet: &str,
    prerequisites: &[Prerequisite],
    event: &str,
    deployment: &Deployment,
) -> Vec<LocatedIssue> {
    let mut issues = Vec::new();
    let sheet = if sheet.is_empty() {
        crate::SheetKind::Prerequisites.french_name()
    } else {
        sheet
    };
    let mut seen = std::collections::BTreeSet::new();
    for p in prerequisites {
        let Some(key) = p.known_key() else { continue };
        let value = p.value.trim();
        // The first row giving a key is the one read (a repeat is already a warning).
        if value.is_empty() || value == REDACTED || !seen.insert(key) {
            continue;
        }
        let mut push = |severity, message: String| {
            issues.push(LocatedIssue {
                severity,
                sheet: sheet.to_owned(),
                row: p.row,
                column: "B".into(),
                message,
            });
        };
        let label = key.english_label();
        if key == PrerequisiteKey::PlanexpoEventSlug && value != event.trim() {
            push(
                Severity::Error,
                format!(
                    "the {label} is \"{value}\" in the mask but the import is for event \"{event}\": import the mask of this event, or fix the cell"
                ),
            );
        }
        let Some(setting) = deployment.settings.get(&key) else {
            continue;
        };
        let name = &setting.name;
        let source = &deployment.source;
        match &setting.value {
            SettingValue::Plain(configured) => {
                if !same_plain(key, value, configured) {
                    // A configured URL can carry credentials: such a value is never shown.
                    let shown = if looks_like_secret(configured, true) {
                        "a value that is not shown (it carries credentials)".to_owned()
                    } else {
                        format!("\"{}\"", configured.trim())
                    };
                    push(
                        Severity::Error,
                        format!(
                            "the {label} is \"{value}\" in the mask but {shown} in {source} ({name}): fix the cell or the deployment"
                        ),
                    );
                }
            }
            // Webhooks are optional (polling alone syncs): a deployment without a webhook
            // secret has nothing to compare the reference with.
            SettingValue::Secret(SecretSource::Missing)
                if key == PrerequisiteKey::WebhookSecretRef => {}
            SettingValue::Secret(source_of_secret) => {
                if let Some(message) = reference_mismatch(value, source_of_secret, source, name) {
                    let severity = if *source_of_secret == SecretSource::Missing {
                        Severity::Warning
                    } else {
                        Severity::Error
                    };
                    push(severity, format!("the {label} {message}"));
                }
            }
        }
    }
    issues
}

/// Ids compared as the APIs compare them: inwink GUIDs ignoring case, URLs without a trailing
/// slash and ignoring case, slugs and client ids exactly (trimmed).
fn same_plain(key: PrerequisiteKey, a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    match key {
        PrerequisiteKey::PlanexpoBaseUrl => a
            .trim_end_matches('/')
            .eq_ignore_ascii_case(b.trim_end_matches('/')),
        PrerequisiteKey::InwinkEventId => a.eq_ignore_ascii_case(b),
        _ => a == b,
    }
}

/// Why a reference of the sheet does not match where the deployment reads the secret (the
/// end of a sentence starting with the setting's label), or `None` when it matches.
fn reference_mismatch(
    reference: &str,
    configured: &SecretSource,
    source: &str,
    setting: &str,
) -> Option<String> {
    let lower = reference.to_ascii_lowercase();
    let env = lower
        .starts_with("env:")
        .then(|| reference[4..].trim().to_owned());
    let secret = lower
        .starts_with("secret:")
        .then(|| reference[7..].trim().to_owned());
    match configured {
        SecretSource::Missing => Some(format!(
            "is kept in {reference} according to the mask, but {source} does not set {setting}: it cannot be checked here"
        )),
        SecretSource::Env(var) => match (env, secret) {
            (Some(name), _) if name == *var => None,
            (Some(name), _) => Some(format!(
                "is in environment variable {name} according to the mask, but the deployment ({source}) reads it from {var}: write env:{var} in the cell, or change the deployment"
            )),
            // A Kubernetes secret's key mapped into the variable (`secretKeyRef`): the mapping
            // lives in the manifests, not in the configuration pxsync reads.
            (None, Some(_)) => None,
            (None, None) => Some("is not a reference".into()),
        },
        SecretSource::File(path) => match (env, secret) {
            (Some(name), _) => Some(format!(
                "is in environment variable {name} according to the mask, but the deployment ({source}) reads it from the file {path} ({setting}): write its secret reference (secret:name/key) in the cell, or change the deployment"
            )),
            (None, Some(name_key)) => {
                let (name, key) = name_key.split_once('/').unwrap_or((&name_key, ""));
                let file_name = path.rsplit('/').next().unwrap_or(path);
                (file_name != key).then(|| format!(
                    "is key {key} of Kubernetes secret {name} according to the mask, but the deployment ({source}) reads it from the file {path} ({setting}), which is not that key: fix the cell or the mount"
                ))
            }
            (None, None) => Some("is not a reference".into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(key: PrerequisiteKey, value: &str, row: usize) -> Prerequisite {
        Prerequisite {
            key: key.english_label().into(),
            value: value.into(),
            row,
        }
    }

    fn deployment(secret: SecretSource) -> Deployment {
        let plain = |name: &str, v: &str| Setting {
            name: name.into(),
            value: SettingValue::Plain(v.into()),
        };
        Deployment {
            source: "the environment".into(),
            settings: BTreeMap::from([
                (
                    PrerequisiteKey::PlanexpoEventSlug,
                    plain("PXSYNC_PLANEXPO_EVENT", "salon-2026"),
                ),
                (
                    PrerequisiteKey::PlanexpoBaseUrl,
                    plain("PXSYNC_PLANEXPO_BASE_URL", "https://org.planexpo.fr/"),
                ),
                (
                    PrerequisiteKey::InwinkEventId,
                    plain(
                        "PXSYNC_INWINK_EVENT_ID",
                        "3F2B8C1E-9D4A-4B6E-8F00-1234567890AB",
                    ),
                ),
                (
                    PrerequisiteKey::InwinkClientSecretRef,
                    Setting {
                        name: "PXSYNC_INWINK_CLIENT_SECRET".into(),
                        value: SettingValue::Secret(secret),
                    },
                ),
            ]),
        }
    }

    fn check(rows: &[Prerequisite], secret: SecretSource) -> Vec<String> {
        check_prerequisites(
            "Prérequis techniques",
            rows,
            "salon-2026",
            &deployment(secret),
        )
        .iter()
        .map(ToString::to_string)
        .collect()
    }

    #[test]
    fn the_sheet_values_of_a_deployment_check_clean() {
        let mut d = deployment(SecretSource::File(
            "/var/run/secrets/pxsync-inwink/client-secret".into(),
        ));
        d.settings.insert(
            PrerequisiteKey::PlanexpoApiKeyRef,
            Setting {
                name: "planexpo_api_key".into(),
                value: SettingValue::Secret(SecretSource::Env("KEY_SANTE".into())),
            },
        );
        let values = d.sheet_values();
        assert_eq!(
            values
                .get(&PrerequisiteKey::InwinkClientSecretRef)
                .map(String::as_str),
            Some("secret:pxsync-inwink/client-secret")
        );
        assert_eq!(
            values
                .get(&PrerequisiteKey::PlanexpoApiKeyRef)
                .map(String::as_str),
            Some("env:KEY_SANTE")
        );
        let rows: Vec<Prerequisite> = values
            .iter()
            .enumerate()
            .map(|(i, (k, v))| p(*k, v, i + 2))
            .collect();
        assert!(check_prerequisites("Prérequis techniques", &rows, "salon-2026", &d).is_empty());
    }

    #[test]
    fn matching_ids_and_references_pass() {
        let rows = [
            p(PrerequisiteKey::PlanexpoEventSlug, "salon-2026", 3),
            p(
                PrerequisiteKey::PlanexpoBaseUrl,
                "https://ORG.planexpo.fr",
                2,
            ),
            p(
                PrerequisiteKey::InwinkEventId,
                "3f2b8c1e-9d4a-4b6e-8f00-1234567890ab",
                5,
            ),
            p(
                PrerequisiteKey::InwinkClientSecretRef,
                "env:PXSYNC_INWINK_CLIENT_SECRET",
                7,
            ),
            p(PrerequisiteKey::InwinkClientId, "not configured here", 6),
        ];
        assert!(
            check(
                &rows,
                SecretSource::Env("PXSYNC_INWINK_CLIENT_SECRET".into())
            )
            .is_empty()
        );
        let k8s = [p(
            PrerequisiteKey::InwinkClientSecretRef,
            "secret:pxsync-inwink/client-secret",
            7,
        )];
        assert!(
            check(
                &k8s,
                SecretSource::File("/var/run/secrets/pxsync-inwink/client-secret".into())
            )
            .is_empty()
        );
    }

    #[test]
    fn differences_name_the_cell_and_the_setting() {
        let rows = [
            p(PrerequisiteKey::PlanexpoEventSlug, "autre-salon", 3),
            p(PrerequisiteKey::InwinkEventId, "id-evenement-inwink", 5),
            p(
                PrerequisiteKey::InwinkClientSecretRef,
                "env:INWINK_SECRET",
                7,
            ),
        ];
        assert_eq!(
            check(
                &rows,
                SecretSource::Env("PXSYNC_INWINK_CLIENT_SECRET".into())
            ),
            [
                "error: sheet Prérequis techniques, row 3, column B: the Planexpo event slug is \"autre-salon\" in the mask but the import is for event \"salon-2026\": import the mask of this event, or fix the cell",
                "error: sheet Prérequis techniques, row 3, column B: the Planexpo event slug is \"autre-salon\" in the mask but \"salon-2026\" in the environment (PXSYNC_PLANEXPO_EVENT): fix the cell or the deployment",
                "error: sheet Prérequis techniques, row 5, column B: the inwink event id is \"id-evenement-inwink\" in the mask but \"3F2B8C1E-9D4A-4B6E-8F00-1234567890AB\" in the environment (PXSYNC_INWINK_EVENT_ID): fix the cell or the deployment",
                "error: sheet Prérequis techniques, row 7, column B: the inwink client secret reference is in environment variable INWINK_SECRET according to the mask, but the deployment (the environment) reads it from PXSYNC_INWINK_CLIENT_SECRET: write env:PXSYNC_INWINK_CLIENT_SECRET in the cell, or change the deployment",
            ]
        );
        let file = check(
            &[p(
                PrerequisiteKey::InwinkClientSecretRef,
                "secret:pxsync-inwink/other",
                7,
            )],
            SecretSource::File("/run/secrets/client-secret".into()),
        );
        assert_eq!(file.len(), 1);
        assert!(
            file[0].starts_with("error: sheet Prérequis techniques, row 7, column B"),
            "{file:?}"
        );
        let missing = check(
            &[p(
                PrerequisiteKey::InwinkClientSecretRef,
                "env:PXSYNC_INWINK_CLIENT_SECRET",
                7,
            )],
            SecretSource::Missing,
        );
        assert_eq!(missing.len(), 1);
        assert!(missing[0].starts_with("warning: "), "{missing:?}");
        // A configured URL with credentials is not shown either.
        let mut with_password = deployment(SecretSource::Missing);
        with_password.settings.insert(
            PrerequisiteKey::PlanexpoBaseUrl,
            Setting {
                name: "PXSYNC_PLANEXPO_BASE_URL".into(),
                value: SettingValue::Plain("https://user:hunter2@org.planexpo.fr".into()),
            },
        );
        let shown: Vec<String> = check_prerequisites(
            "Prérequis techniques",
            &[p(
                PrerequisiteKey::PlanexpoBaseUrl,
                "https://org.planexpo.fr",
                2,
            )],
            "salon-2026",
            &with_password,
        )
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(shown.len(), 1);
        assert!(
            !shown[0].contains("hunter2") && shown[0].contains("row 2, column B"),
            "{shown:?}"
        );
        // A redacted value (it looked like a secret) is never compared, so never shown.
        assert!(
            check(
                &[p(PrerequisiteKey::InwinkEventId, REDACTED, 5)],
                SecretSource::Missing
            )
            .is_empty()
        );
    }
}
