//! The validated domain order, and [`observe`]: raw Planexpo JSON → a snapshot plus the problems of
//! each unit.
//!
//! Architecture invariant: validation is judged per unit (partner, booking contact, each line).
//! A bad unit is left out of the snapshot and described by a [`Problem`]; every other unit of the
//! order still flows. A [`Problem`] names the order, the field and the rule, never the value (the
//! booking contact is personal data).

use crate::planexpo::{FeedOrder, Loose, RawCompany, RawContact, RawLine, RawOrder, RawStand};
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt;

/// Planexpo's order status (A.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Draft,
    Submitted,
    Validated,
    Refused,
    Cancelled,
    Deleted,
}

impl OrderStatus {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "draft" => Self::Draft,
            "submitted" => Self::Submitted,
            "validated" => Self::Validated,
            "refused" => Self::Refused,
            "cancelled" => Self::Cancelled,
            "deleted" => Self::Deleted,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Submitted => "submitted",
            Self::Validated => "validated",
            Self::Refused => "refused",
            Self::Cancelled => "cancelled",
            Self::Deleted => "deleted",
        }
    }
}

/// The partner unit: everything that becomes the inwink partner's default fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerDetails {
    pub company_name: String,
    pub address: Option<PostalAddress>,
    pub website: Option<String>,
    pub stand_number: Option<String>,
    pub space: Option<String>,
    pub aisle: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostalAddress {
    pub street: Option<String>,
    pub street2: Option<String>,
    pub postal_code: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
}

/// The booking contact unit (personal data: never logged, never in an error message).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingContact {
    pub civility: Option<String>,
    pub last_name: Option<String>,
    pub first_name: Option<String>,
    /// As Planexpo gives it; [`BookingContact::email_key`] is the identity.
    pub email: String,
    pub company: Option<String>,
    pub job_title: Option<String>,
    pub phone_1: Option<String>,
    pub phone_2: Option<String>,
    pub preferred_language: Option<String>,
}

impl BookingContact {
    /// The participant's identity on inwink: the e-mail, trimmed and lowercased.
    pub fn email_key(&self) -> String {
        email_key(&self.email)
    }
}

/// The identity of a participant: an e-mail trimmed and lowercased.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

impl fmt::Debug for BookingContact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BookingContact { <personal data> }")
    }
}

/// One valid order line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub product_id: String,
    pub product_name: Option<String>,
    pub quantity: u32,
}

/// What pxsync knows of one revision of an order, after validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSnapshot {
    pub id: String,
    pub event: String,
    pub revision: u64,
    pub updated_at: Timestamp,
    pub status: OrderStatus,
    pub public_id: Option<String>,
    pub parent_order_id: Option<String>,
    /// `None` when the partner unit was rejected, or for a tombstone seen first.
    pub partner: Option<PartnerDetails>,
    /// `None` when missing or rejected.
    pub contact: Option<BookingContact>,
    /// The valid lines.
    pub lines: Vec<OrderLine>,
    /// Products with a rejected line: their quantity is held as it is, never lowered because of
    /// a bad line.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub held_products: BTreeSet<String>,
}

/// The unit a problem affects.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "unit", rename_all = "snake_case")]
pub enum Unit {
    /// The order as a whole cannot be used.
    Order,
    Partner,
    Contact,
    Line {
        index: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        product_id: Option<String>,
    },
}

/// The rule a field broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    Required,
    NotBlank,
    WrongType,
    InvalidEmail,
    NonNegativeInteger,
    UnknownValue,
    RfcTimestamp,
}

impl Rule {
    pub fn explain(self) -> &'static str {
        match self {
            Rule::Required => "is required",
            Rule::NotBlank => "must not be blank",
            Rule::WrongType => "has the wrong JSON type",
            Rule::InvalidEmail => "must be an e-mail address (one '@', no spaces)",
            Rule::NonNegativeInteger => "must be an integer of at least 0",
            Rule::UnknownValue => "is not one of the documented values",
            Rule::RfcTimestamp => "must be an RFC 3339 timestamp with an offset",
        }
    }
}

/// One rejected unit: the order, the field and the rule. Never the value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Problem {
    pub order_id: String,
    #[serde(flatten)]
    pub unit: Unit,
    /// The JSON path of the field in the Planexpo order, e.g. `booking_contact.email`.
    pub field: String,
    pub rule: Rule,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "order {}: {} {}",
            self.order_id,
            self.field,
            self.rule.explain()
        )?;
        match &self.unit {
            Unit::Order => write!(f, " (the order is not used)"),
            Unit::Partner => write!(f, " (the partner is not created or updated)"),
            Unit::Contact => write!(f, " (the participant is not created or updated)"),
            Unit::Line {
                product_id: Some(p),
                ..
            } => {
                write!(f, " (product {p} is held at its current quantity)")
            }
            Unit::Line {
                product_id: None, ..
            } => write!(f, " (the line is ignored)"),
        }
    }
}

/// The result of judging one raw order.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // a transient value, moved once
pub enum Observation {
    /// A usable snapshot, with the problems of the units left out of it (maybe none).
    Order {
        snapshot: OrderSnapshot,
        problems: Vec<Problem>,
    },
    /// The order is identified but cannot be used as a whole (e.g. an unknown status).
    Rejected {
        id: String,
        event: String,
        revision: u64,
        updated_at: Timestamp,
        problems: Vec<Problem>,
    },
}

/// The order cannot even be identified (no id, revision, event or timestamp): it cannot be
/// recorded against an order, so the caller reports it as a feed problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unidentifiable order{}: {field} {}", order_hint(.order_id), .rule.explain())]
pub struct Unidentifiable {
    pub order_id: Option<String>,
    pub field: &'static str,
    pub rule: Rule,
}

fn order_hint(id: &Option<String>) -> String {
    id.as_ref().map(|i| format!(" {i}")).unwrap_or_default()
}

/// Judges a raw Planexpo order read into a `serde_json::Value` unit by unit (as
/// [`observe_raw`]; the ingestor reads its orders loose, straight from the wire).
pub fn observe(raw: &Value) -> Result<Observation, Unidentifiable> {
    observe_raw(FeedOrder::from_value(raw))
}

/// Judges a raw Planexpo order unit by unit. Its strings are moved into the snapshot.
pub fn observe_raw(raw: FeedOrder) -> Result<Observation, Unidentifiable> {
    let unid = |order_id: Option<String>, field, rule| Unidentifiable {
        order_id,
        field,
        rule,
    };
    let Loose::Is(obj) = raw else {
        return Err(unid(None, "order", Rule::WrongType));
    };
    let RawOrder {
        id,
        public_id,
        event,
        revision,
        updated_at,
        status,
        parent_order_id,
        company,
        stand,
        booking_contact,
        lines,
    } = obj;
    let id = non_blank(id).map_err(|rule| unid(None, "id", rule))?;
    let some_id = || Some(id.clone());
    let event = match event {
        Loose::Is(s) => s,
        Loose::Missing | Loose::Null => return Err(unid(some_id(), "event", Rule::Required)),
        Loose::Other => return Err(unid(some_id(), "event", Rule::WrongType)),
    };
    let revision = match revision {
        Loose::Is(n) => n,
        Loose::Missing => return Err(unid(some_id(), "revision", Rule::Required)),
        Loose::Null | Loose::Other => {
            return Err(unid(some_id(), "revision", Rule::NonNegativeInteger));
        }
    };
    let updated_at = match updated_at {
        Loose::Is(s) => {
            Timestamp::parse(&s).map_err(|_| unid(some_id(), "updated_at", Rule::RfcTimestamp))?
        }
        Loose::Missing | Loose::Null => {
            return Err(unid(some_id(), "updated_at", Rule::Required));
        }
        Loose::Other => return Err(unid(some_id(), "updated_at", Rule::WrongType)),
    };
    let mut judge = Judge {
        order_id: id.clone(),
        problems: Vec::new(),
    };
    let known = match &status {
        Loose::Is(s) => OrderStatus::parse(s),
        _ => None,
    };
    let Some(status) = known else {
        let rule = match status {
            Loose::Missing | Loose::Null => Rule::Required,
            Loose::Is(_) => Rule::UnknownValue,
            Loose::Other => Rule::WrongType,
        };
        judge.problem(Unit::Order, "status", rule);
        return Ok(Observation::Rejected {
            id,
            event,
            revision,
            updated_at,
            problems: judge.problems,
        });
    };

    let mut snapshot = OrderSnapshot {
        id,
        event,
        revision,
        updated_at,
        status,
        public_id: None,
        parent_order_id: None,
        partner: None,
        contact: None,
        lines: Vec::new(),
        held_products: BTreeSet::new(),
    };
    if status == OrderStatus::Deleted {
        // Tombstones carry no fields: nothing to validate (the derivation carries the previous
        // snapshot's units over).
        return Ok(Observation::Order {
            snapshot,
            problems: Vec::new(),
        });
    }
    snapshot.partner = judge.partner(
        [public_id, parent_order_id],
        company,
        stand,
        &mut snapshot.public_id,
        &mut snapshot.parent_order_id,
    );
    snapshot.contact = judge.contact(booking_contact);
    let (lines, held) = judge.lines(lines);
    snapshot.lines = lines;
    snapshot.held_products = held;
    Ok(Observation::Order {
        snapshot,
        problems: judge.problems,
    })
}

/// A required string that must not be blank, or the rule it breaks.
fn non_blank(field: Loose<String>) -> Result<String, Rule> {
    match field {
        Loose::Is(s) if !s.trim().is_empty() => Ok(s),
        Loose::Is(_) => Err(Rule::NotBlank),
        Loose::Missing | Loose::Null => Err(Rule::Required),
        Loose::Other => Err(Rule::WrongType),
    }
}

struct Judge {
    order_id: String,
    problems: Vec<Problem>,
}

impl Judge {
    fn problem(&mut self, unit: Unit, field: impl Into<String>, rule: Rule) {
        self.problems.push(Problem {
            order_id: self.order_id.clone(),
            unit,
            field: field.into(),
            rule,
        });
    }

    /// Optional string fields of one unit, named `keys` under `prefix`: missing or null is
    /// `None`; another type is a problem of the unit (every such field is named).
    fn strings<const N: usize>(
        &mut self,
        unit: &Unit,
        prefix: &str,
        keys: [&str; N],
        fields: [Loose<String>; N],
    ) -> Option<[Option<String>; N]> {
        let before = self.problems.len();
        for (key, field) in keys.iter().zip(&fields) {
            if matches!(field, Loose::Other) {
                self.problem(unit.clone(), format!("{prefix}{key}"), Rule::WrongType);
            }
        }
        (self.problems.len() == before).then(|| fields.map(Loose::into_option))
    }

    /// An object field: `Ok(None)` when missing or null; another type is a problem of `unit`.
    fn object<T>(&mut self, unit: &Unit, field: Loose<T>, path: &str) -> Result<Option<T>, ()> {
        match field {
            Loose::Missing | Loose::Null => Ok(None),
            Loose::Is(o) => Ok(Some(o)),
            Loose::Other => {
                self.problem(unit.clone(), path, Rule::WrongType);
                Err(())
            }
        }
    }

    fn partner(
        &mut self,
        ids: [Loose<String>; 2],
        company: Loose<RawCompany>,
        stand: Loose<RawStand>,
        public_id: &mut Option<String>,
        parent: &mut Option<String>,
    ) -> Option<PartnerDetails> {
        let unit = Unit::Partner;
        let before = self.problems.len();
        let [pid, par] = self.strings(&unit, "", ["public_id", "parent_order_id"], ids)?;
        *parent = par.filter(|p| !p.trim().is_empty());
        match pid {
            Some(p) if !p.trim().is_empty() => *public_id = Some(p),
            Some(_) => self.problem(unit.clone(), "public_id", Rule::NotBlank),
            None => self.problem(unit.clone(), "public_id", Rule::Required),
        }
        let company = match self.object(&unit, company, "company") {
            Ok(Some(c)) => c,
            Ok(None) => {
                self.problem(unit, "company", Rule::Required);
                return None;
            }
            Err(()) => return None,
        };
        let RawCompany {
            name,
            address,
            website,
        } = company;
        let [name, website] =
            self.strings(&unit, "company.", ["name", "website"], [name, website])?;
        let company_name = match name {
            Some(n) if !n.trim().is_empty() => Some(n),
            Some(_) => {
                self.problem(unit.clone(), "company.name", Rule::NotBlank);
                None
            }
            None => {
                self.problem(unit.clone(), "company.name", Rule::Required);
                None
            }
        };
        let address = match self.object(&unit, address, "company.address") {
            Ok(Some(a)) => {
                let keys = ["street", "street2", "postal_code", "city", "country"];
                let fields = [a.street, a.street2, a.postal_code, a.city, a.country];
                self.strings(&unit, "company.address.", keys, fields).map(
                    |[street, street2, postal_code, city, country]| PostalAddress {
                        street,
                        street2,
                        postal_code,
                        city,
                        country,
                    },
                )
            }
            Ok(None) | Err(()) => None,
        };
        let stand = match self.object(&unit, stand, "stand") {
            Ok(Some(s)) => self.strings(
                &unit,
                "stand.",
                ["number", "space", "aisle"],
                [s.number, s.space, s.aisle],
            ),
            Ok(None) => Some([None, None, None]),
            Err(()) => None,
        };
        if self.problems.len() > before {
            return None;
        }
        let [stand_number, space, aisle] = stand?;
        Some(PartnerDetails {
            company_name: company_name?,
            address,
            website,
            stand_number,
            space,
            aisle,
        })
    }

    fn contact(&mut self, contact: Loose<RawContact>) -> Option<BookingContact> {
        let unit = Unit::Contact;
        let contact = match self.object(&unit, contact, "booking_contact") {
            Ok(Some(c)) => c,
            Ok(None) => {
                self.problem(unit, "booking_contact", Rule::Required);
                return None;
            }
            Err(()) => return None,
        };
        let keys = [
            "civility",
            "last_name",
            "first_name",
            "email",
            "company",
            "job_title",
            "phone_1",
            "phone_2",
            "preferred_language",
        ];
        let c = contact;
        let fields = [
            c.civility,
            c.last_name,
            c.first_name,
            c.email,
            c.company,
            c.job_title,
            c.phone_1,
            c.phone_2,
            c.preferred_language,
        ];
        let [
            civility,
            last_name,
            first_name,
            email,
            company,
            job_title,
            phone_1,
            phone_2,
            lang,
        ] = self.strings(&unit, "booking_contact.", keys, fields)?;
        let email = match email {
            Some(e) if is_email(&e) => e,
            Some(_) => {
                self.problem(unit, "booking_contact.email", Rule::InvalidEmail);
                return None;
            }
            None => {
                self.problem(unit, "booking_contact.email", Rule::Required);
                return None;
            }
        };
        Some(BookingContact {
            civility,
            last_name,
            first_name,
            email,
            company,
            job_title,
            phone_1,
            phone_2,
            preferred_language: lang,
        })
    }

    fn lines(&mut self, lines: Loose<Vec<Loose<RawLine>>>) -> (Vec<OrderLine>, BTreeSet<String>) {
        let mut valid = Vec::new();
        let mut held = BTreeSet::new();
        let items = match lines {
            Loose::Missing | Loose::Null => return (valid, held),
            Loose::Is(items) => items,
            Loose::Other => {
                self.problem(Unit::Order, "lines", Rule::WrongType);
                return (valid, held);
            }
        };
        valid.reserve(items.len());
        for (index, item) in items.into_iter().enumerate() {
            let path = |f: &str| format!("lines[{index}].{f}");
            let Loose::Is(line) = item else {
                self.problem(
                    Unit::Line {
                        index,
                        product_id: None,
                    },
                    format!("lines[{index}]"),
                    Rule::WrongType,
                );
                continue;
            };
            let RawLine {
                product_id,
                product_name,
                quantity,
            } = line;
            let product_id = match non_blank(product_id) {
                Ok(p) => p,
                Err(rule) => {
                    self.problem(
                        Unit::Line {
                            index,
                            product_id: None,
                        },
                        path("product_id"),
                        rule,
                    );
                    continue;
                }
            };
            // The unit is named only when the line has a problem.
            let checked = match (&product_name, quantity) {
                (Loose::Other, _) => Err(("product_name", Rule::WrongType)),
                (_, Loose::Missing) => Err(("quantity", Rule::Required)),
                (_, Loose::Is(q)) => {
                    u32::try_from(q).map_err(|_| ("quantity", Rule::NonNegativeInteger))
                }
                (_, Loose::Null | Loose::Other) => Err(("quantity", Rule::NonNegativeInteger)),
            };
            let quantity = match checked {
                Ok(q) => q,
                Err((field, rule)) => {
                    let unit = Unit::Line {
                        index,
                        product_id: Some(product_id.clone()),
                    };
                    self.problem(unit, path(field), rule);
                    held.insert(product_id);
                    continue;
                }
            };
            valid.push(OrderLine {
                product_id,
                product_name: product_name.into_option(),
                quantity,
            });
        }
        (valid, held)
    }
}

/// One '@' with something on both sides, no white space, a dot-free local part allowed.
pub fn is_email(text: &str) -> bool {
    let t = text.trim();
    let mut parts = t.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) => {
            !local.is_empty() && !domain.is_empty() && !t.chars().any(char::is_whitespace)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn golden_order() -> Value {
        serde_json::from_str(include_str!("../../../proto/golden/planexpo/order.json")).unwrap()
    }

    fn check(mutate: impl FnOnce(&mut Value), expect: &[&str]) -> Observation {
        let mut raw = golden_order();
        mutate(&mut raw);
        let obs = observe(&raw).unwrap();
        let problems = match &obs {
            Observation::Order { problems, .. } | Observation::Rejected { problems, .. } => {
                problems
            }
        };
        let got: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(got, expect);
        obs
    }

    fn snapshot(obs: Observation) -> OrderSnapshot {
        match obs {
            Observation::Order { snapshot, .. } => snapshot,
            other => panic!("expected a snapshot, got {other:?}"),
        }
    }

    #[test]
    fn golden_order_is_valid_and_complete() {
        let s = snapshot(check(|_| {}, &[]));
        assert_eq!(s.id, "ord_7QH2K");
        assert_eq!(s.public_id.as_deref(), Some("SX24-0042"));
        assert_eq!(s.status, OrderStatus::Validated);
        let p = s.partner.unwrap();
        assert_eq!(p.company_name, "Acme Médical");
        assert_eq!(p.stand_number.as_deref(), Some("B12"));
        assert_eq!(p.address.unwrap().postal_code.as_deref(), Some("75002"));
        let c = s.contact.unwrap();
        assert_eq!(c.email_key(), "claire.durand@acme.example");
        assert_eq!(c.phone_1.as_deref(), Some("+33 1 23 45 67 89"));
        assert_eq!(
            s.lines,
            vec![OrderLine {
                product_id: "prd_banner_2x1".into(),
                product_name: Some("Bannière 2x1 m".into()),
                quantity: 2
            }]
        );
    }

    #[test]
    fn a_bad_email_affects_the_participant_only() {
        let s = snapshot(check(
            |o| o["booking_contact"]["email"] = json!("claire.durand at acme"),
            &[
                "order ord_7QH2K: booking_contact.email must be an e-mail address (one '@', no spaces) (the participant is not created or updated)",
            ],
        ));
        assert!(s.contact.is_none());
        assert!(s.partner.is_some());
        assert_eq!(s.lines.len(), 1);
    }

    #[test]
    fn problems_never_carry_personal_values() {
        let mut raw = golden_order();
        raw["booking_contact"]["email"] = json!("claire.durand at acme");
        raw["booking_contact"]["phone_1"] = json!(33123);
        let Observation::Order { problems, .. } = observe(&raw).unwrap() else {
            panic!()
        };
        let text = format!("{problems:?} {}", serde_json::to_string(&problems).unwrap());
        assert!(!text.contains("claire"), "{text}");
        assert!(!text.contains("33123"), "{text}");
    }

    #[test]
    fn an_empty_company_name_affects_the_partner_only() {
        let s = snapshot(check(
            |o| o["company"]["name"] = json!("  "),
            &[
                "order ord_7QH2K: company.name must not be blank (the partner is not created or updated)",
            ],
        ));
        assert!(s.partner.is_none());
        assert!(s.contact.is_some());
    }

    #[test]
    fn a_bad_line_holds_that_product_only() {
        let s = snapshot(check(
            |o| {
                o["lines"] = json!([
                    {"product_id": "prd_a", "product_name": "A", "quantity": -1},
                    {"product_id": "prd_b", "product_name": "B", "quantity": 2.5},
                    {"product_name": "C", "quantity": 1},
                    {"product_id": "prd_d", "product_name": "D", "quantity": 3}
                ])
            },
            &[
                "order ord_7QH2K: lines[0].quantity must be an integer of at least 0 (product prd_a is held at its current quantity)",
                "order ord_7QH2K: lines[1].quantity must be an integer of at least 0 (product prd_b is held at its current quantity)",
                "order ord_7QH2K: lines[2].product_id is required (the line is ignored)",
            ],
        ));
        assert_eq!(s.lines.len(), 1);
        assert_eq!(
            s.held_products.iter().collect::<Vec<_>>(),
            ["prd_a", "prd_b"]
        );
    }

    #[test]
    fn wrong_types_name_the_field() {
        check(
            |o| o["stand"]["number"] = json!(12),
            &[
                "order ord_7QH2K: stand.number has the wrong JSON type (the partner is not created or updated)",
            ],
        );
        check(
            |o| o["company"] = json!("Acme"),
            &[
                "order ord_7QH2K: company has the wrong JSON type (the partner is not created or updated)",
            ],
        );
        check(
            |o| {
                o.as_object_mut()
                    .unwrap()
                    .remove("booking_contact")
                    .map(|_| ())
                    .unwrap()
            },
            &[
                "order ord_7QH2K: booking_contact is required (the participant is not created or updated)",
            ],
        );
    }

    #[test]
    fn an_unknown_status_rejects_the_order() {
        let obs = check(
            |o| o["status"] = json!("archived"),
            &[
                "order ord_7QH2K: status is not one of the documented values (the order is not used)",
            ],
        );
        assert!(matches!(obs, Observation::Rejected { revision: 7, .. }));
    }

    #[test]
    fn tombstones_skip_field_validation() {
        let raw: Value = serde_json::from_str(include_str!(
            "../../../proto/golden/planexpo/tombstone.json"
        ))
        .unwrap();
        let s = snapshot(observe(&raw).unwrap());
        assert_eq!(s.status, OrderStatus::Deleted);
        assert_eq!(s.revision, 8);
    }

    #[test]
    fn unidentifiable_orders_name_the_missing_field() {
        assert_eq!(observe(&json!([])).unwrap_err().field, "order");
        assert_eq!(
            observe(&json!({"event": "e"})).unwrap_err().to_string(),
            "unidentifiable order: id is required"
        );
        let e = observe(
            &json!({"id": "ord_1", "event": "e", "revision": 1, "updated_at": "yesterday"}),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "unidentifiable order ord_1: updated_at must be an RFC 3339 timestamp with an offset"
        );
    }

    #[test]
    fn email_rule() {
        assert!(is_email("a@b"));
        assert!(!is_email("a@@b"));
        assert!(!is_email("a b@c"));
        assert!(!is_email("@c"));
        assert_eq!(
            email_key(" Claire.Durand@Acme.Example "),
            "claire.durand@acme.example"
        );
    }
}
