//! `pxsync preflight`: the checklist before going live, each failure with its fix.
//!
//! Technical checks (both APIs reachable with the credentials accepted, both events exist,
//! every mapped product on both sides, a mask imported, a prerequisites sheet that matches the
//! deployment's settings) block `enable`; organisational ones
//! (sales started, at least 3 real validated orders, partners that already exist on inwink)
//! warn, unless `--strict`. Only reads: the inwink side is an [`InwinkReader`].

use pxsync_inwink::InwinkReader;
use pxsync_planexpo::PlanexpoClient;
use pxsync_store::Store;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Ok,
    /// Organisational: reported, blocks only with `--strict`.
    Warning,
    /// Technical: blocks `enable`.
    Blocker,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub level: Level,
    pub detail: String,
    /// What to do about it, when it is not ok.
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Preflight {
    pub planexpo_event: String,
    pub checks: Vec<Check>,
}

impl Preflight {
    /// Whether `enable` may go on.
    pub fn passes(&self, strict: bool) -> bool {
        self.checks
            .iter()
            .all(|c| c.level == Level::Ok || (c.level == Level::Warning && !strict))
    }

    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut out = format!("preflight of {}\n", self.planexpo_event);
        for c in &self.checks {
            let mark = match c.level {
                Level::Ok => "ok  ",
                Level::Warning => "WARN",
                Level::Blocker => "FAIL",
            };
            let _ = writeln!(out, "  [{mark}] {}: {}", c.name, c.detail);
            if let Some(fix) = &c.fix {
                let _ = writeln!(out, "         fix: {fix}");
            }
        }
        out
    }
}

fn check(
    name: &'static str,
    level: Level,
    detail: impl Into<String>,
    fix: Option<String>,
) -> Check {
    Check {
        name,
        level,
        detail: detail.into(),
        fix,
    }
}

/// The prerequisites sheet as `mask import` keeps it (`mask_versions.prerequisites`): ids and
/// references, never a secret (a value that looked like one is an error, so never imported).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct StoredPrerequisites {
    pub sheet: String,
    pub rows: Vec<pxsync_mask::Prerequisite>,
}

/// The `prerequisites` check: the imported sheet against the deployment's settings.
fn prerequisites_check(
    ev: &str,
    stored: Option<serde_json::Value>,
    deployment: &anyhow::Result<pxsync_mask::Deployment>,
) -> anyhow::Result<Check> {
    let Some(stored) = stored else {
        return Ok(check(
            "prerequisites",
            Level::Ok,
            "no prerequisites sheet imported (a CSV mask): nothing to compare",
            None,
        ));
    };
    let deployment = match deployment {
        Ok(d) => d,
        Err(e) => {
            return Ok(check(
                "prerequisites",
                Level::Blocker,
                format!("the deployment's configuration cannot be read: {e:#}"),
                Some("fix PXSYNC_CONFIG (or unset it to use the environment)".into()),
            ));
        }
    };
    let stored: StoredPrerequisites = serde_json::from_value(stored)?;
    let issues = pxsync_mask::check_prerequisites(&stored.sheet, &stored.rows, ev, deployment);
    let errors = issues
        .iter()
        .any(|i| i.severity == pxsync_mask::Severity::Error);
    Ok(if issues.is_empty() {
        check(
            "prerequisites",
            Level::Ok,
            format!("the mask's sheet matches {}", deployment.source),
            None,
        )
    } else {
        let detail: Vec<String> = issues.iter().map(ToString::to_string).collect();
        check(
            "prerequisites",
            if errors {
                Level::Blocker
            } else {
                Level::Warning
            },
            detail.join("; "),
            Some(format!(
                "fix the cells of the mask and pxsync mask import --event {ev} FILE again, or fix the deployment's settings"
            )),
        )
    })
}

/// Retries a transient failure a few times (the preflight must return promptly).
async fn with_retries<T, E: std::fmt::Display, F, Fut>(
    mut call: F,
    transient: impl Fn(&E) -> bool,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut delay = Duration::from_millis(200);
    for _ in 0..3 {
        match call().await {
            Err(e) if transient(&e) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            other => return other,
        }
    }
    call().await
}

/// Runs every check for the salon `ev`. `deployment` is the deployment's configuration of the
/// salon (`cli::deployment_of`: the salon of `PXSYNC_CONFIG`, or the environment), which the
/// imported prerequisites sheet is compared with; an error reading it fails that check only.
pub async fn preflight(
    store: &Store,
    planexpo: &PlanexpoClient,
    inwink: &InwinkReader,
    ev: &str,
    test_orders: &BTreeSet<String>,
    deployment: &anyhow::Result<pxsync_mask::Deployment>,
) -> anyhow::Result<Preflight> {
    let mut checks = Vec::new();
    let px = with_retries(
        || planexpo.catalog(),
        |e: &pxsync_planexpo::PlanexpoError| e.is_transient(),
    )
    .await;
    let px_products: Option<BTreeMap<String, String>> = match &px {
        Ok(c) => {
            checks.push(check(
                "planexpo",
                Level::Ok,
                format!(
                    "reachable, key accepted, event {ev} exists ({} catalogue products)",
                    c.products.len()
                ),
                None,
            ));
            Some(
                c.products
                    .iter()
                    .map(|p| (p.id.clone(), p.name.clone()))
                    .collect(),
            )
        }
        Err(e) => {
            let fix = match e.status() {
                Some(401) => "check PXSYNC_PLANEXPO_API_KEY (Planexpo refused it)".to_owned(),
                Some(404) => format!("check the Planexpo event slug {ev} and PXSYNC_PLANEXPO_BASE_URL"),
                _ => "check PXSYNC_PLANEXPO_BASE_URL and that Planexpo answers; run the preflight again".to_owned(),
            };
            checks.push(check("planexpo", Level::Blocker, e.to_string(), Some(fix)));
            None
        }
    };
    let iw = with_retries(
        || inwink.event_products(),
        |e: &pxsync_inwink::InwinkError| e.is_transient(),
    )
    .await;
    let iw_products: Option<BTreeMap<String, String>> = match &iw {
        Ok(p) => {
            checks.push(check(
                "inwink",
                Level::Ok,
                format!(
                    "reachable, credentials accepted, event {} exists ({} partner products)",
                    inwink.event_id(),
                    p.len()
                ),
                None,
            ));
            Some(p.iter().map(|p| (p.id.clone(), p.name.clone())).collect())
        }
        Err(e) => {
            let fix = match e.code() {
                Some("event_not_found") => "check PXSYNC_INWINK_EVENT_ID".to_owned(),
                _ if matches!(e, pxsync_inwink::InwinkError::Token { .. } | pxsync_inwink::InwinkError::Unauthorized { .. }) => {
                    "check PXSYNC_INWINK_CLIENT_ID, PXSYNC_INWINK_CLIENT_SECRET and PXSYNC_INWINK_TOKEN_URL".to_owned()
                }
                _ => "check PXSYNC_INWINK_BASE_URL and that inwink answers; run the preflight again".to_owned(),
            };
            checks.push(check("inwink", Level::Blocker, e.to_string(), Some(fix)));
            None
        }
    };
    match store.current_mask(ev).await? {
        None => checks.push(check(
            "mask",
            Level::Blocker,
            "no mask imported",
            Some(format!("pxsync mask import --event {ev} FILE")),
        )),
        Some((version, mask)) => {
            let mut missing = Vec::new();
            for (px_id, m) in &mask.products {
                if px_products.as_ref().is_some_and(|c| !c.contains_key(px_id)) {
                    missing.push(format!(
                        "row {}: Planexpo product {px_id} is not in the Planexpo catalogue",
                        m.row
                    ));
                }
                if iw_products
                    .as_ref()
                    .is_some_and(|c| !c.contains_key(&m.inwink_product_id))
                {
                    missing.push(format!(
                        "row {}: inwink product {} is not a partner product of the event",
                        m.row, m.inwink_product_id
                    ));
                }
            }
            if missing.is_empty() {
                checks.push(check(
                    "mask",
                    Level::Ok,
                    format!(
                        "version {version}: {} mapped products exist on both sides",
                        mask.products.len()
                    ),
                    None,
                ));
            } else {
                checks.push(check(
                    "mask",
                    Level::Blocker,
                    missing.join("; "),
                    Some("fix these rows of the mask, then pxsync mask import again".into()),
                ));
            }
        }
    }
    checks.push(prerequisites_check(
        ev,
        store.current_prerequisites(ev).await?,
        deployment,
    )?);
    let statuses = store.orders_by_status(ev).await?;
    let started = statuses
        .iter()
        .any(|(_, s)| s == "submitted" || s == "validated");
    checks.push(if started {
        check(
            "sales started",
            Level::Ok,
            "orders have been submitted or validated",
            None,
        )
    } else {
        check(
            "sales started",
            Level::Warning,
            "no submitted or validated order yet",
            Some("wait for the first orders (the sync has nothing to write before)".into()),
        )
    });
    let real = statuses
        .iter()
        .filter(|(id, s)| s == "validated" && !test_orders.contains(id))
        .count();
    checks.push(if real >= 3 {
        check("validated orders", Level::Ok, format!("{real} real validated orders to test with"), None)
    } else {
        check("validated orders", Level::Warning, format!("{real} real validated orders (3 are needed to test with)"), Some("validate at least 3 real orders on Planexpo, or run a pilot: pxsync enable --orders A,B,C".into()))
    });
    let matches = match crate::inspector::inspect_salon(store, inwink, ev, false, false).await? {
        Ok(_) => store.likely_matches(ev).await?,
        Err(_) => Vec::new(),
    };
    checks.push(if matches.is_empty() {
        check("pre-existing partners", Level::Ok, "no inwink partner created by hand looks like an order's", None)
    } else {
        let list: Vec<String> = matches.iter().map(|m| format!("order {} ≈ partner {} ({})", m.order_id, m.partner_id, m.partner_name)).collect();
        check("pre-existing partners", Level::Warning, list.join("; "), Some(format!("adopt each with pxsync link --event {ev} --order ORDER --partner ID, or ignore to create new partners")))
    });
    use pxsync_core::catalogue::Side;
    for (side, products) in [(Side::Planexpo, &px_products), (Side::Inwink, &iw_products)] {
        if let Some(p) = products {
            crate::catalogue::record_baseline(store, ev, side, p).await?;
        }
    }
    if px_products.is_some() && iw_products.is_some() {
        checks.push(check(
            "catalogue fingerprints",
            Level::Ok,
            "recorded for both catalogues",
            None,
        ));
    }
    Ok(Preflight {
        planexpo_event: ev.to_owned(),
        checks,
    })
}
