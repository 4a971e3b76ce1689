//! Catalogue changes after go-live (MISSION.md §3 rule 5): a mapped product renamed, removed or
//! re-identified (same name, new id) on Planexpo or on inwink breaks its mapping. Each break
//! names the mask row to fix and what to do; the shell records it, holds the row's lines, and
//! every other product keeps syncing.
//!
//! Pure: the catalogues are given as (id → name) maps, the baseline being the catalogue as it
//! was when the mask was last checked against it.

use crate::mask::Mask;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which catalogue changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Planexpo,
    Inwink,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Planexpo => "planexpo",
            Side::Inwink => "inwink",
        }
    }

    fn shown(self) -> &'static str {
        match self {
            Side::Planexpo => "Planexpo",
            Side::Inwink => "inwink",
        }
    }

    /// The mask's name and id columns of this side.
    fn columns(self) -> (&'static str, &'static str) {
        match self {
            Side::Planexpo => ("A", "B"),
            Side::Inwink => ("C", "D"),
        }
    }
}

/// How a mapped product changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BreakKind {
    /// The id is gone and no product has its name.
    Removed,
    /// The id is there under another name.
    Renamed { from: String, to: String },
    /// The id is gone and one product has its name: it was recreated under a new id.
    Reidentified { new_id: String },
}

/// One broken mapping: a mask row whose product changed on one side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingBreak {
    pub side: Side,
    /// The row's Planexpo product (the mask's key).
    pub planexpo_product_id: String,
    /// The row's inwink product: the one whose lines wait.
    pub inwink_product_id: String,
    /// The product's name on the side that changed, as last known.
    pub name: String,
    pub row: usize,
    pub kind: BreakKind,
}

impl MappingBreak {
    /// The id on the side that changed.
    pub fn product_id(&self) -> &str {
        match self.side {
            Side::Planexpo => &self.planexpo_product_id,
            Side::Inwink => &self.inwink_product_id,
        }
    }

    /// What `status` shows: what changed, the mask row and what to do.
    pub fn reason(&self) -> String {
        let (side, (name_col, id_col)) = (self.side.shown(), self.side.columns());
        let (id, name, row) = (self.product_id(), &self.name, self.row);
        let tail = "then pxsync mask import; its lines wait, every other product keeps syncing";
        match &self.kind {
            BreakKind::Removed => format!(
                "mapping broken: {side} product {id} (for \"{name}\") no longer exists on {side}: fix mask row {row} (column {id_col}: the product that replaces it, or delete the row), {tail}"
            ),
            BreakKind::Renamed { from, to } => format!(
                "mapping broken: {side} product {id} was renamed on {side} (\"{from}\" is now \"{to}\"): fix mask row {row} (column {name_col}: check that it is still the same product and write its new name), {tail}"
            ),
            BreakKind::Reidentified { new_id } => format!(
                "mapping broken: {side} product \"{name}\" has a new id on {side} ({id} is now {new_id}): fix mask row {row} (column {id_col}: {new_id}), {tail}"
            ),
        }
    }
}

/// The mapped products of `mask` that changed (by mask row) in `current` on `side`. With a `baseline` (the
/// catalogue when the mask was checked), a mapped id under another name is a rename; without
/// one, only vanished ids are found. A vanished id whose name (from the baseline, else the
/// mask) is carried by exactly one product of `current` is re-identified, otherwise removed.
pub fn mapping_breaks(
    side: Side,
    mask: &Mask,
    baseline: Option<&BTreeMap<String, String>>,
    current: &BTreeMap<String, String>,
) -> Vec<MappingBreak> {
    let mut out = Vec::new();
    for (px_id, m) in &mask.products {
        let (id, mask_name) = match side {
            Side::Planexpo => (px_id.as_str(), m.planexpo_product_name.as_str()),
            Side::Inwink => (m.inwink_product_id.as_str(), m.inwink_product_name.as_str()),
        };
        let known = baseline
            .and_then(|b| b.get(id))
            .map_or(mask_name, String::as_str)
            .trim();
        let kind = match current.get(id) {
            Some(now) => match baseline.and_then(|b| b.get(id)) {
                Some(before) if before.trim() != now.trim() => BreakKind::Renamed {
                    from: before.trim().to_owned(),
                    to: now.trim().to_owned(),
                },
                _ => continue,
            },
            None => {
                let same_name: Vec<&String> = current
                    .iter()
                    .filter(|(_, n)| !known.is_empty() && n.trim() == known)
                    .map(|(i, _)| i)
                    .collect();
                match same_name.as_slice() {
                    [new_id] => BreakKind::Reidentified {
                        new_id: (*new_id).clone(),
                    },
                    _ => BreakKind::Removed,
                }
            }
        };
        out.push(MappingBreak {
            side,
            planexpo_product_id: px_id.clone(),
            inwink_product_id: m.inwink_product_id.clone(),
            name: known.to_owned(),
            row: m.row,
            kind,
        });
    }
    out.sort_by_key(|b| b.row);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::{MaskRow, check_mask};

    fn catalogue(items: &[(&str, &str)]) -> BTreeMap<String, String> {
        items
            .iter()
            .map(|(i, n)| ((*i).to_owned(), (*n).to_owned()))
            .collect()
    }

    fn mask() -> Mask {
        let row = |row, a: &str, b: &str, c: &str, d: &str| MaskRow {
            row,
            planexpo_product_name: a.into(),
            planexpo_product_id: Some(b.into()),
            inwink_product_name: c.into(),
            inwink_product_id: Some(d.into()),
        };
        check_mask(&[
            row(2, "Bannière", "prd_b", "Banner", "iw_b"),
            row(3, "Wi-Fi", "opt_wifi", "Wifi", "iw_w"),
            row(4, "Badges", "opt_badges", "Badges", "iw_g"),
            row(5, "Sac", "opt_bag", "Bag", "iw_s"),
        ])
        .0
    }

    fn check(
        side: Side,
        baseline: Option<&[(&str, &str)]>,
        current: &[(&str, &str)],
    ) -> Vec<(usize, BreakKind)> {
        let baseline = baseline.map(catalogue);
        mapping_breaks(side, &mask(), baseline.as_ref(), &catalogue(current))
            .into_iter()
            .map(|b| (b.row, b.kind))
            .collect()
    }

    #[test]
    fn renamed_removed_and_reidentified_products_are_found_by_row() {
        let before = [
            ("prd_b", "Bannière"),
            ("opt_wifi", "Wi-Fi"),
            ("opt_badges", "Badges"),
            ("opt_bag", "Sac"),
            ("prd_stand", "Stand"),
        ];
        // Nothing mapped changed (an unmapped product renamed, a product added): no break.
        assert!(
            check(
                Side::Planexpo,
                Some(&before),
                &[
                    ("prd_b", " Bannière "),
                    ("opt_wifi", "Wi-Fi"),
                    ("opt_badges", "Badges"),
                    ("opt_bag", "Sac"),
                    ("prd_stand", "Stand nu"),
                    ("prd_new", "Nouveau"),
                ]
            )
            .is_empty()
        );
        assert_eq!(
            check(
                Side::Planexpo,
                Some(&before),
                &[
                    ("prd_b", "Bannière XL"),
                    ("opt_badges2", "Badges"),
                    ("opt_bag", "Sac"),
                ]
            ),
            [
                (
                    2,
                    BreakKind::Renamed {
                        from: "Bannière".into(),
                        to: "Bannière XL".into()
                    }
                ),
                (3, BreakKind::Removed),
                (
                    4,
                    BreakKind::Reidentified {
                        new_id: "opt_badges2".into()
                    }
                ),
            ]
        );
        // Without a baseline only vanished ids are found, re-identified by the mask's name.
        assert_eq!(
            check(
                Side::Inwink,
                None,
                &[
                    ("iw_b", "Banner v2"),
                    ("iw_w2", "Wifi"),
                    ("iw_g", "Badges"),
                    ("iw_s", "Bag")
                ]
            ),
            [(
                3,
                BreakKind::Reidentified {
                    new_id: "iw_w2".into()
                }
            )]
        );
        let b = &mapping_breaks(
            Side::Inwink,
            &mask(),
            Some(&catalogue(&[
                ("iw_b", "Banner"),
                ("iw_w", "Wifi"),
                ("iw_g", "Badges"),
                ("iw_s", "Bag"),
            ])),
            &catalogue(&[
                ("iw_b", "Banner 2"),
                ("iw_w", "Wifi"),
                ("iw_g", "Badges"),
                ("iw_s", "Bag"),
            ]),
        )[0];
        assert_eq!(
            b.reason(),
            "mapping broken: inwink product iw_b was renamed on inwink (\"Banner\" is now \"Banner 2\"): fix mask row 2 (column C: check that it is still the same product and write its new name), then pxsync mask import; its lines wait, every other product keeps syncing"
        );
        assert_eq!(b.inwink_product_id, "iw_b");
    }
}
