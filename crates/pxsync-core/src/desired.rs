//! The desired inwink state of one order: what inwink should hold, computed from the folded order
//! and the mask.
//!
//! Values are copied as Planexpo gives them (no reformatting); normalisation exists only for
//! comparing ([`same_text`]).

use crate::fold::OrderState;
use crate::mask::Mask;
use crate::order::{BookingContact, OrderStatus, Problem};
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The inwink partner's synchronised fields, except `status` and `affiliatedToId` which the
/// planner decides (publication and the parent's partner id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredPartner {
    pub name: String,
    pub emplacement: Option<String>,
    pub space: Option<String>,
    pub aisle: Option<String>,
    pub website: Option<String>,
    pub address: Option<DesiredAddress>,
    pub planexpo_order_id: String,
    pub planexpo_public_order_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredAddress {
    pub street: Option<String>,
    pub street2: Option<String>,
    pub zip_code: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
}

/// The inwink participant's synchronised fields (personal data).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredParticipant {
    /// The identity: trimmed, lowercased.
    pub email_key: String,
    /// As Planexpo gives it.
    pub email: String,
    pub civility: Option<String>,
    pub lastname: Option<String>,
    pub firstname: Option<String>,
    pub company: Option<String>,
    pub job_title: Option<String>,
    pub phone1: Option<String>,
    pub phone2: Option<String>,
    pub language: Option<String>,
}

impl fmt::Debug for DesiredParticipant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DesiredParticipant { <personal data> }")
    }
}

impl DesiredParticipant {
    pub fn from_contact(c: &BookingContact) -> Self {
        DesiredParticipant {
            email_key: c.email_key(),
            email: c.email.clone(),
            civility: c.civility.clone(),
            lastname: c.last_name.clone(),
            firstname: c.first_name.clone(),
            company: c.company.clone(),
            job_title: c.job_title.clone(),
            phone1: c.phone_1.clone(),
            phone2: c.phone_2.clone(),
            language: c.preferred_language.clone(),
        }
    }

    /// Same synchronised values, once normalised for comparison.
    pub fn same_as(&self, other: &DesiredParticipant) -> bool {
        self.email_key == other.email_key
            && same_text(&self.civility, &other.civility)
            && same_text(&self.lastname, &other.lastname)
            && same_text(&self.firstname, &other.firstname)
            && same_text(&self.company, &other.company)
            && same_text(&self.job_title, &other.job_title)
            && same_text(&self.phone1, &other.phone1)
            && same_text(&self.phone2, &other.phone2)
            && same_text(&self.language, &other.language)
    }
}

impl DesiredPartner {
    /// Same synchronised values, once normalised for comparison.
    pub fn same_as(&self, other: &DesiredPartner) -> bool {
        let addr = |a: &Option<DesiredAddress>| {
            a.clone().unwrap_or(DesiredAddress {
                street: None,
                street2: None,
                zip_code: None,
                city: None,
                country: None,
            })
        };
        let (a, b) = (addr(&self.address), addr(&other.address));
        same_text(&Some(self.name.clone()), &Some(other.name.clone()))
            && same_text(&self.emplacement, &other.emplacement)
            && same_text(&self.space, &other.space)
            && same_text(&self.aisle, &other.aisle)
            && same_text(&self.website, &other.website)
            && same_text(&a.street, &b.street)
            && same_text(&a.street2, &b.street2)
            && same_text(&a.zip_code, &b.zip_code)
            && same_text(&a.city, &b.city)
            && same_text(&a.country, &b.country)
            && self.planexpo_order_id == other.planexpo_order_id
            && same_text(
                &self.planexpo_public_order_id,
                &other.planexpo_public_order_id,
            )
    }
}

/// Text equality for comparisons only: surrounding and repeated white space ignored, an empty
/// value is no value.
pub fn same_text(a: &Option<String>, b: &Option<String>) -> bool {
    fn norm(s: &Option<String>) -> Option<String> {
        s.as_ref()
            .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|t| !t.is_empty())
    }
    norm(a) == norm(b)
}

/// A line whose product is not in the mask: ignored for the sync, noted for the organiser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnmappedLine {
    pub planexpo_product_id: String,
    pub product_name: Option<String>,
    pub quantity: u32,
}

/// What inwink should hold for one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredOrder {
    pub order_id: String,
    pub revision: u64,
    pub updated_at: Timestamp,
    pub status: OrderStatus,
    /// True while the order is validated: the partner is Published. Otherwise it is Draft if it
    /// exists, and never created.
    pub publish: bool,
    /// `None` when the partner unit is rejected (an existing partner is then left as it is).
    pub partner: Option<DesiredPartner>,
    pub parent_order_id: Option<String>,
    /// This order's booking contact (`None` when missing or rejected).
    pub participant: Option<DesiredParticipant>,
    /// inwink product id → quantity (the sum of the order's lines of that product).
    pub products: BTreeMap<String, u32>,
    /// inwink product ids whose quantity is held (a line of it was rejected).
    pub held_products: BTreeSet<String>,
    pub unmapped: Vec<UnmappedLine>,
    pub problems: Vec<Problem>,
}

/// The desired state of one folded order, through the mask. `None` when the order has no usable
/// snapshot yet (only a whole-order rejection).
pub fn desired_order(state: &OrderState, mask: &Mask) -> Option<DesiredOrder> {
    let s = state.snapshot.as_ref()?;
    let partner = s.partner.as_ref().map(|p| DesiredPartner {
        name: p.company_name.clone(),
        emplacement: p.stand_number.clone(),
        space: p.space.clone(),
        aisle: p.aisle.clone(),
        website: p.website.clone(),
        address: p.address.as_ref().map(|a| DesiredAddress {
            street: a.street.clone(),
            street2: a.street2.clone(),
            zip_code: a.postal_code.clone(),
            city: a.city.clone(),
            country: a.country.clone(),
        }),
        planexpo_order_id: s.id.clone(),
        planexpo_public_order_id: s.public_id.clone(),
    });
    let mut products: BTreeMap<String, u32> = BTreeMap::new();
    let mut unmapped: BTreeMap<String, UnmappedLine> = BTreeMap::new();
    for line in &s.lines {
        match mask.inwink_product(&line.product_id) {
            Some(m) => {
                let q = products.entry(m.inwink_product_id.clone()).or_insert(0);
                *q = q.saturating_add(line.quantity);
            }
            None => {
                let u = unmapped
                    .entry(line.product_id.clone())
                    .or_insert_with(|| UnmappedLine {
                        planexpo_product_id: line.product_id.clone(),
                        product_name: line.product_name.clone(),
                        quantity: 0,
                    });
                u.quantity = u.quantity.saturating_add(line.quantity);
            }
        }
    }
    let held_products: BTreeSet<String> = s
        .held_products
        .iter()
        .filter_map(|p| mask.inwink_product(p).map(|m| m.inwink_product_id.clone()))
        .collect();
    for h in &held_products {
        products.remove(h);
    }
    Some(DesiredOrder {
        order_id: s.id.clone(),
        revision: s.revision,
        updated_at: s.updated_at,
        status: s.status,
        publish: s.status == OrderStatus::Validated,
        partner,
        parent_order_id: s.parent_order_id.clone(),
        participant: s.contact.as_ref().map(DesiredParticipant::from_contact),
        products,
        held_products,
        unmapped: unmapped.into_values().collect(),
        problems: state.current_problems().to_vec(),
    })
}

/// What `order_state` keeps of an order's desired state beside its fold state: the parts that
/// do not depend on the mask, which the store indexes and queries by (the parent link, the
/// participant's identity, the order's time). `None` exactly when [`desired_order`] is `None`
/// (no usable snapshot yet). The rest of the desired state is computed where it is read, from
/// the fold state and the mask in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredKeys<'a> {
    pub parent_order_id: Option<&'a str>,
    pub email_key: Option<String>,
    pub updated_at: Timestamp,
}

pub fn desired_keys(state: &OrderState) -> Option<DesiredKeys<'_>> {
    let s = state.snapshot.as_ref()?;
    Some(DesiredKeys {
        parent_order_id: s.parent_order_id.as_deref(),
        email_key: s.contact.as_ref().map(BookingContact::email_key),
        updated_at: s.updated_at,
    })
}

/// Among the orders that share one booking contact, the values of the most recently updated
/// order win (ties broken by order id, so the choice is deterministic).
pub fn winning_participant<'a>(
    orders: impl IntoIterator<Item = &'a DesiredOrder>,
) -> Option<&'a DesiredParticipant> {
    orders
        .into_iter()
        .filter_map(|o| {
            o.participant
                .as_ref()
                .map(|p| ((o.updated_at, o.order_id.as_str()), p))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, p)| p)
}

/// A company name for matching records created by hand: case, accents, punctuation and spaces
/// do not count ("Laboratoires Dupré & Fils" ≈ "laboratoires  DUPRE & fils").
pub fn matching_name(name: &str) -> String {
    let folded: String = name
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'à' | 'â' | 'ä' | 'á' | 'ã' | 'å' => 'a',
            'ç' => 'c',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'î' | 'ï' | 'í' | 'ì' => 'i',
            'ô' | 'ö' | 'ó' | 'ò' | 'õ' => 'o',
            'ù' | 'û' | 'ü' | 'ú' => 'u',
            'ÿ' | 'ý' => 'y',
            'ñ' => 'n',
            c if c.is_alphanumeric() => c,
            _ => ' ',
        })
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_names_ignore_case_accents_and_spacing() {
        assert_eq!(
            matching_name("Laboratoires Dupré & Fils"),
            matching_name("  laboratoires DUPRE &  fils ")
        );
        assert_eq!(
            matching_name("Société Générale-Santé"),
            "societe generale sante"
        );
        assert_ne!(
            matching_name("Acme Médical"),
            matching_name("Acme Medical Ouest")
        );
    }
}
