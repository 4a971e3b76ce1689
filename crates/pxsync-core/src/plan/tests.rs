use super::*;
use crate::desired::{DesiredAddress, DesiredOrder};
use crate::order::OrderStatus;
use crate::timestamp::Timestamp;
use proptest::prelude::*;

fn partner(order: &str) -> DesiredPartner {
    DesiredPartner {
        name: "Acme Médical".into(),
        emplacement: Some("B12".into()),
        space: None,
        aisle: None,
        website: Some("https://acme.example".into()),
        address: Some(DesiredAddress {
            street: Some("12 rue de la Paix".into()),
            street2: None,
            zip_code: Some("75002".into()),
            city: Some("Paris".into()),
            country: Some("FR".into()),
        }),
        planexpo_order_id: order.into(),
        planexpo_public_order_id: Some("SX24-0042".into()),
    }
}

fn participant(email: &str) -> DesiredParticipant {
    DesiredParticipant {
        email_key: email.to_lowercase(),
        email: email.into(),
        civility: Some("Mme".into()),
        lastname: Some("Durand".into()),
        firstname: Some("Claire".into()),
        company: None,
        job_title: None,
        phone1: Some("+33 1 23 45 67 89".into()),
        phone2: None,
        language: Some("fr".into()),
    }
}

fn desired(status: OrderStatus, products: &[(&str, u32)]) -> DesiredOrder {
    DesiredOrder {
        order_id: "ord_1".into(),
        revision: 1,
        updated_at: Timestamp::EPOCH,
        status,
        publish: status == OrderStatus::Validated,
        partner: Some(partner("ord_1")),
        parent_order_id: None,
        participant: Some(participant("claire@acme.example")),
        products: products.iter().map(|(p, q)| (p.to_string(), *q)).collect(),
        held_products: Default::default(),
        unmapped: vec![],
        problems: vec![],
    }
}

/// The world as the planner sees it, with everything in sync unless a test changes it.
struct World {
    desired: DesiredOrder,
    participant: Option<DesiredParticipant>,
    parent_partner_id: Option<String>,
    partner: Option<PartnerRecord>,
    participant_record: Option<ParticipantRecord>,
    linked: bool,
    floors: BTreeMap<String, u32>,
}

impl World {
    fn new(d: DesiredOrder) -> World {
        World {
            participant: d.participant.clone(),
            desired: d,
            parent_partner_id: None,
            partner: None,
            participant_record: None,
            linked: false,
            floors: BTreeMap::new(),
        }
    }
    fn synced(mut self) -> World {
        self.partner = Some(PartnerRecord {
            partner_id: "p-1".into(),
            sent: Some(PartnerWrite {
                fields: self.desired.partner.clone().unwrap(),
                published: self.desired.publish,
                affiliated_to_id: None,
            }),
        });
        self.participant_record = Some(ParticipantRecord {
            participant_id: "r-1".into(),
            sent: self.participant.clone(),
        });
        self.linked = true;
        self.floors = self.desired.products.clone();
        self
    }
    fn floors(mut self, f: &[(&str, u32)]) -> World {
        self.floors = f.iter().map(|(p, q)| (p.to_string(), *q)).collect();
        self
    }
    fn plan(&self) -> Plan {
        plan_order(PlanInput {
            desired: &self.desired,
            participant: self.participant.as_ref(),
            parent_partner_id: self.parent_partner_id.as_deref(),
            partner: self.partner.as_ref(),
            participant_record: self.participant_record.as_ref(),
            linked: self.linked,
            floors: &self.floors,
        })
    }
}

/// A compact, readable rendering of a plan for the expectations below.
fn check(world: &World, expect: &[&str]) {
    let plan = world.plan();
    let mut got: Vec<String> = plan
        .ops
        .iter()
        .map(|op| match op {
            Op::CreatePartner(w) | Op::UpdatePartner(w) => format!(
                "{} published={} parent={}",
                op.name(),
                w.published,
                w.affiliated_to_id.as_deref().unwrap_or("-")
            ),
            Op::SetQuantity {
                product_id,
                quantity,
                floor,
            } => format!("set_quantity {product_id} {floor}->{quantity}"),
            other => other.name().to_owned(),
        })
        .collect();
    got.extend(plan.notes.iter().map(|n| match n {
        Note::QuantityDecreaseRefused {
            product_id,
            floor,
            desired,
        } => format!("refused {product_id} floor={floor} desired={desired}"),
        Note::WaitingForParent { parent_order_id } => {
            format!("waiting for parent {parent_order_id}")
        }
        other => format!("{other:?}"),
    }));
    assert_eq!(got, expect);
}

#[test]
fn a_new_validated_order_creates_everything_in_order() {
    check(
        &World::new(desired(
            OrderStatus::Validated,
            &[("iw_banner", 2), ("iw_wifi", 1)],
        )),
        &[
            "create_partner published=true parent=-",
            "create_participant",
            "link_team_member",
            "set_quantity iw_banner 0->2",
            "set_quantity iw_wifi 0->1",
        ],
    );
}

#[test]
fn nothing_changed_means_no_call() {
    check(
        &World::new(desired(OrderStatus::Validated, &[("iw_banner", 2)])).synced(),
        &[],
    );
}

#[test]
fn whitespace_only_differences_are_not_changes() {
    let mut w = World::new(desired(OrderStatus::Validated, &[])).synced();
    w.desired.partner.as_mut().unwrap().name = "  Acme   Médical ".into();
    check(&w, &[]);
    w.desired.partner.as_mut().unwrap().name = "Acme Medical".into();
    check(&w, &["update_partner published=true parent=-"]);
}

#[test]
fn quantities_only_go_up() {
    let w = |q| World::new(desired(OrderStatus::Validated, &[("iw_b", q)])).synced();
    check(
        &w(15).floors(&[("iw_b", 10)]),
        &["set_quantity iw_b 10->15"],
    );
    check(
        &w(5).floors(&[("iw_b", 15)]),
        &["refused iw_b floor=15 desired=5"],
    );
    check(
        &w(20).floors(&[("iw_b", 15)]),
        &["set_quantity iw_b 15->20"],
    );
    check(&w(20).floors(&[("iw_b", 20)]), &[]);
}

#[test]
fn a_removed_line_is_a_refused_decrease_to_zero() {
    let w = World::new(desired(OrderStatus::Validated, &[]))
        .synced()
        .floors(&[("iw_b", 3)]);
    check(&w, &["refused iw_b floor=3 desired=0"]);
}

#[test]
fn a_withdrawn_order_is_unpublished_only() {
    let mut w = World::new(desired(OrderStatus::Validated, &[("iw_b", 3)])).synced();
    w.desired = desired(OrderStatus::Cancelled, &[]);
    check(&w, &["update_partner published=false parent=-"]);
    // Re-validated: published again.
    w.partner.as_mut().unwrap().sent.as_mut().unwrap().published = false;
    w.desired = desired(OrderStatus::Validated, &[("iw_b", 3)]);
    check(&w, &["update_partner published=true parent=-"]);
}

#[test]
fn a_never_validated_order_writes_nothing() {
    check(
        &World::new(desired(OrderStatus::Submitted, &[("iw_b", 3)])),
        &["NotPublished"],
    );
    check(
        &World::new(desired(OrderStatus::Draft, &[])),
        &["NotPublished"],
    );
}

#[test]
fn a_child_waits_for_its_parent_then_links() {
    let mut d = desired(OrderStatus::Validated, &[]);
    d.parent_order_id = Some("ord_parent".into());
    let mut w = World::new(d);
    check(
        &w,
        &[
            "create_partner published=true parent=-",
            "create_participant",
            "link_team_member",
            "waiting for parent ord_parent",
        ],
    );
    w = w.synced();
    check(&w, &["waiting for parent ord_parent"]);
    w.parent_partner_id = Some("p-parent".into());
    check(&w, &["update_partner published=true parent=p-parent"]);
}

#[test]
fn a_recreated_partner_gets_its_floors_back() {
    let mut w = World::new(desired(OrderStatus::Validated, &[("iw_b", 4), ("iw_c", 9)])).synced();
    w.partner = None;
    w.linked = false;
    let w = w.floors(&[("iw_b", 10), ("iw_c", 2)]);
    check(
        &w,
        &[
            "create_partner published=true parent=-",
            "link_team_member",
            "set_quantity iw_b 0->10",
            "set_quantity iw_c 0->9",
            "refused iw_b floor=10 desired=4",
        ],
    );
}

#[test]
fn a_changed_email_creates_and_links_another_participant() {
    let mut w = World::new(desired(OrderStatus::Validated, &[])).synced();
    w.participant = Some(participant("new@acme.example"));
    w.participant_record = None;
    w.linked = false;
    check(&w, &["create_participant", "link_team_member"]);
}

#[test]
fn held_units_are_left_alone() {
    let mut w = World::new(desired(OrderStatus::Validated, &[]))
        .synced()
        .floors(&[("iw_b", 3)]);
    w.desired.held_products.insert("iw_b".into());
    w.desired.partner = None;
    w.participant = None;
    check(
        &w,
        &[
            "PartnerHeld",
            "ParticipantHeld",
            "ProductHeld { product_id: \"iw_b\" }",
        ],
    );
    let mut fresh = World::new(desired(OrderStatus::Validated, &[]));
    fresh.desired.partner = None;
    check(&fresh, &["PartnerHeld"]);
}

proptest! {
    #![proptest_config(crate::test_config())]

    /// Whatever the desired quantities and floors: never a write at or below the floor on an
    /// existing partner, and a refusal exactly when desired < floor.
    #[test]
    fn never_a_write_below_the_floor(
        desired_q in prop::collection::btree_map("[a-d]", 0u32..30, 0..4),
        floors in prop::collection::btree_map("[a-d]", 0u32..30, 0..4),
        partner_exists in any::<bool>(),
    ) {
        let products: Vec<(&str, u32)> = desired_q.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let mut w = World::new(desired(OrderStatus::Validated, &products)).synced();
        if !partner_exists { w.partner = None; }
        w.floors = floors.clone();
        let plan = w.plan();
        for op in &plan.ops {
            if let Op::SetQuantity { product_id, quantity, .. } = op {
                let floor = floors.get(product_id).copied().unwrap_or(0);
                prop_assert!(*quantity >= floor, "lower than the floor");
                if partner_exists { prop_assert!(*quantity > floor, "equal or lower sent"); }
            }
        }
        for (p, f) in &floors {
            let d = desired_q.get(p).copied().unwrap_or(0);
            let refused = plan.notes.iter().any(|n| matches!(n, Note::QuantityDecreaseRefused { product_id, .. } if product_id == p));
            prop_assert_eq!(refused, d < *f);
        }
    }
}

/// How one quantity write ends, in the state machine below.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Ok,
    /// 5xx before any effect.
    FailBefore,
    /// 5xx or timeout after inwink applied it: the answer is lost.
    FailAfter,
    /// The process dies between inwink's answer and its record.
    CrashAfterCall,
    /// 429: nothing happened.
    RateLimited,
}

#[derive(Debug, Clone)]
enum Step {
    Desire { product: usize, quantity: u32 },
    Reconcile(Vec<Outcome>),
}

fn step() -> impl Strategy<Value = Step> {
    let outcome = prop_oneof![
        4 => Just(Outcome::Ok),
        1 => Just(Outcome::FailBefore),
        1 => Just(Outcome::FailAfter),
        1 => Just(Outcome::CrashAfterCall),
        1 => Just(Outcome::RateLimited),
    ];
    prop_oneof![
        (0usize..3, 0u32..25).prop_map(|(product, quantity)| Step::Desire { product, quantity }),
        prop::collection::vec(outcome, 0..4).prop_map(Step::Reconcile),
    ]
}

/// An in-memory inwink that RECORDS a lower PUT as a violation (it does not clamp it away).
#[derive(Default)]
struct FakeInwink {
    held: BTreeMap<String, u32>,
    violations: Vec<(String, u32, u32)>,
    highest_accepted: BTreeMap<String, u32>,
}

impl FakeInwink {
    /// Returns Err(current) for a refused decrease.
    fn put(&mut self, product: &str, quantity: u32) -> Result<(), u32> {
        let current = self.held.get(product).copied().unwrap_or(0);
        if quantity < current {
            self.violations
                .push((product.to_owned(), current, quantity));
            return Err(current);
        }
        self.held.insert(product.to_owned(), quantity);
        let h = self.highest_accepted.entry(product.to_owned()).or_insert(0);
        *h = (*h).max(quantity);
        Ok(())
    }
}

/// pxsync's records as the emitter keeps them: floors and write-ahead uncertainty.
#[derive(Default)]
struct Records {
    floors: BTreeMap<String, u32>,
    uncertain: BTreeSet<String>,
}

/// One reconcile, following the emitter's protocol: look at inwink where an outcome is
/// unknown, plan, mark each quantity uncertain before its call, record it after.
fn reconcile(
    desired: &DesiredOrder,
    records: &mut Records,
    inwink: &mut FakeInwink,
    outcomes: &[Outcome],
) {
    if !records.uncertain.is_empty() {
        for p in std::mem::take(&mut records.uncertain) {
            let held = inwink.held.get(&p).copied().unwrap_or(0);
            let f = records.floors.entry(p).or_insert(0);
            *f = (*f).max(held);
        }
    }
    let mut w = World::new(desired.clone()).synced();
    w.floors = records.floors.clone();
    let plan = w.plan();
    let mut outcomes = outcomes.iter();
    for op in plan.ops {
        let Op::SetQuantity {
            product_id,
            quantity,
            ..
        } = op
        else {
            continue;
        };
        records.uncertain.insert(product_id.clone());
        match outcomes.next().copied().unwrap_or(Outcome::Ok) {
            Outcome::Ok => match inwink.put(&product_id, quantity) {
                Ok(()) => {
                    let f = records.floors.entry(product_id.clone()).or_insert(0);
                    *f = (*f).max(quantity);
                    records.uncertain.remove(&product_id);
                }
                Err(current) => {
                    records.floors.insert(product_id.clone(), current);
                    records.uncertain.remove(&product_id);
                    return;
                }
            },
            Outcome::FailBefore | Outcome::RateLimited => return,
            Outcome::FailAfter | Outcome::CrashAfterCall => {
                let _ = inwink.put(&product_id, quantity);
                return;
            }
        }
    }
}

proptest! {
    #![proptest_config(crate::test_config())]

    /// Under any interleaving of desired changes, redeliveries (repeated reconciles), crashes
    /// between call and record, unknown outcomes, 429/5xx and re-plans: inwink never receives a
    /// lower quantity, and once the faults stop it holds the higher of what Planexpo wants now and
    /// the most it ever accepted, with the refused decrease noted exactly when it is below.
    #[test]
    fn no_interleaving_ever_sends_a_lower_quantity(steps in prop::collection::vec(step(), 1..40)) {
        let products = ["iw_a", "iw_b", "iw_c"];
        let mut desired = desired(OrderStatus::Validated, &[]);
        let mut records = Records::default();
        let mut inwink = FakeInwink::default();
        for s in &steps {
            match s {
                Step::Desire { product, quantity } => {
                    if *quantity == 0 {
                        desired.products.remove(products[*product]); // a removed line
                    } else {
                        desired.products.insert(products[*product].to_owned(), *quantity);
                    }
                }
                Step::Reconcile(outcomes) => reconcile(&desired, &mut records, &mut inwink, outcomes),
            }
            prop_assert!(inwink.violations.is_empty(), "a lower quantity was sent: {:?}", inwink.violations);
        }
        for _ in 0..5 {
            reconcile(&desired, &mut records, &mut inwink, &[]);
        }
        prop_assert!(inwink.violations.is_empty(), "a lower quantity was sent: {:?}", inwink.violations);
        let mut w = World::new(desired.clone()).synced();
        w.floors = records.floors.clone();
        let plan = w.plan();
        prop_assert!(plan.ops.is_empty(), "converged: {:?}", plan.ops);
        for p in products {
            let want = desired.products.get(p).copied().unwrap_or(0);
            let highest = inwink.highest_accepted.get(p).copied().unwrap_or(0);
            let held = inwink.held.get(p).copied().unwrap_or(0);
            prop_assert_eq!(held, want.max(highest), "{} ends at the maximum", p);
            let refused = plan.notes.iter().any(|n| matches!(n, Note::QuantityDecreaseRefused { product_id, .. } if product_id == p));
            prop_assert_eq!(refused, want < held, "{} refusal noted exactly when Planexpo wants less", p);
        }
    }
}
