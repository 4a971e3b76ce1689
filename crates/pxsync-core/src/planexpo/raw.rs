//! Orders as the ingestor reads them: every field kept with the shape it came in, nothing
//! rejected at parse time.
//!
//! A [`Loose`] field is missing, `null`, of the expected shape, or of another shape (its value
//! is skipped, never kept: it may be personal data). [`crate::order::observe_raw`] judges these
//! shapes unit by unit exactly as it judges the same order read into a `serde_json::Value`
//! ([`crate::order::observe`]), but the strings are parsed once, straight into the fields they
//! end in, and moved from there into the snapshot (no map of every field, no copy, no tree to
//! free).
//!
//! Values that are skipped (unknown fields, and fields of another shape) are only scanned to
//! their end, so they are read more leniently than a `Value` would be (nesting deeper than 128,
//! `1e400`, a lone surrogate escape). The fields that are kept are read strictly. The typed read
//! fails on an object that gives a known key twice (serde's derive refuses it) and on a kept
//! field that is not readable JSON. [`RawOrderPage::from_json`] then reads that page order by
//! order ([`FeedOrder::from_json`]): an order with a key given twice is read through a `Value`
//! (the last value wins, as it always did), and an order that cannot be read at all is listed in
//! [`RawOrderPage::unreadable`], by id when its id can be read. One odd order never makes its
//! page undecodable, and whether an order is read never depends on the other orders.

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;
use std::marker::PhantomData;

/// A field as it came: missing, `null`, of the expected shape `T`, or of another shape.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Loose<T> {
    #[default]
    Missing,
    Null,
    Is(T),
    /// Another JSON type (or, for a number, not an integer of at least 0).
    Other,
}

impl<T> Loose<T> {
    /// The value when it has the expected shape.
    pub fn as_ref(&self) -> Option<&T> {
        match self {
            Loose::Is(v) => Some(v),
            _ => None,
        }
    }

    /// The value when it has the expected shape, taken.
    pub fn into_option(self) -> Option<T> {
        match self {
            Loose::Is(v) => Some(v),
            _ => None,
        }
    }
}

/// The JSON shapes a [`Loose`] field accepts as its own: one of strings, integers of at least
/// 0, objects or arrays. Every other shape is read to its end and becomes [`Loose::Other`].
pub trait Shape<'de>: Sized {
    fn from_string(_text: String) -> Option<Self> {
        None
    }
    fn from_u64(_n: u64) -> Option<Self> {
        None
    }
    fn from_map<A: MapAccess<'de>>(mut map: A) -> Result<Option<Self>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn from_seq<A: SeqAccess<'de>>(mut seq: A) -> Result<Option<Self>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

impl Shape<'_> for String {
    fn from_string(text: String) -> Option<Self> {
        Some(text)
    }
}

impl Shape<'_> for u64 {
    fn from_u64(n: u64) -> Option<Self> {
        Some(n)
    }
}

impl<'de, T: Shape<'de>> Shape<'de> for Vec<Loose<T>> {
    fn from_seq<A: SeqAccess<'de>>(mut seq: A) -> Result<Option<Self>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element::<Loose<T>>()? {
            items.push(item);
        }
        Ok(Some(items))
    }
}

/// The objects of an order: read through their derived `Deserialize`.
macro_rules! object_shape {
    ($($t:ty),*) => {$(
        impl<'de> Shape<'de> for $t {
            fn from_map<A: MapAccess<'de>>(map: A) -> Result<Option<Self>, A::Error> {
                <$t>::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
            }
        }
    )*};
}
object_shape!(
    RawOrder, RawCompany, RawAddress, RawStand, RawContact, RawLine
);

impl<'de, T: Shape<'de>> Deserialize<'de> for Loose<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LooseVisitor(PhantomData))
    }
}

struct LooseVisitor<T>(PhantomData<T>);

fn shaped<T>(value: Option<T>) -> Loose<T> {
    value.map_or(Loose::Other, Loose::Is)
}

impl<'de, T: Shape<'de>> Visitor<'de> for LooseVisitor<T> {
    type Value = Loose<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Loose::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Loose::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Loose::deserialize(d)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Loose::Other)
    }
    fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
        Ok(u64::try_from(n).map_or(Loose::Other, |n| shaped(T::from_u64(n))))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
        Ok(shaped(T::from_u64(n)))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Loose::Other)
    }
    fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
        Ok(shaped(T::from_string(text.to_owned())))
    }
    fn visit_string<E>(self, text: String) -> Result<Self::Value, E> {
        Ok(shaped(T::from_string(text)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        T::from_seq(seq).map(shaped)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::from_map(map).map(shaped)
    }
}

/// One order of the feed (contracts.md A.3), every field loose. Unknown fields are skipped.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct RawOrder {
    pub id: Loose<String>,
    pub public_id: Loose<String>,
    pub event: Loose<String>,
    pub revision: Loose<u64>,
    pub updated_at: Loose<String>,
    pub status: Loose<String>,
    pub parent_order_id: Loose<String>,
    pub company: Loose<RawCompany>,
    pub stand: Loose<RawStand>,
    pub booking_contact: Loose<RawContact>,
    pub lines: Loose<Vec<Loose<RawLine>>>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct RawCompany {
    pub name: Loose<String>,
    pub address: Loose<RawAddress>,
    pub website: Loose<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct RawAddress {
    pub street: Loose<String>,
    pub street2: Loose<String>,
    pub postal_code: Loose<String>,
    pub city: Loose<String>,
    pub country: Loose<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct RawStand {
    pub number: Loose<String>,
    pub space: Loose<String>,
    pub aisle: Loose<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct RawContact {
    pub civility: Loose<String>,
    pub last_name: Loose<String>,
    pub first_name: Loose<String>,
    pub email: Loose<String>,
    pub company: Loose<String>,
    pub job_title: Loose<String>,
    pub phone_1: Loose<String>,
    pub phone_2: Loose<String>,
    pub preferred_language: Loose<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct RawLine {
    pub product_id: Loose<String>,
    pub product_name: Loose<String>,
    pub quantity: Loose<u64>,
}

/// One element of the feed's `orders` array: an object is an order, anything else is judged
/// unidentifiable.
pub type FeedOrder = Loose<RawOrder>;

impl FeedOrder {
    /// An order read from a `serde_json::Value`.
    pub fn from_value(value: &serde_json::Value) -> FeedOrder {
        // A `Value` has no key given twice and every shape is accepted, so this cannot fail;
        // were it to, the order would be judged unidentifiable (never a panic).
        Loose::deserialize(value).unwrap_or(Loose::Other)
    }

    /// An order read from JSON text. `Err` when the text is not JSON, or when a field the judge
    /// reads is not readable JSON (a number out of range, an invalid string escape).
    pub fn from_json(text: &[u8]) -> Result<FeedOrder, serde_json::Error> {
        serde_json::from_slice(text).or_else(|_| {
            let value: serde_json::Value = serde_json::from_slice(text)?;
            Ok(FeedOrder::from_value(&value))
        })
    }

    /// The order's id when it is a string (even a blank one, as the feed gives it).
    pub fn id(&self) -> Option<&str> {
        self.as_ref()?.id.as_ref().map(String::as_str)
    }
}

/// One page of the order feed (A.1), its orders loose.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RawOrderPage {
    pub orders: Vec<FeedOrder>,
    pub next_cursor: Option<String>,
    /// The orders of the page that cannot be read at all (see the module), by id when it can
    /// be read: the caller reports them, and reads them again once Planexpo serves them
    /// readable (their `updated_at` moves).
    #[serde(skip)]
    pub unreadable: Vec<Option<String>>,
}

/// A page whose orders are kept as text, each read on its own.
#[derive(Deserialize)]
struct PageTexts<'a> {
    #[serde(borrow)]
    orders: Vec<&'a RawValue>,
    next_cursor: Option<String>,
}

/// Only the id of an order: its last `id` member (the text may give it twice), every other
/// member skipped.
struct IdOnly(Loose<String>);

impl<'de> Deserialize<'de> for IdOnly {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = IdOnly;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an order object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<IdOnly, A::Error> {
                let mut id = Loose::Missing;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "id" {
                        id = map.next_value()?;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(IdOnly(id))
            }
        }
        d.deserialize_map(Members)
    }
}

impl RawOrderPage {
    /// A page read from JSON text; `Err` when it is not JSON or not shaped as a page (no
    /// `orders` array, a `next_cursor` that is not a string or null).
    pub fn from_json(text: &[u8]) -> Result<RawOrderPage, serde_json::Error> {
        serde_json::from_slice(text).or_else(|_| {
            let page: PageTexts<'_> = serde_json::from_slice(text)?;
            let mut orders = Vec::with_capacity(page.orders.len());
            let mut unreadable = Vec::new();
            for order in page.orders {
                let text = order.get().as_bytes();
                match FeedOrder::from_json(text) {
                    Ok(o) => orders.push(o),
                    Err(_) => unreadable.push(readable_id(text)),
                }
            }
            Ok(RawOrderPage {
                orders,
                next_cursor: page.next_cursor,
                unreadable,
            })
        })
    }
}

/// The id of an order that cannot be read, when the id itself can.
fn readable_id(text: &[u8]) -> Option<String> {
    match serde_json::from_slice::<IdOnly>(text).ok()?.0 {
        Loose::Is(id) if !id.trim().is_empty() => Some(id),
        _ => None,
    }
}

/// The feed problem of an order that cannot be read (names the order when its id can be read,
/// never a value).
pub fn unreadable_order_message(order_id: Option<&str>) -> String {
    let what = match order_id {
        Some(id) => format!("order {id}: a field is not readable JSON"),
        None => "an order of the feed without a readable id: a field is not readable JSON".into(),
    };
    format!(
        "{what} (a number out of range or an invalid string escape); the order is skipped \
         until Planexpo serves it readable"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn both(text: &str) -> (FeedOrder, FeedOrder) {
        let value: Value = serde_json::from_str(text).unwrap();
        (
            FeedOrder::from_json(text.as_bytes()).unwrap(),
            FeedOrder::from_value(&value),
        )
    }

    #[test]
    fn text_and_value_read_the_same_shapes() {
        let golden = include_str!("../../../../proto/golden/planexpo/order.json");
        let odd = json!({
            "id": "ord_1", "event": 7, "revision": -1, "updated_at": null, "status": ["x"],
            "public_id": {"a": [1, 2]}, "parent_order_id": true,
            "company": {"name": 2.5, "address": "here", "website": null, "extra": {"k": 1}},
            "stand": [], "booking_contact": 3,
            "lines": [null, 1, {"product_id": "p", "quantity": 1e2},
                      {"product_id": "q", "quantity": 18446744073709551615u64},
                      {"product_id": "r", "quantity": "2"}],
            "unknown": {"deep": [{"x": null}]}
        })
        .to_string();
        for text in [golden, &odd, "[]", "null", "\"x\"", "{}"] {
            let (from_text, from_value) = both(text);
            assert_eq!(from_text, from_value, "{text}");
        }
        let (odd, _) = both(&odd);
        let o = odd.as_ref().unwrap();
        assert_eq!(o.event, Loose::Other);
        assert_eq!(
            o.revision,
            Loose::Other,
            "a negative revision is not an integer ≥ 0"
        );
        assert_eq!(o.updated_at, Loose::Null);
        assert_eq!(o.status, Loose::Other);
        assert_eq!(o.public_id, Loose::Other);
        assert_eq!(o.stand, Loose::Other);
        assert_eq!(o.booking_contact, Loose::Other);
        let company = o.company.as_ref().unwrap();
        assert_eq!(company.name, Loose::Other);
        assert_eq!(company.address, Loose::Other);
        assert_eq!(company.website, Loose::Null);
        let lines = o.lines.as_ref().unwrap();
        assert_eq!(lines[0], Loose::Null);
        assert_eq!(lines[1], Loose::Other);
        let quantities: Vec<_> = lines[2..]
            .iter()
            .map(|l| l.as_ref().unwrap().quantity.clone())
            .collect();
        assert_eq!(
            quantities,
            [Loose::Other, Loose::Is(u64::MAX), Loose::Other],
            "1e2 is a float, a string is not a number"
        );
        assert_eq!(FeedOrder::from_json(b"{\"id\": ").ok(), None, "not JSON");
    }

    #[test]
    fn a_key_given_twice_keeps_its_last_value_and_the_page_its_other_orders() {
        let order = FeedOrder::from_json(br#"{"id": "a", "revision": 1, "id": "b"}"#).unwrap();
        assert_eq!(order.id(), Some("b"));
        assert_eq!(order.as_ref().unwrap().revision, Loose::Is(1));
        let page = RawOrderPage::from_json(
            br#"{"orders": [{"id": "x"}, {"id": "y", "lines": [{"quantity": 1, "quantity": 2}]}, 5],
                 "next_cursor": "c"}"#,
        )
        .unwrap();
        assert_eq!(page.orders.len(), 3);
        assert_eq!(page.orders[0].id(), Some("x"));
        let lines = page.orders[1].as_ref().unwrap().lines.as_ref().unwrap();
        assert_eq!(lines[0].as_ref().unwrap().quantity, Loose::Is(2));
        assert_eq!(page.orders[2], Loose::Other);
        assert_eq!(page.next_cursor.as_deref(), Some("c"));
        for garbage in [
            &b"<html>"[..],
            b"{\"orders\": 3}",
            b"{\"next_cursor\": null}",
        ] {
            assert!(RawOrderPage::from_json(garbage).is_err());
        }
    }

    #[test]
    fn skipped_values_are_read_leniently_and_an_unreadable_order_is_named_not_blocking() {
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        for unknown in [deep.as_str(), "1e400", r#""\ud800""#] {
            let text = format!(r#"{{"id": "ord_1", "revision": 2, "extra": {unknown}}}"#);
            let order = FeedOrder::from_json(text.as_bytes()).unwrap();
            assert_eq!(order.id(), Some("ord_1"), "{unknown} in an unknown field");
            // Also in a field of another shape (skipped the same way).
            let text = format!(r#"{{"id": "ord_1", "company": [{unknown}]}}"#);
            let order = FeedOrder::from_json(text.as_bytes()).unwrap();
            assert_eq!(order.as_ref().unwrap().company, Loose::Other, "{unknown}");
        }
        for kept in [r#""revision": 1e400"#, r#""status": "\ud800""#] {
            let text = format!(r#"{{"id": "ord_1", {kept}}}"#);
            assert!(FeedOrder::from_json(text.as_bytes()).is_err(), "{kept}");
        }
        // A page: a readable order, one giving a key twice, two unreadable ones (one without a
        // readable id), then a readable one. Each is read on its own.
        let page = RawOrderPage::from_json(
            br#"{"orders": [
                {"id": "a", "extra": 1e400},
                {"id": "b", "revision": 1, "revision": 3},
                {"id": "c", "revision": 1e400},
                {"id": "x", "id": "d", "revision": 1e400},
                {"id": "\udc00", "revision": 1},
                {"id": "e"}
            ], "next_cursor": null}"#,
        )
        .unwrap();
        let ids: Vec<_> = page.orders.iter().map(FeedOrder::id).collect();
        assert_eq!(ids, [Some("a"), Some("b"), Some("e")]);
        assert_eq!(page.orders[1].as_ref().unwrap().revision, Loose::Is(3));
        assert_eq!(
            page.unreadable,
            [Some("c".to_owned()), Some("d".to_owned()), None],
            "named by their last id"
        );
        let message = unreadable_order_message(Some("c"));
        assert!(
            message.starts_with("order c: a field is not readable JSON"),
            "{message}"
        );
        // The typed read of a clean page lists nothing unreadable.
        let clean = RawOrderPage::from_json(br#"{"orders": [{"id": "x"}], "next_cursor": "n"}"#);
        assert_eq!(clean.unwrap().unreadable, Vec::<Option<String>>::new());
    }

    fn any_json() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-3i64..5).prop_map(Value::from),
            Just(json!(u64::MAX)),
            Just(json!(4_294_967_296u64)),
            Just(json!(2.0)),
            Just(json!(-0.5)),
            prop::sample::select(vec![
                "",
                " ",
                "x",
                "a@b.fr",
                "a b@c",
                "validated",
                "deleted",
                "draft",
                "2024-05-01T10:00:00Z",
                "2024-05-01 10:00",
                "P-1",
            ])
            .prop_map(Value::from),
            Just(json!([])),
            Just(json!([1, null])),
            Just(json!({})),
            Just(json!({"name": "x", "number": "A1"})),
        ]
    }

    /// Where a mutation lands: an order field, or one of its nested objects'.
    const PATHS: &[&[&str]] = &[
        &["id"],
        &["event"],
        &["revision"],
        &["updated_at"],
        &["status"],
        &["public_id"],
        &["parent_order_id"],
        &["company"],
        &["company", "name"],
        &["company", "website"],
        &["company", "address"],
        &["company", "address", "city"],
        &["stand"],
        &["stand", "number"],
        &["booking_contact"],
        &["booking_contact", "email"],
        &["booking_contact", "phone_1"],
        &["lines"],
        &["lines", "0"],
        &["lines", "0", "product_id"],
        &["lines", "0", "quantity"],
        &["lines", "1", "product_name"],
        &["lines", "1", "quantity"],
        &["unknown"],
    ];

    fn mutate(order: &mut Value, path: &[&str], with: Option<Value>) {
        let (last, parents) = path.split_last().unwrap();
        let mut at = order;
        for key in parents {
            let next = match at {
                Value::Object(m) => m.get_mut(*key),
                Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
                _ => None,
            };
            let Some(next) = next else { return };
            at = next;
        }
        match (at, with) {
            (Value::Object(m), Some(v)) => {
                m.insert((*last).to_owned(), v);
            }
            (Value::Object(m), None) => {
                m.remove(*last);
            }
            (Value::Array(a), with) => {
                if let Some(slot) = last.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                    *slot = with.unwrap_or(Value::Null);
                }
            }
            _ => {}
        }
    }

    proptest! {
        #![proptest_config(crate::test_config())]

        /// An order read from its text is judged exactly as the same order read into a
        /// `serde_json::Value`, whatever its fields hold.
        #[test]
        fn the_text_path_judges_as_the_value_path(
            mutations in prop::collection::vec(
                (0..PATHS.len(), prop::option::weighted(0.85, any_json())),
                0..6,
            ),
        ) {
            let mut order: Value = serde_json::from_str(include_str!(
                "../../../../proto/golden/planexpo/order.json"
            ))
            .unwrap();
            for (path, with) in mutations {
                mutate(&mut order, PATHS[path], with);
            }
            let text = serde_json::to_vec(&order).unwrap();
            let from_text = FeedOrder::from_json(&text).unwrap();
            prop_assert_eq!(&from_text, &FeedOrder::from_value(&order));
            prop_assert_eq!(
                crate::order::observe_raw(from_text),
                crate::order::observe(&order)
            );
        }
    }
}
