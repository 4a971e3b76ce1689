//! The inwink simulator's own wire types (contracts.md B), renamed field by field: most
//! fields are camelCase, the custom fields snake_case, the person names lowercase.
//! Never shared with the inwink client: a naming mistake must not pass on both sides.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// B.1 Partner (API name `exhibitor`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Partner {
    #[serde(rename = "id")]
    pub id: String,
    #[serde(rename = "name")]
    pub name: Option<String>,
    /// `Draft` | `Preview` | `Published`
    #[serde(rename = "status")]
    pub status: Option<String>,
    #[serde(rename = "affiliatedToId")]
    pub affiliated_to_id: Option<String>,
    #[serde(rename = "emplacement")]
    pub emplacement: Option<String>,
    #[serde(rename = "space")]
    pub space: Option<String>,
    #[serde(rename = "aisle")]
    pub aisle: Option<String>,
    #[serde(rename = "website")]
    pub website: Option<String>,
    #[serde(rename = "address")]
    pub address: Option<Address>,
    #[serde(rename = "planexpo_order_id")]
    pub planexpo_order_id: Option<String>,
    #[serde(rename = "planexpo_public_order_id")]
    pub planexpo_public_order_id: Option<String>,
}

/// A partner's address (replaced as a whole by a PATCH).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Address {
    #[serde(rename = "street", default)]
    pub street: Option<String>,
    #[serde(rename = "street2", default)]
    pub street2: Option<String>,
    #[serde(rename = "zipCode", default)]
    pub zip_code: Option<String>,
    #[serde(rename = "city", default)]
    pub city: Option<String>,
    #[serde(rename = "country", default)]
    pub country: Option<String>,
}

/// B.2 Person (API name `registered`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Person {
    #[serde(rename = "id")]
    pub id: String,
    #[serde(rename = "email")]
    pub email: Option<String>,
    #[serde(rename = "civility")]
    pub civility: Option<String>,
    #[serde(rename = "lastname")]
    pub lastname: Option<String>,
    #[serde(rename = "firstname")]
    pub firstname: Option<String>,
    #[serde(rename = "company")]
    pub company: Option<String>,
    #[serde(rename = "jobTitle")]
    pub job_title: Option<String>,
    #[serde(rename = "phone1")]
    pub phone1: Option<String>,
    #[serde(rename = "phone2")]
    pub phone2: Option<String>,
    #[serde(rename = "language")]
    pub language: Option<String>,
    /// Managed by inwink (the `Exhibitor` category comes with a team link).
    #[serde(rename = "categories", default)]
    pub categories: Vec<String>,
}

/// B.3 Team member (API name `exhibitor/account`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TeamMember {
    #[serde(rename = "id")]
    pub id: String,
    #[serde(rename = "exhibitorId")]
    pub exhibitor_id: String,
    #[serde(rename = "registeredId")]
    pub registered_id: String,
    #[serde(rename = "roles")]
    pub roles: Vec<String>,
}

/// B.4 a product defined on the event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventProduct {
    #[serde(rename = "id")]
    pub id: String,
    #[serde(rename = "name")]
    pub name: String,
}

/// `GET /{eventId}/product`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventProducts {
    #[serde(rename = "data")]
    pub data: Vec<EventProduct>,
}

/// B.4 a product quantity on a partner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartnerProduct {
    #[serde(rename = "productId")]
    pub product_id: String,
    #[serde(rename = "quantity")]
    pub quantity: u64,
}

/// `GET /{eventId}/exhibitor/{id}/products`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartnerProducts {
    #[serde(rename = "data")]
    pub data: Vec<PartnerProduct>,
}

/// `PUT /{eventId}/exhibitor/{id}/products/{productId}` body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantityBody {
    #[serde(rename = "quantity")]
    pub quantity: u64,
}

/// A query body `{"filters": {...}, "page": {"index", "size"}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Query {
    #[serde(rename = "filters")]
    pub filters: Map<String, Value>,
    #[serde(rename = "page")]
    pub page: Page,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Page {
    #[serde(rename = "index")]
    pub index: u64,
    #[serde(rename = "size")]
    pub size: u64,
}

/// A query answer `{"data": [...], "totalCount": n}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueryResult<T> {
    #[serde(rename = "data")]
    pub data: Vec<T>,
    #[serde(rename = "totalCount")]
    pub total_count: u64,
}

/// `POST /oauth/token` answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Token {
    #[serde(rename = "access_token")]
    pub access_token: String,
    #[serde(rename = "token_type")]
    pub token_type: String,
    #[serde(rename = "expires_in")]
    pub expires_in: u64,
}

/// OAuth error body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenError {
    #[serde(rename = "error")]
    pub error: String,
    #[serde(rename = "error_description")]
    pub error_description: String,
}

/// Error body `{"code", "message"}` with `existingId` (409) or `current`
/// (`quantity_decrease`) where the contract says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    #[serde(rename = "code")]
    pub code: String,
    #[serde(rename = "message")]
    pub message: String,
    #[serde(
        rename = "existingId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub existing_id: Option<String>,
    #[serde(rename = "current", default, skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
}
