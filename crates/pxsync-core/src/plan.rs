//! The planner: (desired, last applied or observed) → the ordered inwink operations of one order.
//!
//! Architecture invariant (no decrease): a quantity is written only when it is higher than the
//! floor, the highest quantity applied to or observed on the order's inwink partner. A lower
//! desired quantity (a removed mapped line is 0) writes nothing and yields a
//! [`Note::QuantityDecreaseRefused`]. Equal quantities are never sent.
//!
//! Other invariants: nothing changed → no operation; when anything of a partner or participant
//! changed, all of its synchronised fields are sent; a child never creates its parent; a partner
//! is never deleted (a withdrawn order is unpublished: status Draft).

use crate::desired::{DesiredOrder, DesiredParticipant, DesiredPartner};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What inwink holds of the order's partner, as far as pxsync knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerRecord {
    pub partner_id: String,
    /// The fields last written (or observed). `None`: unknown (e.g. adopted), so the next plan
    /// sends every field.
    pub sent: Option<PartnerWrite>,
}

/// A partner write: every synchronised field, the publication and the parent link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerWrite {
    pub fields: DesiredPartner,
    pub published: bool,
    pub affiliated_to_id: Option<String>,
}

impl PartnerWrite {
    pub fn same_as(&self, other: &PartnerWrite) -> bool {
        self.published == other.published
            && self.affiliated_to_id == other.affiliated_to_id
            && self.fields.same_as(&other.fields)
    }
}

/// What inwink holds of the order's participant (keyed by e-mail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantRecord {
    pub participant_id: String,
    pub sent: Option<DesiredParticipant>,
}

/// Everything the planner looks at for one order. It reads no clock and does no I/O.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    pub desired: &'a DesiredOrder,
    /// The winning values for this order's contact e-mail (see
    /// [`crate::desired::winning_participant`]); `None` when the order has no usable contact.
    pub participant: Option<&'a DesiredParticipant>,
    /// The partner id of the parent order, when this is a co-exhibitor and the parent's partner
    /// exists.
    pub parent_partner_id: Option<&'a str>,
    pub partner: Option<&'a PartnerRecord>,
    pub participant_record: Option<&'a ParticipantRecord>,
    /// The team link between that partner and that participant exists.
    pub linked: bool,
    /// inwink product id → floor (highest applied or observed on this order's partner).
    pub floors: &'a BTreeMap<String, u32>,
}

/// One inwink write. Operations run in the order given; later ones use the ids earlier ones
/// produced (the order's partner, its participant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    CreatePartner(PartnerWrite),
    UpdatePartner(PartnerWrite),
    CreateParticipant(DesiredParticipant),
    UpdateParticipant(DesiredParticipant),
    LinkTeamMember,
    SetQuantity {
        product_id: String,
        quantity: u32,
        floor: u32,
    },
}

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::CreatePartner(_) => "create_partner",
            Op::UpdatePartner(_) => "update_partner",
            Op::CreateParticipant(_) => "create_participant",
            Op::UpdateParticipant(_) => "update_participant",
            Op::LinkTeamMember => "link_team_member",
            Op::SetQuantity { .. } => "set_quantity",
        }
    }
}

/// Something worth telling an operator that is not a write.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "note", rename_all = "snake_case")]
pub enum Note {
    /// inwink refuses to lower a quantity, so pxsync never asks.
    QuantityDecreaseRefused {
        product_id: String,
        floor: u32,
        desired: u32,
    },
    /// The co-exhibitor's parent has no partner yet: created without the link, linked later.
    WaitingForParent { parent_order_id: String },
    /// The partner unit was rejected: the partner is not created or updated.
    PartnerHeld,
    /// The booking contact is missing or rejected: no participant is created or updated.
    ParticipantHeld,
    /// A line of this product was rejected: its quantity is held.
    ProductHeld { product_id: String },
    /// Not validated and never published: nothing to write.
    NotPublished,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub ops: Vec<Op>,
    pub notes: Vec<Note>,
}

/// Plans the inwink writes of one order.
pub fn plan_order(input: PlanInput<'_>) -> Plan {
    let mut plan = Plan::default();
    let d = input.desired;

    // The parent link: a child never creates its parent; it waits for the parent's partner.
    let affiliated_to_id = match (&d.parent_order_id, input.parent_partner_id) {
        (Some(_), Some(parent)) => Some(parent.to_owned()),
        (Some(parent_order), None) => {
            if d.publish {
                plan.notes.push(Note::WaitingForParent {
                    parent_order_id: parent_order.clone(),
                });
            }
            None
        }
        (None, _) => None,
    };

    // 1. The partner.
    let creating_partner = match (&d.partner, input.partner) {
        (None, existing) => {
            if d.publish || existing.is_some() {
                plan.notes.push(Note::PartnerHeld);
            }
            if existing.is_none() {
                return plan;
            }
            false
        }
        (Some(fields), None) => {
            if !d.publish {
                plan.notes.push(Note::NotPublished);
                return plan;
            }
            plan.ops.push(Op::CreatePartner(PartnerWrite {
                fields: fields.clone(),
                published: true,
                affiliated_to_id,
            }));
            true
        }
        (Some(fields), Some(record)) => {
            let want = PartnerWrite {
                fields: fields.clone(),
                published: d.publish,
                affiliated_to_id,
            };
            if record.sent.as_ref().is_none_or(|sent| !sent.same_as(&want)) {
                plan.ops.push(Op::UpdatePartner(want));
            }
            false
        }
    };

    // A withdrawn order is only unpublished: its participant, links and products stay as they are.
    if !d.publish {
        return plan;
    }

    // 2. The participant, 3. the team link.
    match input.participant {
        None => plan.notes.push(Note::ParticipantHeld),
        Some(values) => {
            let creating_participant = match input.participant_record {
                None => {
                    plan.ops.push(Op::CreateParticipant(values.clone()));
                    true
                }
                Some(record) => {
                    if record
                        .sent
                        .as_ref()
                        .is_none_or(|sent| !sent.same_as(values))
                    {
                        plan.ops.push(Op::UpdateParticipant(values.clone()));
                    }
                    false
                }
            };
            if creating_partner || creating_participant || !input.linked {
                plan.ops.push(Op::LinkTeamMember);
            }
        }
    }

    // 4. Quantities, only upward.
    let products: BTreeSet<&String> = d.products.keys().chain(input.floors.keys()).collect();
    for product_id in products {
        if d.held_products.contains(product_id) {
            plan.notes.push(Note::ProductHeld {
                product_id: product_id.clone(),
            });
            continue;
        }
        let desired = d.products.get(product_id).copied().unwrap_or(0);
        let floor = input.floors.get(product_id).copied().unwrap_or(0);
        if desired < floor {
            plan.notes.push(Note::QuantityDecreaseRefused {
                product_id: product_id.clone(),
                floor,
                desired,
            });
        }
        // A new partner holds nothing: restore the floor (never lower than inwink held before).
        let target = if creating_partner {
            desired.max(floor)
        } else {
            desired
        };
        let holds = if creating_partner { 0 } else { floor };
        if target > holds {
            plan.ops.push(Op::SetQuantity {
                product_id: product_id.clone(),
                quantity: target,
                floor: holds,
            });
        }
    }
    plan
}

#[cfg(test)]
mod tests;
