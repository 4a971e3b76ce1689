//! # pxsync-mask: the synchronisation mask file ("masque de synchronisation")
//!
//! The per-event reference document (MISSION.md §2) as a file: a workbook with three sheets
//! (`Prérequis techniques`, `Champs par défaut`, `Produits et options`, or their English names),
//! or a CSV holding the products sheet alone. This crate
//! - reads one ([`read_mask`]) into the core's [`MaskRow`]s, the prerequisites, and every problem
//!   found, each located by sheet, row and column ([`LocatedIssue`]); the 1:1 rule and the
//!   empty-row check are the core's ([`pxsync_core::mask::check_mask`]), not repeated here;
//! - warns when a pack size differs between the two sides ([`pack_size_warnings`]): quantities
//!   are copied, never converted;
//! - writes the blank template the organiser duplicates ([`write_template`]) and the draft
//!   pre-filled from the two catalogues by exact name ([`write_draft`]).
//!
//! Deciding what a problem means for the exit status, importing, and fetching the catalogues
//! are the caller's.
//!
//! What this crate must never do:
//! - **touch the network**: it reads and writes local files only (no tokio, no HTTP client).
//! - **print a secret**: the prerequisites sheet holds ids and references to where secrets
//!   are kept (`env:NAME`, `secret:name/key`). A value that looks like a secret is an error
//!   whose message never contains the value, and the value is replaced by [`REDACTED`] in
//!   [`MaskFile::prerequisites`].
//! - **resolve a reference**: `env:NAME` is not looked up here; the caller's configuration does.

mod deployment;
mod layout;
mod read;
mod secret;
mod text;
mod write;

pub use deployment::{Deployment, SecretSource, Setting, SettingValue, check_prerequisites};
pub use layout::{PrerequisiteKey, SheetKind};
pub use pxsync_core::mask::{Mask, MaskIssue, MaskRow, Severity};

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// What replaces a value that looked like a secret.
pub const REDACTED: &str = "[redacted]";

/// A mask read from a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskFile {
    /// The products sheet's rows, with their real sheet row numbers (1 = the header). Empty
    /// trailing rows are dropped; empty rows between filled rows are kept (and reported).
    pub rows: Vec<MaskRow>,
    /// The prerequisites sheet's key/value rows (empty for a CSV).
    pub prerequisites: Vec<Prerequisite>,
    /// The prerequisites sheet's name as written in the workbook (empty for a CSV).
    #[serde(default)]
    pub prerequisites_sheet: String,
    /// Every problem found while reading, and `check_mask`'s, each with sheet, row and column.
    pub issues: Vec<LocatedIssue>,
}

impl MaskFile {
    pub fn has_errors(&self) -> bool {
        self.issues.iter().any(|i| i.severity == Severity::Error)
    }

    /// The checked mapping (`check_mask` of the rows). Usable only when
    /// [`has_errors`](Self::has_errors) is false.
    pub fn mask(&self) -> Mask {
        pxsync_core::mask::check_mask(&self.rows).0
    }

    /// The value of a known prerequisite (the first row giving it), if it has one.
    pub fn prerequisite(&self, key: PrerequisiteKey) -> Option<&str> {
        self.prerequisites
            .iter()
            .find(|p| PrerequisiteKey::from_label(&p.key) == Some(key))
            .map(|p| p.value.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// One row of the prerequisites sheet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prerequisite {
    /// Column A, on one line (a bilingual key "Français\nEnglish" reads "Français / English").
    pub key: String,
    /// Column B; [`REDACTED`] when it looked like a secret.
    pub value: String,
    pub row: usize,
}

impl Prerequisite {
    /// Which known setting this row gives, if any.
    pub fn known_key(&self) -> Option<PrerequisiteKey> {
        PrerequisiteKey::from_label(&self.key)
    }
}

/// A problem of the mask file, located by sheet (for a CSV, the file name), row (0 = the
/// whole sheet) and column (a letter, or empty for the whole row).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LocatedIssue {
    pub severity: Severity,
    /// Empty for the whole file.
    pub sheet: String,
    pub row: usize,
    pub column: String,
    pub message: String,
}

impl fmt::Display for LocatedIssue {
    /// `error: sheet Produits et options, row 7, column B: ...`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}: ")?;
        let mut place = Vec::new();
        if !self.sheet.is_empty() {
            place.push(format!("sheet {}", self.sheet));
        }
        if self.row > 0 {
            place.push(format!("row {}", self.row));
        }
        if !self.column.is_empty() {
            place.push(format!("column {}", self.column));
        }
        if !place.is_empty() {
            write!(f, "{}: ", place.join(", "))?;
        }
        f.write_str(&self.message)
    }
}

/// What [`write_draft`] matched and what it left for a person.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftSummary {
    /// Rows where a Planexpo product and an inwink product have the same name, each the only
    /// one of that name on its side: columns A–D filled.
    pub matched: usize,
    /// Planexpo products (id, name) no inwink product has the name of.
    pub planexpo_unmatched: Vec<(String, String)>,
    /// inwink products (id, name) no Planexpo product has the name of.
    pub inwink_unmatched: Vec<(String, String)>,
    /// Names that match more than one product: left unmapped, to choose by hand.
    pub ambiguous: Vec<AmbiguousName>,
}

/// A name carried by several products on one side or both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmbiguousName {
    pub name: String,
    pub planexpo_ids: Vec<String>,
    pub inwink_ids: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MaskFileError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a readable spreadsheet: {source}", path.display())]
    Workbook {
        path: PathBuf,
        source: calamine::Error,
    },
    #[error("{}: {source}", path.display())]
    Csv { path: PathBuf, source: csv::Error },
    #[error(
        "{}: unsupported mask file (expected .xlsx, .xlsm, .xlsb, .xls, .ods or .csv)",
        path.display()
    )]
    UnsupportedFormat { path: PathBuf },
    #[error("{}: cannot write the mask: {source}", path.display())]
    Write {
        path: PathBuf,
        source: rust_xlsxwriter::XlsxError,
    },
}

/// Reads a mask file: .xlsx (three sheets) or .csv (the products sheet alone), French or English
/// sheet and column names. Problems of the content are in [`MaskFile::issues`]; `Err` only when
/// the file cannot be read at all.
pub fn read_mask(path: &Path) -> Result<MaskFile, MaskFileError> {
    read::read(path)
}

/// Writes the blank three-sheet template the organiser duplicates and fills (in French, with
/// English subtitles, example values and two example products).
pub fn write_template(path: &Path) -> Result<(), MaskFileError> {
    write::template(path)
}

/// Writes a pre-filled mask (used by `pxsync mask draft`): products matched by exact name
/// (trimmed, case-sensitive) between the two catalogues, given as (id, name). Unmatched and
/// ambiguous products get a row with a note in column E. The prerequisites sheet holds
/// `settings` (the deployment's ids and references, never a secret: the caller gives where a
/// secret is kept, `env:NAME` or `secret:name/key`), and the default references and blank ids
/// for the keys not given.
pub fn write_draft(
    path: &Path,
    planexpo: &[(String, String)],
    inwink: &[(String, String)],
    settings: &std::collections::BTreeMap<PrerequisiteKey, String>,
) -> Result<DraftSummary, MaskFileError> {
    write::draft(path, planexpo, inwink, settings)
}

/// The pack sizes a product name states: the numbers after "pack", "lot" or "x" ("Pack de 10",
/// "pack of 5", "lot de 3", "x10", "× 4"), and whether it says "pack" or "lot" at all.
fn pack_sizes(name: &str) -> (Vec<u64>, bool) {
    let w = text::words(name);
    let mut sizes = Vec::new();
    let mut keyword = false;
    let number = |s: &str| {
        (!s.is_empty() && s.chars().all(|c| c.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    let fillers = ["de", "d", "of", "du", "des"];
    for (i, t) in w.iter().enumerate() {
        let t = t.as_str();
        if ["pack", "packs", "lot", "lots"].contains(&t) {
            keyword = true;
            let next = w[i + 1..].iter().find(|n| !fillers.contains(&n.as_str()));
            sizes.extend(next.and_then(|n| number(n)));
        } else if let Some(n) = ["packs", "pack", "lots", "lot"]
            .iter()
            .find_map(|k| t.strip_prefix(k))
            .and_then(number)
        {
            keyword = true;
            sizes.push(n);
        } else if t == "x" {
            sizes.extend(w.get(i + 1).and_then(|n| number(n)));
        } else if let Some(n) = t.strip_prefix('x').and_then(number) {
            sizes.push(n);
        }
    }
    sizes.sort_unstable();
    sizes.dedup();
    (sizes, keyword)
}

/// Warnings for rows whose two names state different pack sizes ("pack de 10" on one side,
/// "pack of 5" on the other): quantities are copied, never converted, so a pack of 10 on
/// Planexpo must be a pack of 10 on inwink. A pack size on one side and none on the other is
/// a warning too. Located on the products sheet ("Produits et options"), column C.
pub fn pack_size_warnings(rows: &[MaskRow]) -> Vec<LocatedIssue> {
    let show = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(" / ");
    let mut out = Vec::new();
    for r in rows {
        let (a, c) = (r.planexpo_product_name.trim(), r.inwink_product_name.trim());
        if a.is_empty() || c.is_empty() {
            continue;
        }
        let (px, px_pack) = pack_sizes(a);
        let (iw, iw_pack) = pack_sizes(c);
        let message = if !px.is_empty() && !iw.is_empty() {
            (px != iw).then(|| {
                format!(
                    "pack sizes differ: \"{a}\" (Planexpo) says {}, \"{c}\" (inwink) says {}: quantities are copied, never converted, so both must be the same pack",
                    show(&px),
                    show(&iw)
                )
            })
        } else if !px.is_empty() && px_pack {
            Some(format!(
                "\"{a}\" (Planexpo) is a pack of {} but \"{c}\" (inwink) states no pack size: quantities are copied, never converted; check both are the same pack",
                show(&px)
            ))
        } else if !iw.is_empty() && iw_pack {
            Some(format!(
                "\"{c}\" (inwink) is a pack of {} but \"{a}\" (Planexpo) states no pack size: quantities are copied, never converted; check both are the same pack",
                show(&iw)
            ))
        } else {
            None
        };
        if let Some(message) = message {
            out.push(LocatedIssue {
                severity: Severity::Warning,
                sheet: SheetKind::Products.french_name().to_owned(),
                row: r.row,
                column: "C".into(),
                message,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_sizes_of_names() {
        for (name, sizes, keyword) in [
            ("Pack de 10 badges", vec![10], true),
            ("Badges pack of 5", vec![5], true),
            ("Lot de 3 chaises", vec![3], true),
            ("Chaises x4", vec![4], false),
            ("Chaises × 4", vec![4], false),
            ("Pack10 badges", vec![10], true),
            ("Bannière 2x1 m", vec![], false),
            ("Box 10", vec![], false),
            ("Pack premium", vec![], true),
            ("Wi-Fi", vec![], false),
            ("Lot d'écrans", vec![], true),
        ] {
            assert_eq!(pack_sizes(name), (sizes, keyword), "{name}");
        }
    }

    #[test]
    fn display() {
        let mut i = LocatedIssue {
            severity: Severity::Error,
            sheet: "Produits et options".into(),
            row: 7,
            column: "B".into(),
            message: "m".into(),
        };
        assert_eq!(
            i.to_string(),
            "error: sheet Produits et options, row 7, column B: m"
        );
        i.column.clear();
        assert_eq!(i.to_string(), "error: sheet Produits et options, row 7: m");
        i.row = 0;
        i.severity = Severity::Warning;
        assert_eq!(i.to_string(), "warning: sheet Produits et options: m");
        i.sheet.clear();
        assert_eq!(i.to_string(), "warning: m");
    }
}
