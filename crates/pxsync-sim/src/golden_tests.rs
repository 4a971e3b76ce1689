//! Every golden sample of `proto/golden/{planexpo,inwink}` decodes into the simulators'
//! own wire types and re-encodes to the identical JSON value.

use std::path::PathBuf;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::inwink::wire as iw;
use crate::planexpo::wire as px;

fn golden_dir(side: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../proto/golden")
        .join(side)
}

/// Decodes `value` as `T` and re-encodes it; `Err` says why it is not a round trip.
fn round_trip<T: DeserializeOwned + Serialize>(value: &Value) -> Result<(), String> {
    let typed: T = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    if &back == value {
        Ok(())
    } else {
        Err(format!("re-encoded differently: {back}"))
    }
}

type Check = fn(&Value) -> Result<(), String>;

fn planexpo_checks() -> Vec<(&'static str, Check)> {
    vec![
        ("catalog.json", round_trip::<px::Catalog>),
        ("error.json", round_trip::<px::ErrorBody>),
        ("order.json", round_trip::<px::Order>),
        ("orders_page.json", round_trip::<px::OrdersPage>),
        ("tombstone.json", round_trip::<px::Tombstone>),
        ("webhook.json", round_trip::<px::WebhookPayload>),
    ]
}

fn inwink_checks() -> Vec<(&'static str, Check)> {
    vec![
        ("error_decrease.json", round_trip::<iw::ErrorBody>),
        ("error_duplicate.json", round_trip::<iw::ErrorBody>),
        ("event_products.json", round_trip::<iw::EventProducts>),
        ("partner.json", round_trip::<iw::Partner>),
        ("partner_products.json", round_trip::<iw::PartnerProducts>),
        ("partner_query.json", round_trip::<iw::Query>),
        (
            "partner_query_result.json",
            round_trip::<iw::QueryResult<iw::Partner>>,
        ),
        ("person.json", round_trip::<iw::Person>),
        ("quantity.json", round_trip::<iw::QuantityBody>),
        ("team_member.json", round_trip::<iw::TeamMember>),
        ("token.json", round_trip::<iw::Token>),
        ("token_error.json", round_trip::<iw::TokenError>),
    ]
}

/// Checks every file of `side`: named ones against their type, any other one (a sample
/// added later) against every type of that side.
fn check_side(side: &str, checks: &[(&'static str, Check)]) {
    let dir = golden_dir(side);
    let mut failures = Vec::new();
    let mut seen = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let text = std::fs::read_to_string(&path).expect("readable golden file");
        let value: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{side}/{name} is not JSON: {e}"));
        seen += 1;
        match checks.iter().find(|(n, _)| *n == name) {
            Some((_, check)) => {
                if let Err(e) = check(&value) {
                    failures.push(format!("{side}/{name}: {e}"));
                }
            }
            None => {
                if !checks.iter().any(|(_, check)| check(&value).is_ok()) {
                    failures.push(format!("{side}/{name}: matches no wire type"));
                }
            }
        }
    }
    for (name, _) in checks {
        assert!(
            dir.join(name).exists(),
            "golden sample {side}/{name} is missing"
        );
    }
    assert!(seen >= checks.len());
    assert!(
        failures.is_empty(),
        "golden round trips failed:\n{}",
        failures.join("\n")
    );
}

#[test]
fn planexpo_golden_samples_round_trip() {
    check_side("planexpo", &planexpo_checks());
}

#[test]
fn inwink_golden_samples_round_trip() {
    check_side("inwink", &inwink_checks());
}

#[test]
fn the_feed_page_keeps_its_tombstone() {
    let text = std::fs::read_to_string(golden_dir("planexpo").join("orders_page.json"))
        .expect("golden page");
    let page: px::OrdersPage = serde_json::from_str(&text).expect("page decodes");
    assert!(matches!(page.orders[0], px::FeedItem::Order(_)));
    assert!(matches!(&page.orders[1], px::FeedItem::Tombstone(t) if t.status == "deleted"));
}

#[test]
fn the_demo_catalog_is_a_catalog() {
    round_trip::<px::Catalog>(&crate::planexpo::demo_catalog()).expect("catalog");
    let products = crate::inwink::demo_products();
    round_trip::<iw::EventProducts>(&products).expect("event products");
}
