//! Planexpo wire types (contracts.md A), field by field as the contract spells them.
//!
//! API boundary: these types mirror the vendor's JSON and nothing else. The rest of pxsync works
//! on [`crate::order`] types; a vendor rename touches this file (and `planexpo/raw.rs`) only.
//! The ingestor reads orders loose ([`RawOrder`]: each field missing, null, of its shape or of
//! another) and judges them unit by unit in [`crate::order::observe_raw`], so one malformed
//! field never makes a whole page, or a whole order, undecodable. The `Wire*` order types spell
//! the contract's shapes, checked against the golden samples.

use serde::{Deserialize, Serialize};

mod raw;
pub use raw::{
    FeedOrder, Loose, RawAddress, RawCompany, RawContact, RawLine, RawOrder, RawOrderPage,
    RawStand, unreadable_order_message,
};

/// One order as Planexpo serves it (A.3). A tombstone has only `id`, `event`, `status`,
/// `revision` and `updated_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireOrder {
    #[serde(rename = "id")]
    pub id: String,
    #[serde(rename = "public_id", default, skip_serializing_if = "Option::is_none")]
    pub public_id: Option<String>,
    #[serde(rename = "event")]
    pub event: String,
    #[serde(rename = "revision")]
    pub revision: u64,
    #[serde(rename = "updated_at")]
    pub updated_at: String,
    #[serde(rename = "status")]
    pub status: String,
    #[serde(
        rename = "parent_order_id",
        default,
        skip_serializing_if = "Absent::is_absent"
    )]
    pub parent_order_id: Absent<String>,
    #[serde(rename = "company", default, skip_serializing_if = "Option::is_none")]
    pub company: Option<WireCompany>,
    #[serde(rename = "stand", default, skip_serializing_if = "Absent::is_absent")]
    pub stand: Absent<WireStand>,
    #[serde(
        rename = "booking_contact",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub booking_contact: Option<WireContact>,
    #[serde(rename = "lines", default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<WireLine>>,
}

/// A field that may be missing (tombstones) or explicitly `null` (a value that is not set);
/// both must re-encode as they came.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Absent<T> {
    #[default]
    Missing,
    Null,
    Value(T),
}

impl<T> Absent<T> {
    pub fn is_absent(&self) -> bool {
        matches!(self, Absent::Missing)
    }
    pub fn value(&self) -> Option<&T> {
        match self {
            Absent::Value(v) => Some(v),
            _ => None,
        }
    }
}

impl<T: Serialize> Serialize for Absent<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Absent::Value(v) => v.serialize(s),
            _ => s.serialize_none(),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Absent<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(d)? {
            Some(v) => Absent::Value(v),
            None => Absent::Null,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireCompany {
    #[serde(rename = "name")]
    pub name: Option<String>,
    #[serde(rename = "address")]
    pub address: Option<WireAddress>,
    #[serde(rename = "website")]
    pub website: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireAddress {
    #[serde(rename = "street")]
    pub street: Option<String>,
    #[serde(rename = "street2")]
    pub street2: Option<String>,
    #[serde(rename = "postal_code")]
    pub postal_code: Option<String>,
    #[serde(rename = "city")]
    pub city: Option<String>,
    #[serde(rename = "country")]
    pub country: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireStand {
    #[serde(rename = "number")]
    pub number: Option<String>,
    #[serde(rename = "space", default)]
    pub space: Option<String>,
    #[serde(rename = "aisle", default)]
    pub aisle: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireContact {
    #[serde(rename = "civility")]
    pub civility: Option<String>,
    #[serde(rename = "last_name")]
    pub last_name: Option<String>,
    #[serde(rename = "first_name")]
    pub first_name: Option<String>,
    #[serde(rename = "email")]
    pub email: Option<String>,
    #[serde(rename = "company")]
    pub company: Option<String>,
    #[serde(rename = "job_title")]
    pub job_title: Option<String>,
    #[serde(rename = "phone_1")]
    pub phone_1: Option<String>,
    #[serde(rename = "phone_2")]
    pub phone_2: Option<String>,
    #[serde(rename = "preferred_language")]
    pub preferred_language: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireLine {
    #[serde(rename = "product_id")]
    pub product_id: String,
    #[serde(rename = "product_name")]
    pub product_name: Option<String>,
    #[serde(rename = "quantity")]
    pub quantity: i64,
}

/// One page of the order feed (A.1). Orders stay raw JSON so that one bad order cannot make
/// the page undecodable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireOrderPage {
    #[serde(rename = "orders")]
    pub orders: Vec<serde_json::Value>,
    #[serde(rename = "next_cursor")]
    pub next_cursor: Option<String>,
}

/// The event's catalogue (A.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireCatalog {
    #[serde(rename = "products")]
    pub products: Vec<WireCatalogProduct>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireCatalogProduct {
    #[serde(rename = "id")]
    pub id: String,
    #[serde(rename = "name")]
    pub name: String,
    #[serde(rename = "kind")]
    pub kind: String,
    #[serde(rename = "paid")]
    pub paid: bool,
}

/// The webhook body (A.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireWebhook {
    #[serde(rename = "delivery_id")]
    pub delivery_id: String,
    #[serde(rename = "event")]
    pub event: String,
    #[serde(rename = "order_id")]
    pub order_id: String,
    #[serde(rename = "action")]
    pub action: String,
    #[serde(rename = "occurred_at")]
    pub occurred_at: String,
}

/// Every Planexpo error body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireError {
    #[serde(rename = "code")]
    pub code: String,
    #[serde(rename = "message")]
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;

    fn golden(name: &str) -> serde_json::Value {
        let text = match name {
            "order.json" => include_str!("../../../proto/golden/planexpo/order.json"),
            "tombstone.json" => include_str!("../../../proto/golden/planexpo/tombstone.json"),
            "orders_page.json" => include_str!("../../../proto/golden/planexpo/orders_page.json"),
            "catalog.json" => include_str!("../../../proto/golden/planexpo/catalog.json"),
            "webhook.json" => include_str!("../../../proto/golden/planexpo/webhook.json"),
            "error.json" => include_str!("../../../proto/golden/planexpo/error.json"),
            other => panic!("no golden sample {other}"),
        };
        serde_json::from_str(text).unwrap()
    }

    fn roundtrip<T: DeserializeOwned + Serialize>(name: &str) -> T {
        let value = golden(name);
        let typed: T = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(
            serde_json::to_value(&typed).unwrap(),
            value,
            "{name} re-encodes identically"
        );
        typed
    }

    #[test]
    fn golden_samples_decode_and_reencode_identically() {
        let order: WireOrder = roundtrip("order.json");
        assert_eq!(order.id, "ord_7QH2K");
        assert_eq!(order.parent_order_id, Absent::Null);
        assert_eq!(order.lines.as_ref().unwrap()[0].quantity, 2);
        let tomb: WireOrder = roundtrip("tombstone.json");
        assert_eq!(tomb.status, "deleted");
        assert!(tomb.company.is_none());
        let page: WireOrderPage = roundtrip("orders_page.json");
        assert_eq!(page.orders.len(), 2);
        for o in &page.orders {
            let _: WireOrder = serde_json::from_value(o.clone()).unwrap();
        }
        let _: WireCatalog = roundtrip("catalog.json");
        let _: WireWebhook = roundtrip("webhook.json");
        let _: WireError = roundtrip("error.json");
    }
}
