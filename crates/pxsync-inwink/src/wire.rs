//! The inwink contract (contracts.md B) and nothing else: every path, field name and status
//! string of the inwink API lives in this file, so the real contract, once obtained, is a
//! one-file change.
//!
//! Field names are renamed one by one, exactly as the contract spells them (camelCase for most,
//! snake_case for the custom `planexpo_*` fields, lowercase person names): never a blanket
//! `rename_all`. Response types encode every `Option` as an explicit `null`, so that the golden
//! samples re-encode identically; request bodies carry every synchronised field, `null` when a
//! value is missing (an explicit `null` clears a stale value on inwink, a missing field would
//! leave it).

use crate::{EventProduct, Participant, Partner, PartnerProduct, TeamMember};
use pxsync_core::desired::{DesiredAddress, DesiredParticipant};
use pxsync_core::plan::PartnerWrite;
use reqwest::Method;
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------------------
// Status strings and fixed values

/// Partner status of a published partner.
pub(crate) const STATUS_PUBLISHED: &str = "Published";
/// Partner status of an unpublished partner (a cancelled or not yet validated order).
pub(crate) const STATUS_DRAFT: &str = "Draft";
/// The team role that opens the partner workspace to its first member.
pub(crate) const ROLE_ADMIN: &str = "Admin";
/// Largest `page.size` a query accepts.
pub(crate) const MAX_PAGE_SIZE: u32 = 100;

/// The OAuth2 grant used.
pub(crate) const GRANT_TYPE: &str = "client_credentials";

// ---------------------------------------------------------------------------------------------
// Routes

/// One inwink API operation: its method, its route template (logged, and named in errors) and
/// its path (built from the event id and the percent-encoded ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint<'a> {
    CreatePartner,
    GetPartner {
        id: &'a str,
    },
    UpdatePartner {
        id: &'a str,
    },
    QueryPartners,
    CreateParticipant,
    GetParticipant {
        id: &'a str,
    },
    UpdateParticipant {
        id: &'a str,
    },
    QueryParticipants,
    LinkTeamMember,
    QueryTeamMembers,
    EventProducts,
    PartnerProducts {
        partner_id: &'a str,
    },
    SetQuantity {
        partner_id: &'a str,
        product_id: &'a str,
    },
}

impl Endpoint<'_> {
    /// The operation's name, as the error messages give it.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Endpoint::CreatePartner => "create_partner",
            Endpoint::GetPartner { .. } => "get_partner",
            Endpoint::UpdatePartner { .. } => "update_partner",
            Endpoint::QueryPartners => "query_partners",
            Endpoint::CreateParticipant => "create_participant",
            Endpoint::GetParticipant { .. } => "get_participant",
            Endpoint::UpdateParticipant { .. } => "update_participant",
            Endpoint::QueryParticipants => "query_participants",
            Endpoint::LinkTeamMember => "link_team_member",
            Endpoint::QueryTeamMembers => "query_team_members",
            Endpoint::EventProducts => "event_products",
            Endpoint::PartnerProducts { .. } => "partner_products",
            Endpoint::SetQuantity { .. } => "set_quantity",
        }
    }

    pub(crate) fn method(&self) -> Method {
        match self {
            Endpoint::GetPartner { .. }
            | Endpoint::GetParticipant { .. }
            | Endpoint::EventProducts
            | Endpoint::PartnerProducts { .. } => Method::GET,
            Endpoint::UpdatePartner { .. } | Endpoint::UpdateParticipant { .. } => Method::PATCH,
            Endpoint::SetQuantity { .. } => Method::PUT,
            Endpoint::CreatePartner
            | Endpoint::QueryPartners
            | Endpoint::CreateParticipant
            | Endpoint::QueryParticipants
            | Endpoint::LinkTeamMember
            | Endpoint::QueryTeamMembers => Method::POST,
        }
    }

    /// The route template: what logs and error messages show (never an id).
    pub(crate) fn route(&self) -> &'static str {
        match self {
            Endpoint::CreatePartner => "/{eventId}/exhibitor",
            Endpoint::GetPartner { .. } | Endpoint::UpdatePartner { .. } => {
                "/{eventId}/exhibitor/{id}"
            }
            Endpoint::QueryPartners => "/{eventId}/exhibitor/query",
            Endpoint::CreateParticipant => "/{eventId}/registered",
            Endpoint::GetParticipant { .. } | Endpoint::UpdateParticipant { .. } => {
                "/{eventId}/registered/{id}"
            }
            Endpoint::QueryParticipants => "/{eventId}/registered/query",
            Endpoint::LinkTeamMember => "/{eventId}/exhibitor/account",
            Endpoint::QueryTeamMembers => "/{eventId}/exhibitor/account/query",
            Endpoint::EventProducts => "/{eventId}/product",
            Endpoint::PartnerProducts { .. } => "/{eventId}/exhibitor/{id}/products",
            Endpoint::SetQuantity { .. } => "/{eventId}/exhibitor/{id}/products/{productId}",
        }
    }

    /// The path to append to the base URL (every segment percent-encoded).
    pub(crate) fn path(&self, event_id: &str) -> String {
        let e = encode_segment(event_id);
        match self {
            Endpoint::CreatePartner => format!("/{e}/exhibitor"),
            Endpoint::GetPartner { id } | Endpoint::UpdatePartner { id } => {
                format!("/{e}/exhibitor/{}", encode_segment(id))
            }
            Endpoint::QueryPartners => format!("/{e}/exhibitor/query"),
            Endpoint::CreateParticipant => format!("/{e}/registered"),
            Endpoint::GetParticipant { id } | Endpoint::UpdateParticipant { id } => {
                format!("/{e}/registered/{}", encode_segment(id))
            }
            Endpoint::QueryParticipants => format!("/{e}/registered/query"),
            Endpoint::LinkTeamMember => format!("/{e}/exhibitor/account"),
            Endpoint::QueryTeamMembers => format!("/{e}/exhibitor/account/query"),
            Endpoint::EventProducts => format!("/{e}/product"),
            Endpoint::PartnerProducts { partner_id } => {
                format!("/{e}/exhibitor/{}/products", encode_segment(partner_id))
            }
            Endpoint::SetQuantity {
                partner_id,
                product_id,
            } => format!(
                "/{e}/exhibitor/{}/products/{}",
                encode_segment(partner_id),
                encode_segment(product_id)
            ),
        }
    }
}

/// Percent-encodes one path segment: everything but the RFC 3986 unreserved characters.
pub(crate) fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Partners (`exhibitor`)

/// A partner as inwink answers it (B.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WirePartner {
    #[serde(rename = "id")]
    pub id: String,
    #[serde(rename = "name", default)]
    pub name: Option<String>,
    #[serde(rename = "status", default)]
    pub status: Option<String>,
    #[serde(rename = "affiliatedToId", default)]
    pub affiliated_to_id: Option<String>,
    #[serde(rename = "emplacement", default)]
    pub emplacement: Option<String>,
    #[serde(rename = "space", default)]
    pub space: Option<String>,
    #[serde(rename = "aisle", default)]
    pub aisle: Option<String>,
    #[serde(rename = "website", default)]
    pub website: Option<String>,
    #[serde(rename = "address", default)]
    pub address: Option<WireAddress>,
    #[serde(rename = "planexpo_order_id", default)]
    pub planexpo_order_id: Option<String>,
    #[serde(rename = "planexpo_public_order_id", default)]
    pub planexpo_public_order_id: Option<String>,
}

/// The body of a partner create or update: every synchronised field, never `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct PartnerBody<'a> {
    #[serde(rename = "name")]
    pub name: &'a str,
    #[serde(rename = "status")]
    pub status: &'static str,
    #[serde(rename = "affiliatedToId")]
    pub affiliated_to_id: Option<&'a str>,
    #[serde(rename = "emplacement")]
    pub emplacement: Option<&'a str>,
    #[serde(rename = "space")]
    pub space: Option<&'a str>,
    #[serde(rename = "aisle")]
    pub aisle: Option<&'a str>,
    #[serde(rename = "website")]
    pub website: Option<&'a str>,
    #[serde(rename = "address")]
    pub address: Option<WireAddress>,
    #[serde(rename = "planexpo_order_id")]
    pub planexpo_order_id: &'a str,
    #[serde(rename = "planexpo_public_order_id")]
    pub planexpo_public_order_id: Option<&'a str>,
}

impl<'a> PartnerBody<'a> {
    pub(crate) fn from_write(w: &'a PartnerWrite) -> Self {
        let f = &w.fields;
        PartnerBody {
            name: &f.name,
            status: if w.published {
                STATUS_PUBLISHED
            } else {
                STATUS_DRAFT
            },
            affiliated_to_id: w.affiliated_to_id.as_deref(),
            emplacement: f.emplacement.as_deref(),
            space: f.space.as_deref(),
            aisle: f.aisle.as_deref(),
            website: f.website.as_deref(),
            address: f.address.as_ref().map(WireAddress::from_desired),
            planexpo_order_id: &f.planexpo_order_id,
            planexpo_public_order_id: f.planexpo_public_order_id.as_deref(),
        }
    }
}

/// A partner's address; replaced as a whole on update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WireAddress {
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

impl WireAddress {
    fn from_desired(a: &DesiredAddress) -> Self {
        WireAddress {
            street: a.street.clone(),
            street2: a.street2.clone(),
            zip_code: a.zip_code.clone(),
            city: a.city.clone(),
            country: a.country.clone(),
        }
    }

    fn into_desired(self) -> DesiredAddress {
        DesiredAddress {
            street: self.street,
            street2: self.street2,
            zip_code: self.zip_code,
            city: self.city,
            country: self.country,
        }
    }
}

impl From<WirePartner> for Partner {
    fn from(w: WirePartner) -> Self {
        Partner {
            id: w.id,
            name: w.name,
            status: w.status,
            affiliated_to_id: w.affiliated_to_id,
            emplacement: w.emplacement,
            space: w.space,
            aisle: w.aisle,
            website: w.website,
            address: w.address.map(WireAddress::into_desired),
            planexpo_order_id: w.planexpo_order_id,
            planexpo_public_order_id: w.planexpo_public_order_id,
        }
    }
}

/// Whether a partner status string means published.
pub(crate) fn is_published(status: Option<&str>) -> bool {
    status == Some(STATUS_PUBLISHED)
}

/// Query filters on partners (equality on a field).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PartnerFilters {
    #[serde(
        rename = "planexpo_order_id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub planexpo_order_id: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Participants (`registered`)

/// A person as inwink answers it (B.2).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WirePerson {
    #[serde(rename = "id")]
    pub id: String,
    #[serde(rename = "email", default)]
    pub email: Option<String>,
    #[serde(rename = "civility", default)]
    pub civility: Option<String>,
    #[serde(rename = "lastname", default)]
    pub lastname: Option<String>,
    #[serde(rename = "firstname", default)]
    pub firstname: Option<String>,
    #[serde(rename = "company", default)]
    pub company: Option<String>,
    #[serde(rename = "jobTitle", default)]
    pub job_title: Option<String>,
    #[serde(rename = "phone1", default)]
    pub phone1: Option<String>,
    #[serde(rename = "phone2", default)]
    pub phone2: Option<String>,
    #[serde(rename = "language", default)]
    pub language: Option<String>,
    /// Managed by inwink: read, never sent.
    #[serde(rename = "categories", default)]
    pub categories: Vec<String>,
}

impl std::fmt::Debug for WirePerson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WirePerson { <personal data> }")
    }
}

impl From<WirePerson> for Participant {
    fn from(w: WirePerson) -> Self {
        Participant {
            id: w.id,
            email: w.email.unwrap_or_default(),
            civility: w.civility,
            lastname: w.lastname,
            firstname: w.firstname,
            company: w.company,
            job_title: w.job_title,
            phone1: w.phone1,
            phone2: w.phone2,
            language: w.language,
            categories: w.categories,
        }
    }
}

/// The body of a participant create or update: every synchronised field, never `id`, never
/// `categories` (inwink manages them; `[]` would wipe the `Exhibitor` category).
#[derive(Clone, PartialEq, Eq, Serialize)]
pub(crate) struct PersonBody<'a> {
    #[serde(rename = "email")]
    pub email: &'a str,
    #[serde(rename = "civility")]
    pub civility: Option<&'a str>,
    #[serde(rename = "lastname")]
    pub lastname: Option<&'a str>,
    #[serde(rename = "firstname")]
    pub firstname: Option<&'a str>,
    #[serde(rename = "company")]
    pub company: Option<&'a str>,
    #[serde(rename = "jobTitle")]
    pub job_title: Option<&'a str>,
    #[serde(rename = "phone1")]
    pub phone1: Option<&'a str>,
    #[serde(rename = "phone2")]
    pub phone2: Option<&'a str>,
    #[serde(rename = "language")]
    pub language: Option<&'a str>,
}

impl<'a> PersonBody<'a> {
    pub(crate) fn from_desired(p: &'a DesiredParticipant) -> Self {
        PersonBody {
            email: &p.email,
            civility: p.civility.as_deref(),
            lastname: p.lastname.as_deref(),
            firstname: p.firstname.as_deref(),
            company: p.company.as_deref(),
            job_title: p.job_title.as_deref(),
            phone1: p.phone1.as_deref(),
            phone2: p.phone2.as_deref(),
            language: p.language.as_deref(),
        }
    }
}

/// Query filters on participants (`email` is compared ignoring case by inwink).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PersonFilters {
    #[serde(rename = "email", default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Team members (`exhibitor/account`)

/// A person ↔ partner link (B.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WireTeamMember {
    #[serde(rename = "id")]
    pub id: String,
    #[serde(rename = "exhibitorId")]
    pub exhibitor_id: String,
    #[serde(rename = "registeredId")]
    pub registered_id: String,
    #[serde(rename = "roles", default)]
    pub roles: Vec<String>,
}

impl From<WireTeamMember> for TeamMember {
    fn from(w: WireTeamMember) -> Self {
        TeamMember {
            id: w.id,
            partner_id: w.exhibitor_id,
            participant_id: w.registered_id,
            roles: w.roles,
        }
    }
}

/// The body of a team link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct TeamMemberBody<'a> {
    #[serde(rename = "exhibitorId")]
    pub exhibitor_id: &'a str,
    #[serde(rename = "registeredId")]
    pub registered_id: &'a str,
    #[serde(rename = "roles")]
    pub roles: [&'static str; 1],
}

impl<'a> TeamMemberBody<'a> {
    pub(crate) fn admin(partner_id: &'a str, participant_id: &'a str) -> Self {
        TeamMemberBody {
            exhibitor_id: partner_id,
            registered_id: participant_id,
            roles: [ROLE_ADMIN],
        }
    }
}

/// Query filters on team members.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TeamMemberFilters {
    #[serde(
        rename = "exhibitorId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub exhibitor_id: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Products

/// A partner product defined on the event (B.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WireEventProduct {
    #[serde(rename = "id")]
    pub id: String,
    #[serde(rename = "name", default)]
    pub name: Option<String>,
}

impl From<WireEventProduct> for EventProduct {
    fn from(w: WireEventProduct) -> Self {
        EventProduct {
            id: w.id,
            name: w.name.unwrap_or_default(),
        }
    }
}

/// A product quantity held by a partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WirePartnerProduct {
    #[serde(rename = "productId")]
    pub product_id: String,
    #[serde(rename = "quantity")]
    pub quantity: u32,
}

impl From<WirePartnerProduct> for PartnerProduct {
    fn from(w: WirePartnerProduct) -> Self {
        PartnerProduct {
            product_id: w.product_id,
            quantity: w.quantity,
        }
    }
}

/// The body of `PUT .../products/{productId}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WireQuantity {
    #[serde(rename = "quantity")]
    pub quantity: u32,
}

// ---------------------------------------------------------------------------------------------
// Lists and queries

/// `{"data": [...]}` (product lists).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WireList<T> {
    #[serde(rename = "data")]
    pub data: Vec<T>,
}

/// A query: `{"filters": {...}, "page": {"index", "size"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct QueryRequest<F> {
    #[serde(rename = "filters")]
    pub filters: F,
    #[serde(rename = "page")]
    pub page: WirePage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WirePage {
    #[serde(rename = "index")]
    pub index: u32,
    #[serde(rename = "size")]
    pub size: u32,
}

/// A query's answer: `{"data": [...], "totalCount": n}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct QueryResult<T> {
    #[serde(rename = "data")]
    pub data: Vec<T>,
    #[serde(rename = "totalCount")]
    pub total_count: u64,
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Every inwink error body: `{"code", "message"}`, plus `existingId` on a 409 and `current` on
/// a `quantity_decrease`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WireError {
    #[serde(rename = "code")]
    pub code: String,
    #[serde(rename = "message", default)]
    pub message: String,
    #[serde(
        rename = "existingId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub existing_id: Option<String>,
    #[serde(rename = "current", default, skip_serializing_if = "Option::is_none")]
    pub current: Option<u32>,
}

/// inwink's error codes (B.5) that callers match [`crate::InwinkError::code`] against.
pub mod code {
    /// 409: another record holds this key (`existingId` names it).
    pub const DUPLICATE_KEY: &str = "duplicate_key";
    /// 400: a quantity lower than the stored one (`current` holds the stored one).
    pub const QUANTITY_DECREASE: &str = "quantity_decrease";
    /// 400: the quantity is not an integer ≥ 0.
    pub const QUANTITY: &str = "quantity";
    /// 400: the parent partner is unknown, or the partner itself.
    pub const AFFILIATED_TO_ID: &str = "affiliatedToId";
    pub const EVENT_NOT_FOUND: &str = "event_not_found";
    pub const PARTNER_NOT_FOUND: &str = "partner_not_found";
    pub const PARTICIPANT_NOT_FOUND: &str = "participant_not_found";
    pub const TEAM_MEMBER_NOT_FOUND: &str = "team_member_not_found";
    pub const PRODUCT_NOT_FOUND: &str = "product_not_found";
}

// ---------------------------------------------------------------------------------------------
// OAuth2 token endpoint

/// The token request form (`application/x-www-form-urlencoded`).
#[derive(Serialize)]
pub(crate) struct TokenForm<'a> {
    #[serde(rename = "grant_type")]
    pub grant_type: &'static str,
    #[serde(rename = "client_id")]
    pub client_id: &'a str,
    #[serde(rename = "client_secret")]
    pub client_secret: &'a str,
    #[serde(rename = "scope", skip_serializing_if = "Option::is_none")]
    pub scope: Option<&'a str>,
}

/// A granted token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WireToken {
    #[serde(rename = "access_token")]
    pub access_token: String,
    #[serde(rename = "token_type", default)]
    pub token_type: Option<String>,
    #[serde(
        rename = "expires_in",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_in: Option<u64>,
}

impl std::fmt::Debug for WireToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireToken")
            .field("access_token", &"***")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// An OAuth2 error body (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WireTokenError {
    #[serde(rename = "error")]
    pub error: String,
    #[serde(
        rename = "error_description",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub error_description: Option<String>,
}

/// The OAuth2 error code of a temporary outage (RFC 6749 §5.2 lists it for the authorization
/// endpoint; pxsync also uses it for a token endpoint that kept failing).
pub(crate) const TOKEN_TEMPORARILY_UNAVAILABLE: &str = "temporarily_unavailable";

#[cfg(test)]
mod tests {
    use super::*;
    use pxsync_core::desired::DesiredPartner;
    use serde::de::DeserializeOwned;
    use serde_json::{Value, json};

    fn golden(name: &str) -> Value {
        let text = match name {
            "error_decrease.json" => {
                include_str!("../../../proto/golden/inwink/error_decrease.json")
            }
            "error_duplicate.json" => {
                include_str!("../../../proto/golden/inwink/error_duplicate.json")
            }
            "event_products.json" => {
                include_str!("../../../proto/golden/inwink/event_products.json")
            }
            "partner.json" => include_str!("../../../proto/golden/inwink/partner.json"),
            "partner_products.json" => {
                include_str!("../../../proto/golden/inwink/partner_products.json")
            }
            "partner_query.json" => include_str!("../../../proto/golden/inwink/partner_query.json"),
            "partner_query_result.json" => {
                include_str!("../../../proto/golden/inwink/partner_query_result.json")
            }
            "person.json" => include_str!("../../../proto/golden/inwink/person.json"),
            "quantity.json" => include_str!("../../../proto/golden/inwink/quantity.json"),
            "team_member.json" => include_str!("../../../proto/golden/inwink/team_member.json"),
            "token.json" => include_str!("../../../proto/golden/inwink/token.json"),
            "token_error.json" => include_str!("../../../proto/golden/inwink/token_error.json"),
            other => panic!("no golden sample {other}"),
        };
        serde_json::from_str(text).unwrap()
    }

    fn roundtrip<T: DeserializeOwned + Serialize>(name: &str) -> T {
        let value = golden(name);
        let typed: T =
            serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{name} decodes: {e}"));
        assert_eq!(
            serde_json::to_value(&typed).unwrap(),
            value,
            "{name} re-encodes identically"
        );
        typed
    }

    #[test]
    fn every_golden_sample_decodes_and_reencodes_identically() {
        let p: WirePartner = roundtrip("partner.json");
        let p = Partner::from(p);
        assert_eq!(p.id, "a7c3e1f0-5b2d-4e8a-9c61-0f2b3d4e5a60");
        assert_eq!(p.emplacement.as_deref(), Some("B12"));
        assert_eq!(p.planexpo_order_id.as_deref(), Some("ord_7QH2K"));
        assert_eq!(p.planexpo_public_order_id.as_deref(), Some("SX24-0042"));
        assert_eq!(
            p.address.as_ref().unwrap().zip_code.as_deref(),
            Some("75002")
        );
        assert_eq!(p.affiliated_to_id, None);

        let q: QueryRequest<PartnerFilters> = roundtrip("partner_query.json");
        assert_eq!(q.filters.planexpo_order_id.as_deref(), Some("ord_7QH2K"));
        assert_eq!(
            q.page,
            WirePage {
                index: 0,
                size: 100
            }
        );

        let r: QueryResult<WirePartner> = roundtrip("partner_query_result.json");
        assert_eq!(r.total_count, 1);
        assert_eq!(r.data.len(), 1);

        let person: WirePerson = roundtrip("person.json");
        let person = Participant::from(person);
        assert_eq!(person.email, "claire.durand@acme.example");
        assert_eq!(person.job_title.as_deref(), Some("Directrice marketing"));
        assert_eq!(person.phone1.as_deref(), Some("+33 1 23 45 67 89"));
        assert_eq!(person.categories, vec!["Exhibitor".to_owned()]);

        let tm: WireTeamMember = roundtrip("team_member.json");
        let tm = TeamMember::from(tm);
        assert_eq!(tm.partner_id, "a7c3e1f0-5b2d-4e8a-9c61-0f2b3d4e5a60");
        assert_eq!(tm.participant_id, "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f");
        assert_eq!(tm.roles, vec![ROLE_ADMIN.to_owned()]);

        let ep: WireList<WireEventProduct> = roundtrip("event_products.json");
        assert_eq!(
            EventProduct::from(ep.data[0].clone()).name,
            "Bannière 2x1 m"
        );
        let pp: WireList<WirePartnerProduct> = roundtrip("partner_products.json");
        assert_eq!(pp.data[0].quantity, 2);
        let qty: WireQuantity = roundtrip("quantity.json");
        assert_eq!(qty.quantity, 10);

        let dec: WireError = roundtrip("error_decrease.json");
        assert_eq!(dec.code, code::QUANTITY_DECREASE);
        assert_eq!(dec.current, Some(10));
        let dup: WireError = roundtrip("error_duplicate.json");
        assert_eq!(dup.code, code::DUPLICATE_KEY);
        assert_eq!(
            dup.existing_id.as_deref(),
            Some("a7c3e1f0-5b2d-4e8a-9c61-0f2b3d4e5a60")
        );

        let tok: WireToken = roundtrip("token.json");
        assert_eq!(tok.expires_in, Some(3600));
        let te: WireTokenError = roundtrip("token_error.json");
        assert_eq!(te.error, "invalid_client");
    }

    fn write(published: bool) -> PartnerWrite {
        PartnerWrite {
            fields: DesiredPartner {
                name: "Acme Médical".into(),
                emplacement: Some("B12".into()),
                space: None,
                aisle: Some("Allée C".into()),
                website: None,
                address: Some(DesiredAddress {
                    street: Some("12 rue de la Paix".into()),
                    street2: None,
                    zip_code: Some("75002".into()),
                    city: Some("Paris".into()),
                    country: Some("FR".into()),
                }),
                planexpo_order_id: "ord_7QH2K".into(),
                planexpo_public_order_id: None,
            },
            published,
            affiliated_to_id: None,
        }
    }

    #[test]
    fn partner_body_sends_every_field_with_explicit_nulls() {
        let w = write(true);
        assert_eq!(
            serde_json::to_value(PartnerBody::from_write(&w)).unwrap(),
            json!({
                "name": "Acme Médical",
                "status": "Published",
                "affiliatedToId": null,
                "emplacement": "B12",
                "space": null,
                "aisle": "Allée C",
                "website": null,
                "address": {"street": "12 rue de la Paix", "street2": null, "zipCode": "75002",
                            "city": "Paris", "country": "FR"},
                "planexpo_order_id": "ord_7QH2K",
                "planexpo_public_order_id": null
            })
        );
    }

    #[test]
    fn unpublished_partner_is_draft_and_a_missing_address_is_null() {
        let mut w = write(false);
        w.fields.address = None;
        w.affiliated_to_id = Some("a7c3e1f0-5b2d-4e8a-9c61-0f2b3d4e5a60".into());
        w.fields.planexpo_public_order_id = Some("SX24-0042".into());
        let v = serde_json::to_value(PartnerBody::from_write(&w)).unwrap();
        assert_eq!(v["status"], json!("Draft"));
        assert_eq!(v["address"], Value::Null);
        assert!(v.as_object().unwrap().contains_key("address"));
        assert_eq!(
            v["affiliatedToId"],
            json!("a7c3e1f0-5b2d-4e8a-9c61-0f2b3d4e5a60")
        );
        assert_eq!(v["planexpo_public_order_id"], json!("SX24-0042"));
        assert!(v.get("id").is_none());
        assert_eq!(v.as_object().unwrap().len(), 10);
    }

    #[test]
    fn partner_write_survives_a_trip_through_inwink() {
        // What we send, as inwink would answer it, reads back as the same write.
        let w = write(true);
        let mut answered = serde_json::to_value(PartnerBody::from_write(&w)).unwrap();
        answered["id"] = json!("a7c3e1f0-5b2d-4e8a-9c61-0f2b3d4e5a60");
        let p = Partner::from(serde_json::from_value::<WirePartner>(answered).unwrap());
        assert_eq!(p.as_write(), Some(w));
    }

    fn participant() -> DesiredParticipant {
        DesiredParticipant {
            email_key: "claire.durand@acme.example".into(),
            email: "Claire.Durand@acme.example ".into(),
            civility: Some("Mme".into()),
            lastname: Some("Durand".into()),
            firstname: Some("Claire".into()),
            company: None,
            job_title: Some("Directrice marketing".into()),
            phone1: Some("+33 1 23 45 67 89".into()),
            phone2: None,
            language: Some("fr".into()),
        }
    }

    #[test]
    fn person_body_sends_every_field_with_explicit_nulls_and_never_categories() {
        let p = participant();
        assert_eq!(
            serde_json::to_value(PersonBody::from_desired(&p)).unwrap(),
            json!({
                "email": "Claire.Durand@acme.example ",
                "civility": "Mme",
                "lastname": "Durand",
                "firstname": "Claire",
                "company": null,
                "jobTitle": "Directrice marketing",
                "phone1": "+33 1 23 45 67 89",
                "phone2": null,
                "language": "fr"
            })
        );
    }

    #[test]
    fn participant_reads_back_as_the_same_desired_values() {
        let p = participant();
        let mut answered = serde_json::to_value(PersonBody::from_desired(&p)).unwrap();
        answered["id"] = json!("c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f");
        answered["categories"] = json!(["Exhibitor"]);
        let back = Participant::from(serde_json::from_value::<WirePerson>(answered).unwrap());
        assert_eq!(back.as_desired(), p);
    }

    #[test]
    fn team_link_query_and_quantity_bodies() {
        assert_eq!(
            serde_json::to_value(TeamMemberBody::admin("p1", "r1")).unwrap(),
            json!({"exhibitorId": "p1", "registeredId": "r1", "roles": ["Admin"]})
        );
        let q = QueryRequest {
            filters: TeamMemberFilters {
                exhibitor_id: Some("p1".into()),
            },
            page: WirePage {
                index: 2,
                size: 100,
            },
        };
        assert_eq!(
            serde_json::to_value(q).unwrap(),
            json!({"filters": {"exhibitorId": "p1"}, "page": {"index": 2, "size": 100}})
        );
        let q = QueryRequest {
            filters: PersonFilters::default(),
            page: WirePage { index: 0, size: 10 },
        };
        assert_eq!(
            serde_json::to_value(q).unwrap(),
            json!({"filters": {}, "page": {"index": 0, "size": 10}})
        );
        assert_eq!(
            serde_json::to_value(WireQuantity { quantity: 5 }).unwrap(),
            json!({"quantity": 5})
        );
    }

    #[test]
    fn token_form_encoding() {
        let form = TokenForm {
            grant_type: GRANT_TYPE,
            client_id: "pxsync-sim",
            client_secret: "s&cret=",
            scope: None,
        };
        let v = serde_json::to_value(&form).unwrap();
        assert_eq!(
            v,
            json!({"grant_type": "client_credentials", "client_id": "pxsync-sim",
                   "client_secret": "s&cret="})
        );
    }

    #[test]
    fn paths_are_templates_filled_with_encoded_segments() {
        let e = "8c1f5a2e-3b4d-4e6f-9a7b-1c2d3e4f5a6b";
        let ep = Endpoint::SetQuantity {
            partner_id: "a/b",
            product_id: "p 1?",
        };
        assert_eq!(
            ep.path(e),
            format!("/{e}/exhibitor/a%2Fb/products/p%201%3F")
        );
        assert_eq!(ep.route(), "/{eventId}/exhibitor/{id}/products/{productId}");
        assert_eq!(ep.method(), Method::PUT);
        assert_eq!(
            Endpoint::QueryPartners.path(e),
            format!("/{e}/exhibitor/query")
        );
        assert_eq!(
            Endpoint::QueryTeamMembers.path(e),
            format!("/{e}/exhibitor/account/query")
        );
        assert_eq!(
            Endpoint::UpdateParticipant { id: "x" }.path(e),
            format!("/{e}/registered/x")
        );
        assert_eq!(
            Endpoint::UpdateParticipant { id: "x" }.method(),
            Method::PATCH
        );
        assert_eq!(Endpoint::EventProducts.path(e), format!("/{e}/product"));
        assert_eq!(encode_segment("é"), "%C3%A9");
    }
}

// ---------------------------------------------------------------------------------------------
// Describing a planned write (dry runs, audit records)

/// A planned write as inwink would receive it: method, route template, the path with ids as
/// given (placeholders in a dry run), and the exact JSON body the client sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WriteDescription {
    pub operation: &'static str,
    pub method: &'static str,
    pub route: &'static str,
    pub path: String,
    pub body: serde_json::Value,
}

/// Describes one planned operation with the same routes and body builders the client uses, so
/// a dry run shows exactly what a real run sends. `partner_id` and `participant_id` are the ids
/// to show (real ones, or placeholders for records not created yet).
pub fn describe_write(
    event_id: &str,
    op: &pxsync_core::plan::Op,
    partner_id: &str,
    participant_id: &str,
) -> WriteDescription {
    use pxsync_core::plan::Op;
    let (endpoint, body) = match op {
        Op::CreatePartner(w) => (
            Endpoint::CreatePartner,
            serde_json::to_value(PartnerBody::from_write(w)),
        ),
        Op::UpdatePartner(w) => (
            Endpoint::UpdatePartner { id: partner_id },
            serde_json::to_value(PartnerBody::from_write(w)),
        ),
        Op::CreateParticipant(p) => (
            Endpoint::CreateParticipant,
            serde_json::to_value(PersonBody::from_desired(p)),
        ),
        Op::UpdateParticipant(p) => (
            Endpoint::UpdateParticipant { id: participant_id },
            serde_json::to_value(PersonBody::from_desired(p)),
        ),
        Op::LinkTeamMember => (
            Endpoint::LinkTeamMember,
            serde_json::to_value(TeamMemberBody::admin(partner_id, participant_id)),
        ),
        Op::SetQuantity {
            product_id,
            quantity,
            ..
        } => (
            Endpoint::SetQuantity {
                partner_id,
                product_id,
            },
            serde_json::to_value(WireQuantity {
                quantity: *quantity,
            }),
        ),
    };
    WriteDescription {
        operation: endpoint.name(),
        method: match endpoint.method() {
            m if m == Method::POST => "POST",
            m if m == Method::PATCH => "PATCH",
            m if m == Method::PUT => "PUT",
            _ => "GET",
        },
        route: endpoint.route(),
        path: endpoint.path(event_id),
        body: body.unwrap_or(serde_json::Value::Null),
    }
}
