//! The synchronisation mask ("masque de synchronisation"): which Planexpo product is which inwink
//! product.
//!
//! Architecture invariant: the mapping is 1:1 both ways. No Planexpo id and no inwink id appears
//! twice; products may stay unmapped on either side. Quantities are copied, never converted.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// One row of the products sheet as the organiser wrote it (columns A–D).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskRow {
    /// The row number in its sheet or file (1 = the header).
    pub row: usize,
    pub planexpo_product_name: String,
    pub planexpo_product_id: Option<String>,
    pub inwink_product_name: String,
    pub inwink_product_id: Option<String>,
}

/// One mapped product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappedProduct {
    pub inwink_product_id: String,
    pub planexpo_product_name: String,
    pub inwink_product_name: String,
    pub row: usize,
}

/// A checked mask: Planexpo product id → inwink product.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mask {
    pub products: BTreeMap<String, MappedProduct>,
}

impl Mask {
    pub fn inwink_product(&self, planexpo_product_id: &str) -> Option<&MappedProduct> {
        self.products.get(planexpo_product_id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

/// A problem of the mask, located by row and column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MaskIssue {
    pub severity: Severity,
    pub row: usize,
    /// `A`..`D`, or empty for the whole row.
    pub column: String,
    pub message: String,
}

impl fmt::Display for MaskIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.column.is_empty() {
            write!(f, "{sev}: row {}: {}", self.row, self.message)
        } else {
            write!(
                f,
                "{sev}: row {}, column {}: {}",
                self.row, self.column, self.message
            )
        }
    }
}

/// Checks the rows and builds the mask. Rows missing an id on either side are unmapped (not an
/// error). Returns the issues; the mask is usable only when none is an error.
pub fn check_mask(rows: &[MaskRow]) -> (Mask, Vec<MaskIssue>) {
    let mut issues = Vec::new();
    let mut mask = Mask::default();
    let mut planexpo_seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut inwink_seen: BTreeMap<&str, usize> = BTreeMap::new();
    let error = |row, column: &str, message: String| MaskIssue {
        severity: Severity::Error,
        row,
        column: column.to_owned(),
        message,
    };
    for r in rows {
        let blank = |s: &str| s.trim().is_empty();
        let px = r
            .planexpo_product_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let iw = r
            .inwink_product_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        if blank(&r.planexpo_product_name)
            && blank(&r.inwink_product_name)
            && px.is_none()
            && iw.is_none()
        {
            issues.push(error(r.row, "", "empty row".into()));
            continue;
        }
        if let Some(px) = px
            && let Some(first) = planexpo_seen.insert(px, r.row)
        {
            issues.push(error(r.row, "B", format!("Planexpo product {px} is already mapped on row {first} (one Planexpo product = one inwink product)")));
            continue;
        }
        if let Some(iw) = iw
            && let Some(first) = inwink_seen.insert(iw, r.row)
        {
            issues.push(error(r.row, "D", format!("inwink product {iw} is already mapped on row {first} (one inwink product = one Planexpo product)")));
            continue;
        }
        if let (Some(px), Some(iw)) = (px, iw) {
            mask.products.insert(
                px.to_owned(),
                MappedProduct {
                    inwink_product_id: iw.to_owned(),
                    planexpo_product_name: r.planexpo_product_name.trim().to_owned(),
                    inwink_product_name: r.inwink_product_name.trim().to_owned(),
                    row: r.row,
                },
            );
        }
    }
    (mask, issues)
}

/// A Planexpo product whose inwink product changed between two mask versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remap {
    pub planexpo_product_id: String,
    pub planexpo_product_name: String,
    pub from_inwink_product_id: String,
    pub to_inwink_product_id: String,
    /// The row in the new mask.
    pub row: usize,
}

impl fmt::Display for Remap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "remap: Planexpo product {} (\"{}\", mask row {}) now goes to inwink product {} instead of {}; the old product keeps what it holds (nothing is lowered, no decrease is recorded for it)",
            self.planexpo_product_id,
            self.planexpo_product_name,
            self.row,
            self.to_inwink_product_id,
            self.from_inwink_product_id
        )
    }
}

/// The Planexpo products mapped in both masks to different inwink products.
pub fn remaps(old: &Mask, new: &Mask) -> Vec<Remap> {
    new.products
        .iter()
        .filter_map(|(px, m)| {
            let before = old.products.get(px)?;
            (before.inwink_product_id != m.inwink_product_id).then(|| Remap {
                planexpo_product_id: px.clone(),
                planexpo_product_name: m.planexpo_product_name.clone(),
                from_inwink_product_id: before.inwink_product_id.clone(),
                to_inwink_product_id: m.inwink_product_id.clone(),
                row: m.row,
            })
        })
        .collect()
}

impl Mask {
    /// Whether an inwink product is mapped (some row points at it).
    pub fn maps_inwink_product(&self, inwink_product_id: &str) -> bool {
        self.products
            .values()
            .any(|m| m.inwink_product_id == inwink_product_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_inwink_target_is_a_remap() {
        let (old, _) = check_mask(&[
            row(2, "Bannière", "prd_b", "Banner", "iw_1"),
            row(3, "Wi-Fi", "opt_wifi", "Wifi", "iw_2"),
        ]);
        let (new, _) = check_mask(&[
            row(2, "Bannière", "prd_b", "Banner XL", "iw_3"),
            row(3, "Stand", "prd_stand", "Stand", "iw_4"),
        ]);
        let r = remaps(&old, &new);
        assert_eq!(r.len(), 1, "a product added or removed is not a remap");
        assert_eq!(
            (
                r[0].from_inwink_product_id.as_str(),
                r[0].to_inwink_product_id.as_str(),
                r[0].row
            ),
            ("iw_1", "iw_3", 2)
        );
        assert!(remaps(&new, &new).is_empty());
        assert!(new.maps_inwink_product("iw_4") && !new.maps_inwink_product("iw_1"));
    }

    fn row(row: usize, a: &str, b: &str, c: &str, d: &str) -> MaskRow {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        MaskRow {
            row,
            planexpo_product_name: a.into(),
            planexpo_product_id: opt(b),
            inwink_product_name: c.into(),
            inwink_product_id: opt(d),
        }
    }

    #[test]
    fn one_to_one_both_ways() {
        let (mask, issues) = check_mask(&[
            row(2, "Bannière", "prd_b", "Banner", "iw_1"),
            row(3, "Bannière bis", "prd_b", "Banner 2", "iw_2"),
            row(4, "Wi-Fi", "opt_wifi", "Wifi", "iw_1"),
            row(5, "Stand", "prd_stand", "", ""),
            row(6, "", "", "", ""),
        ]);
        let text: Vec<String> = issues.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "error: row 3, column B: Planexpo product prd_b is already mapped on row 2 (one Planexpo product = one inwink product)",
                "error: row 4, column D: inwink product iw_1 is already mapped on row 2 (one inwink product = one Planexpo product)",
                "error: row 6: empty row",
            ]
        );
        assert_eq!(mask.products.len(), 1);
        assert_eq!(
            mask.inwink_product("prd_b").unwrap().inwink_product_id,
            "iw_1"
        );
        assert!(mask.inwink_product("prd_stand").is_none());
    }
}

/// One side of a mask row while resolving: (side, name column, id column, catalogue, the id,
/// the name).
type Side<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a [(String, String)],
    &'a mut Option<String>,
    &'a str,
);

/// Fills the ids the organiser left empty from the two catalogues, by exact name (column B from
/// column A in Planexpo's catalogue, column D from column C in inwink's products), and checks
/// the names given next to ids. A name that matches nothing or several products is an error
/// naming the row; a column A that differs from the Planexpo name of the id in B is a warning.
/// A row with no name on a side stays unmapped on that side.
pub fn resolve_ids(
    rows: &[MaskRow],
    planexpo: &[(String, String)],
    inwink: &[(String, String)],
) -> (Vec<MaskRow>, Vec<MaskIssue>) {
    let mut issues = Vec::new();
    let mut out = Vec::with_capacity(rows.len());
    let issue = |severity, row, column: &str, message: String| MaskIssue {
        severity,
        row,
        column: column.to_owned(),
        message,
    };
    for r in rows {
        let mut r = r.clone();
        let sides: [Side<'_>; 2] = [
            (
                "Planexpo",
                "A",
                "B",
                planexpo,
                &mut r.planexpo_product_id,
                r.planexpo_product_name.trim(),
            ),
            (
                "inwink",
                "C",
                "D",
                inwink,
                &mut r.inwink_product_id,
                r.inwink_product_name.trim(),
            ),
        ];
        for (side, name_col, id_col, catalogue, id, name) in sides {
            let given = id
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
            match given {
                None if !name.is_empty() => {
                    let found: Vec<&(String, String)> =
                        catalogue.iter().filter(|(_, n)| n.trim() == name).collect();
                    match found.as_slice() {
                        [(pid, _)] => *id = Some(pid.clone()),
                        [] => issues.push(issue(Severity::Error, r.row, name_col, format!("no {side} product is named \"{name}\" (fill column {id_col} or fix the name)"))),
                        many => issues.push(issue(
                            Severity::Error,
                            r.row,
                            name_col,
                            format!("{} {side} products are named \"{name}\": fill column {id_col} with the right id", many.len()),
                        )),
                    }
                }
                Some(pid) if !name.is_empty() => {
                    if let Some((_, actual)) = catalogue.iter().find(|(i, _)| *i == pid)
                        && actual.trim() != name
                    {
                        issues.push(issue(
                            Severity::Warning,
                            r.row,
                            name_col,
                            format!(
                                "{side} product {pid} is named \"{}\" in the catalogue",
                                actual.trim()
                            ),
                        ));
                    }
                }
                _ => {}
            }
        }
        out.push(r);
    }
    (out, issues)
}

#[cfg(test)]
mod resolve_tests {
    use super::*;

    #[test]
    fn empty_ids_are_filled_by_exact_name_and_problems_name_the_row() {
        let px = vec![
            ("prd_b".to_owned(), "Bannière".to_owned()),
            ("prd_x".to_owned(), "Double".to_owned()),
            ("prd_y".to_owned(), "Double".to_owned()),
        ];
        let iw = vec![("iw_b".to_owned(), "Banner".to_owned())];
        let row = |row, a: &str, b: Option<&str>, c: &str, d: Option<&str>| MaskRow {
            row,
            planexpo_product_name: a.into(),
            planexpo_product_id: b.map(Into::into),
            inwink_product_name: c.into(),
            inwink_product_id: d.map(Into::into),
        };
        let (rows, issues) = resolve_ids(
            &[
                row(2, "Bannière", None, "Banner", None),
                row(3, "Nothing", None, "", None),
                row(4, "Double", None, "", None),
                row(5, "Old name", Some("prd_b"), "", None),
                row(6, "Stand", Some("prd_stand"), "", None),
            ],
            &px,
            &iw,
        );
        assert_eq!(rows[0].planexpo_product_id.as_deref(), Some("prd_b"));
        assert_eq!(rows[0].inwink_product_id.as_deref(), Some("iw_b"));
        let text: Vec<String> = issues.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "error: row 3, column A: no Planexpo product is named \"Nothing\" (fill column B or fix the name)",
                "error: row 4, column A: 2 Planexpo products are named \"Double\": fill column B with the right id",
                "warning: row 5, column A: Planexpo product prd_b is named \"Bannière\" in the catalogue",
            ]
        );
    }
}
