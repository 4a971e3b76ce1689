//! The Planexpo simulator's own wire types (contracts.md A), renamed field by field.
//! Never shared with the Planexpo client: a naming mistake must not pass on both sides.

use serde::{Deserialize, Serialize};

/// A.3 Order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Order {
    #[serde(rename = "id")]
    pub id: String,
    #[serde(rename = "public_id")]
    pub public_id: String,
    #[serde(rename = "event")]
    pub event: String,
    #[serde(rename = "revision")]
    pub revision: u64,
    #[serde(rename = "updated_at")]
    pub updated_at: String,
    /// `draft` | `submitted` | `validated` | `refused` | `cancelled` | `deleted`
    #[serde(rename = "status")]
    pub status: String,
    #[serde(rename = "parent_order_id")]
    pub parent_order_id: Option<String>,
    #[serde(rename = "company")]
    pub company: Company,
    /// Null before placement.
    #[serde(rename = "stand")]
    pub stand: Option<Stand>,
    #[serde(rename = "booking_contact")]
    pub booking_contact: BookingContact,
    #[serde(rename = "lines")]
    pub lines: Vec<Line>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Company {
    #[serde(rename = "name")]
    pub name: String,
    #[serde(rename = "address")]
    pub address: Address,
    #[serde(rename = "website")]
    pub website: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Address {
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stand {
    #[serde(rename = "number")]
    pub number: String,
    #[serde(rename = "space")]
    pub space: Option<String>,
    #[serde(rename = "aisle")]
    pub aisle: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BookingContact {
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Line {
    #[serde(rename = "product_id")]
    pub product_id: String,
    #[serde(rename = "product_name")]
    pub product_name: String,
    #[serde(rename = "quantity")]
    pub quantity: u64,
}

/// A deleted order in the feed (A.1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tombstone {
    #[serde(rename = "id")]
    pub id: String,
    #[serde(rename = "event")]
    pub event: String,
    /// Always `deleted`.
    #[serde(rename = "status")]
    pub status: String,
    #[serde(rename = "revision")]
    pub revision: u64,
    #[serde(rename = "updated_at")]
    pub updated_at: String,
}

/// One entry of the feed: an order or a tombstone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FeedItem {
    Order(Box<Order>),
    Tombstone(Tombstone),
}

/// A.1 page of the feed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrdersPage {
    #[serde(rename = "orders")]
    pub orders: Vec<FeedItem>,
    #[serde(rename = "next_cursor")]
    pub next_cursor: Option<String>,
}

/// A.2 catalogue.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    #[serde(rename = "products")]
    pub products: Vec<Product>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Product {
    #[serde(rename = "id")]
    pub id: String,
    #[serde(rename = "name")]
    pub name: String,
    /// `product` | `option`
    #[serde(rename = "kind")]
    pub kind: String,
    #[serde(rename = "paid")]
    pub paid: bool,
}

/// A.4 webhook delivery body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookPayload {
    #[serde(rename = "delivery_id")]
    pub delivery_id: String,
    #[serde(rename = "event")]
    pub event: String,
    #[serde(rename = "order_id")]
    pub order_id: String,
    /// `order.created` | `order.updated` | `order.validated` | `order.refused` |
    /// `order.cancelled` | `order.deleted`
    #[serde(rename = "action")]
    pub action: String,
    #[serde(rename = "occurred_at")]
    pub occurred_at: String,
}

/// Error body `{"code", "message"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    #[serde(rename = "code")]
    pub code: String,
    #[serde(rename = "message")]
    pub message: String,
}
