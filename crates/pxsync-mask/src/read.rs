//! Reading a mask: a workbook's sheets or a CSV file become [`Grid`]s of trimmed text, then each
//! sheet is read by its own function. Every problem becomes a [`LocatedIssue`]; only a file
//! that cannot be read at all is an `Err`.

use crate::layout::{DEFAULT_FIELDS, KEYS, PrerequisiteKey, ProductColumn, SheetKind};
use crate::secret::{is_reference, is_secret_key, looks_like_reference, looks_like_secret};
use crate::text::{column_letter, one_line, words};
use crate::{LocatedIssue, MaskFile, MaskFileError, Prerequisite, REDACTED, pack_size_warnings};
use calamine::{Data, Range, Reader};
use pxsync_core::mask::{MaskRow, Severity, check_mask};
use std::collections::BTreeMap;
use std::path::Path;

/// One cell: its text (trimmed; numbers without ".0") and what is wrong with it, if anything.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cell {
    pub(crate) text: String,
    pub(crate) problem: Option<String>,
}

/// A sheet's cells, row 0 = sheet row 1.
#[derive(Debug, Clone, Default)]
pub(crate) struct Grid {
    pub(crate) rows: Vec<Vec<Cell>>,
}

impl Grid {
    fn cell(&self, row: usize, col: usize) -> Option<&Cell> {
        self.rows.get(row).and_then(|r| r.get(col))
    }

    fn text(&self, row: usize, col: usize) -> &str {
        self.cell(row, col).map_or("", |c| c.text.as_str())
    }

    fn width(&self, row: usize) -> usize {
        self.rows.get(row).map_or(0, Vec::len)
    }

    fn from_range(range: &Range<Data>) -> Grid {
        let Some((end_row, end_col)) = range.end() else {
            return Grid::default();
        };
        let rows = (0..=end_row)
            .map(|r| {
                (0..=end_col)
                    .map(|c| cell_of(range.get_value((r, c))))
                    .collect()
            })
            .collect();
        Grid { rows }
    }
}

/// The text of a spreadsheet value. An id typed as a number (`12345`, stored as `12345.0`)
/// reads as `12345`.
fn cell_of(data: Option<&Data>) -> Cell {
    let text = |t: String| Cell {
        text: t,
        problem: None,
    };
    match data {
        None | Some(Data::Empty) => Cell::default(),
        Some(Data::String(s)) => text(s.trim().to_owned()),
        Some(Data::Int(i)) => text(i.to_string()),
        Some(Data::Float(f)) => {
            if f.is_finite() && f.fract() == 0.0 {
                if f.abs() < 1e15 {
                    text(format!("{}", *f as i64))
                } else {
                    Cell {
                        text: format!("{f:.0}"),
                        problem: Some(
                            "this number is too long to be kept exactly: type the id as text"
                                .into(),
                        ),
                    }
                }
            } else {
                text(f.to_string())
            }
        }
        Some(Data::Bool(b)) => text(if *b { "TRUE" } else { "FALSE" }.into()),
        Some(Data::Error(e)) => Cell {
            text: String::new(),
            problem: Some(format!("the cell holds the spreadsheet error {e}")),
        },
        Some(other) => text(other.to_string().trim().to_owned()),
    }
}

fn issue(
    severity: Severity,
    sheet: &str,
    row: usize,
    column: &str,
    message: impl Into<String>,
) -> LocatedIssue {
    LocatedIssue {
        severity,
        sheet: sheet.to_owned(),
        row,
        column: column.to_owned(),
        message: message.into(),
    }
}

pub(crate) fn read(path: &Path) -> Result<MaskFile, MaskFileError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "csv" => read_csv(path),
        "xlsx" | "xlsm" | "xlsb" | "xls" | "ods" => read_workbook(path),
        _ => Err(MaskFileError::UnsupportedFormat {
            path: path.to_owned(),
        }),
    }
}

fn read_workbook(path: &Path) -> Result<MaskFile, MaskFileError> {
    let workbook_error = |source| MaskFileError::Workbook {
        path: path.to_owned(),
        source,
    };
    let mut workbook = calamine::open_workbook_auto(path).map_err(workbook_error)?;
    let mut issues = Vec::new();
    let mut found: BTreeMap<SheetKind, String> = BTreeMap::new();
    for name in workbook.sheet_names() {
        let shown = name.trim();
        match SheetKind::from_sheet_name(&name) {
            None => issues.push(issue(
                Severity::Error,
                shown,
                0,
                "",
                format!(
                    "unknown sheet \"{shown}\": a mask has the sheets \"{}\", \"{}\" and \"{}\" (or \"{}\", \"{}\", \"{}\"); remove or rename it",
                    SheetKind::Prerequisites.french_name(),
                    SheetKind::DefaultFields.french_name(),
                    SheetKind::Products.french_name(),
                    SheetKind::Prerequisites.english_name(),
                    SheetKind::DefaultFields.english_name(),
                    SheetKind::Products.english_name(),
                ),
            )),
            Some(kind) => {
                if let Some(first) = found.get(&kind) {
                    issues.push(issue(
                        Severity::Error,
                        shown,
                        0,
                        "",
                        format!(
                            "a second \"{}\" sheet (the first is \"{}\"): this one is not read; keep one",
                            kind.french_name(),
                            first.trim()
                        ),
                    ));
                } else {
                    found.insert(kind, name.clone());
                }
            }
        }
    }
    let mut grids: BTreeMap<SheetKind, Grid> = BTreeMap::new();
    for (kind, name) in &found {
        match workbook.worksheet_range(name) {
            Ok(range) => {
                grids.insert(*kind, Grid::from_range(&range));
            }
            Err(e) => issues.push(issue(
                Severity::Error,
                name.trim(),
                0,
                "",
                format!("cannot read this sheet: {e}"),
            )),
        }
    }
    let mut prerequisites = Vec::new();
    let mut prerequisites_sheet = String::new();
    let mut rows = Vec::new();
    for kind in SheetKind::ALL {
        let Some(name) = found.get(&kind) else {
            let severity = match kind {
                SheetKind::Products => Severity::Error,
                _ => Severity::Warning,
            };
            issues.push(issue(
                severity,
                "",
                0,
                "",
                format!(
                    "the workbook has no sheet \"{}\" (or \"{}\")",
                    kind.french_name(),
                    kind.english_name()
                ),
            ));
            continue;
        };
        let Some(grid) = grids.get(&kind) else {
            continue;
        };
        let sheet = name.trim();
        match kind {
            SheetKind::Prerequisites => {
                let (p, i) = read_prerequisites(grid, sheet);
                prerequisites = p;
                prerequisites_sheet = sheet.to_owned();
                issues.extend(i);
            }
            SheetKind::DefaultFields => issues.extend(read_default_fields(grid, sheet)),
            SheetKind::Products => {
                let (r, i) = read_products(grid, sheet);
                rows = r;
                issues.extend(i);
            }
        }
    }
    Ok(MaskFile {
        rows,
        prerequisites,
        prerequisites_sheet,
        issues,
    })
}

fn read_csv(path: &Path) -> Result<MaskFile, MaskFileError> {
    let bytes = std::fs::read(path).map_err(|source| MaskFileError::Io {
        path: path.to_owned(),
        source,
    })?;
    let text = decode(&bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let grid = csv_grid(text).map_err(|source| MaskFileError::Csv {
        path: path.to_owned(),
        source,
    })?;
    let sheet = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let (rows, issues) = read_products(&grid, &sheet);
    Ok(MaskFile {
        rows,
        prerequisites: Vec::new(),
        prerequisites_sheet: String::new(),
        issues,
    })
}

/// UTF-8, or else Windows-1252 (what a French spreadsheet exports as "CSV").
fn decode(bytes: &[u8]) -> String {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return s.to_owned();
    }
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž',
        '\u{8f}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}',
        'ž', 'Ÿ',
    ];
    bytes
        .iter()
        .map(|&b| match b {
            0x80..=0x9f => HIGH[usize::from(b - 0x80)],
            _ => char::from(b),
        })
        .collect()
}

/// The CSV's rows as a spreadsheet shows them: one row per record, and the blank lines (which
/// the CSV parser skips) as empty rows. The delimiter is `,`, or `;` or a tab when the first
/// line has more of them.
fn csv_grid(text: &str) -> Result<Grid, csv::Error> {
    let first = text.lines().next().unwrap_or_default();
    let delimiter = [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|d| (first.bytes().filter(|b| b == d).count(), *d == b','))
        .unwrap_or(b',');
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    let bytes = text.as_bytes();
    loop {
        // The parser reports a record as starting where the blank lines before it start.
        let start = usize::try_from(reader.position().byte()).unwrap_or(usize::MAX);
        if !reader.read_record(&mut record)? {
            break;
        }
        let mut lead = bytes
            .get(start..)
            .unwrap_or_default()
            .iter()
            .take_while(|b| **b == b'\n' || **b == b'\r')
            .copied()
            .collect::<Vec<u8>>();
        // The `\n` of the previous record's `\r\n` is not a blank line.
        if start > 0 && bytes.get(start - 1) == Some(&b'\r') && lead.first() == Some(&b'\n') {
            lead.remove(0);
        }
        let blank_lines = String::from_utf8_lossy(&lead)
            .replace("\r\n", "\n")
            .matches(['\n', '\r'])
            .count();
        rows.extend(std::iter::repeat_n(Vec::new(), blank_lines));
        rows.push(
            record
                .iter()
                .map(|f| Cell {
                    text: f.trim().to_owned(),
                    problem: None,
                })
                .collect(),
        );
    }
    Ok(Grid { rows })
}

/// The products sheet: headers in row 1 (French or English, falling back to positions A–D),
/// one product per row. Empty trailing rows are dropped; empty rows between filled rows are
/// kept, so that `check_mask` reports them.
pub(crate) fn read_products(grid: &Grid, sheet: &str) -> (Vec<MaskRow>, Vec<LocatedIssue>) {
    let mut issues = Vec::new();
    let mut columns: [Option<usize>; 4] = [None; 4];
    for col in 0..grid.width(0) {
        let header = grid.text(0, col);
        let Some(field) = ProductColumn::from_header(header) else {
            continue;
        };
        match columns[field as usize] {
            None => columns[field as usize] = Some(col),
            Some(first) => issues.push(issue(
                Severity::Warning,
                sheet,
                1,
                &column_letter(col),
                format!(
                    "\"{}\" looks like the {} too; column {} is the one read",
                    one_line(header),
                    field.label(),
                    column_letter(first)
                ),
            )),
        }
    }
    let recognised = columns.iter().flatten().count();
    if recognised == 0 {
        issues.push(issue(
            Severity::Warning,
            sheet,
            1,
            "",
            "no known column header (e.g. \"Nom produit / option Planexpo\", \"ID produit Planexpo\", \"Produit inwink\", \"ID produit inwink\"): row 1 is taken as the header and columns A–D are read by position",
        ));
    }
    for field in ProductColumn::ALL {
        if columns[field as usize].is_some() {
            continue;
        }
        let pos = field.default_position();
        if columns.contains(&Some(pos)) {
            issues.push(issue(
                Severity::Error,
                sheet,
                1,
                "",
                format!(
                    "no column for the {}: column {} holds another one; add a header for it",
                    field.label(),
                    column_letter(pos)
                ),
            ));
            continue;
        }
        columns[field as usize] = Some(pos);
        if recognised > 0 {
            issues.push(issue(
                Severity::Warning,
                sheet,
                1,
                &column_letter(pos),
                format!(
                    "no header for the {}: column {} is read by position",
                    field.label(),
                    column_letter(pos)
                ),
            ));
        }
    }

    let value = |row: usize, field: ProductColumn| -> &str {
        columns[field as usize].map_or("", |c| grid.text(row, c))
    };
    let filled = |row: usize| {
        ProductColumn::ALL
            .iter()
            .any(|f| !value(row, *f).is_empty())
    };
    let last = (1..grid.rows.len()).rev().find(|r| filled(*r));
    let mut rows = Vec::new();
    for r in 1..=last.unwrap_or(0) {
        for field in ProductColumn::ALL {
            if let Some(col) = columns[field as usize]
                && let Some(problem) = grid.cell(r, col).and_then(|c| c.problem.as_deref())
            {
                issues.push(issue(
                    Severity::Error,
                    sheet,
                    r + 1,
                    &column_letter(col),
                    problem,
                ));
            }
        }
        let opt = |f| Some(value(r, f).to_owned()).filter(|s| !s.is_empty());
        rows.push(MaskRow {
            row: r + 1,
            planexpo_product_name: value(r, ProductColumn::PlanexpoName).to_owned(),
            planexpo_product_id: opt(ProductColumn::PlanexpoId),
            inwink_product_name: value(r, ProductColumn::InwinkName).to_owned(),
            inwink_product_id: opt(ProductColumn::InwinkId),
        });
    }
    if rows.is_empty() {
        issues.push(issue(
            Severity::Warning,
            sheet,
            0,
            "",
            "no product rows: no product will be synchronised (only the default fields)",
        ));
    }

    // The core's checks (1:1 both ways, empty rows) and the pack sizes, in this sheet's
    // columns.
    let letter = |core: &str| -> String {
        ProductColumn::ALL
            .iter()
            .find(|f| f.core_letter() == core)
            .and_then(|f| columns[*f as usize])
            .map_or_else(|| core.to_owned(), column_letter)
    };
    let (_, core_issues) = check_mask(&rows);
    issues.extend(core_issues.into_iter().map(|i| LocatedIssue {
        severity: i.severity,
        sheet: sheet.to_owned(),
        row: i.row,
        column: letter(&i.column),
        message: i.message,
    }));
    issues.extend(pack_size_warnings(&rows).into_iter().map(|i| LocatedIssue {
        sheet: sheet.to_owned(),
        column: letter(&i.column),
        ..i
    }));
    // Row 0 (the whole sheet) first, then by row; the order of discovery otherwise.
    issues.sort_by_key(|i| i.row);
    (rows, issues)
}

/// The prerequisites sheet: column A the key, column B the value (other columns are
/// explanations). A value that looks like a secret is an error that never shows the value,
/// and the value is replaced by [`REDACTED`].
pub(crate) fn read_prerequisites(
    grid: &Grid,
    sheet: &str,
) -> (Vec<Prerequisite>, Vec<LocatedIssue>) {
    let mut issues = Vec::new();
    let mut out = Vec::new();
    let mut seen: BTreeMap<PrerequisiteKey, usize> = BTreeMap::new();
    // Row 1 is the header, unless it already holds a known key.
    let start = usize::from(PrerequisiteKey::from_label(grid.text(0, 0)).is_none());
    for r in start..grid.rows.len() {
        let row = r + 1;
        let key = one_line(grid.text(r, 0));
        let raw_value = grid.text(r, 1);
        // Explanations and notes must not hold a secret either.
        for c in 2..grid.width(r) {
            if looks_like_secret(grid.text(r, c), false) {
                issues.push(issue(
                    Severity::Error,
                    sheet,
                    row,
                    &column_letter(c),
                    "this cell looks like a secret (the value is not shown): a mask never holds a secret; delete it",
                ));
            }
        }
        if key.is_empty() && raw_value.is_empty() {
            continue;
        }
        for c in [0, 1] {
            if let Some(problem) = grid.cell(r, c).and_then(|c| c.problem.as_deref()) {
                issues.push(issue(
                    Severity::Error,
                    sheet,
                    row,
                    &column_letter(c),
                    problem,
                ));
            }
        }
        if looks_like_secret(&key, false) {
            issues.push(issue(
                Severity::Error,
                sheet,
                row,
                "A",
                "this key looks like a secret (it is not shown): a mask never holds a secret; write the setting's name here",
            ));
            out.push(Prerequisite {
                key: REDACTED.into(),
                value: REDACTED.into(),
                row,
            });
            continue;
        }
        let known = PrerequisiteKey::from_label(&key);
        let must_be_reference = known.map_or_else(|| is_secret_key(&key), |k| k.is_reference());
        let shown_key = if key.is_empty() {
            "(no key)".to_owned()
        } else {
            format!("\"{key}\"")
        };
        let mut value = raw_value.to_owned();
        if key.is_empty() {
            issues.push(issue(
                Severity::Warning,
                sheet,
                row,
                "A",
                "a value without a key: write the setting's name in column A",
            ));
        }
        if must_be_reference {
            if raw_value.is_empty() {
                issues.push(issue(
                    Severity::Warning,
                    sheet,
                    row,
                    "B",
                    format!("{shown_key} has no value: write where the secret is kept (env:NAME or secret:name/key)"),
                ));
            } else if !is_reference(raw_value) {
                let what = if looks_like_reference(raw_value) {
                    "is not a valid reference"
                } else {
                    "must be a reference to where the secret is kept, not the secret itself"
                };
                issues.push(issue(
                    Severity::Error,
                    sheet,
                    row,
                    "B",
                    format!("the value of {shown_key} {what} (the value is not shown): write env:NAME (an environment variable) or secret:name/key (a Kubernetes secret), and keep the secret there"),
                ));
                value = REDACTED.into();
            }
        } else if looks_like_secret(raw_value, known.is_some()) {
            issues.push(issue(
                Severity::Error,
                sheet,
                row,
                "B",
                format!("the value of {shown_key} looks like a secret (it is not shown): a mask never holds a secret; keep it in an environment variable or a Kubernetes secret and write env:NAME or secret:name/key here"),
            ));
            value = REDACTED.into();
        } else if raw_value.is_empty() && known.is_some() {
            issues.push(issue(
                Severity::Warning,
                sheet,
                row,
                "B",
                format!("{shown_key} has no value"),
            ));
        }
        match known {
            Some(k) => {
                if let Some(&first) = seen.get(&k) {
                    issues.push(issue(
                        Severity::Warning,
                        sheet,
                        row,
                        "A",
                        format!(
                            "\"{}\" is already given on row {first}; keep one",
                            k.french_label()
                        ),
                    ));
                } else {
                    seen.insert(k, row);
                }
            }
            None if !key.is_empty() => issues.push(issue(
                Severity::Warning,
                sheet,
                row,
                "A",
                format!("unknown prerequisite {shown_key}: pxsync does not read it"),
            )),
            None => {}
        }
        if !key.is_empty() || !raw_value.is_empty() {
            out.push(Prerequisite { key, value, row });
        }
    }
    for k in &KEYS {
        if !seen.contains_key(&k.key) {
            issues.push(issue(
                Severity::Warning,
                sheet,
                0,
                "",
                format!("missing prerequisite \"{}\" ({})", k.french, k.english),
            ));
        }
    }
    issues.sort_by_key(|i| i.row);
    (out, issues)
}

/// The default-fields sheet, shown for reference: it must list the default fields of
/// MISSION.md §1.1, which are not configurable; a missing or extra one is a warning.
pub(crate) fn read_default_fields(grid: &Grid, sheet: &str) -> Vec<LocatedIssue> {
    let mut issues = Vec::new();
    // The column whose header names the side and a field ("Champ inwink", "inwink field"),
    // else the side alone, else the template's position.
    let find = |side: &str, fallback: usize| {
        let header = |c: usize| words(grid.text(0, c));
        let field_word = |w: &String| ["champ", "champs", "field", "fields"].contains(&w.as_str());
        (0..grid.width(0))
            .find(|c| {
                let h = header(*c);
                h.iter().any(|w| w == side) && h.iter().any(field_word)
            })
            .or_else(|| (0..grid.width(0)).find(|c| header(*c).iter().any(|w| w == side)))
            .unwrap_or(fallback)
    };
    let planexpo_col = find("planexpo", 1);
    let inwink_col = find("inwink", 2);
    let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
    for r in 1..grid.rows.len() {
        let row = r + 1;
        let planexpo = grid.text(r, planexpo_col);
        let inwink = grid.text(r, inwink_col);
        if planexpo.is_empty() && inwink.is_empty() {
            continue;
        }
        let shown = one_line(if inwink.is_empty() { planexpo } else { inwink });
        let column = column_letter(if inwink.is_empty() {
            planexpo_col
        } else {
            inwink_col
        });
        match DEFAULT_FIELDS
            .iter()
            .position(|f| f.matches(planexpo, inwink))
        {
            None => issues.push(issue(
                Severity::Warning,
                sheet,
                row,
                &column,
                format!("\"{shown}\" is not a default field: the default fields are not configurable and this row changes nothing (products and options are mapped on the sheet \"{}\")", SheetKind::Products.french_name()),
            )),
            Some(i) => {
                if let Some(first) = seen.get(&i) {
                    issues.push(issue(
                        Severity::Warning,
                        sheet,
                        row,
                        &column,
                        format!("\"{shown}\" is already listed on row {first}"),
                    ));
                } else {
                    seen.insert(i, row);
                }
            }
        }
    }
    if seen.is_empty() {
        issues.push(issue(
            Severity::Warning,
            sheet,
            0,
            "",
            "lists none of the default fields: they are not configurable and are synchronised anyway",
        ));
    } else {
        for (i, f) in DEFAULT_FIELDS.iter().enumerate() {
            if !seen.contains_key(&i) {
                issues.push(issue(
                    Severity::Warning,
                    sheet,
                    0,
                    "",
                    format!("the default field \"{}\" → {} is missing: the default fields are not configurable and it is synchronised anyway", f.planexpo_fr, f.inwink),
                ));
            }
        }
    }
    issues.sort_by_key(|i| i.row);
    issues
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_keep_blank_lines() {
        let grid = csv_grid("a,b\n1,2\n\n\"x\ny\",3\r\n\r\n4,5\n\n\n").unwrap();
        let texts: Vec<Vec<&str>> = grid
            .rows
            .iter()
            .map(|r| r.iter().map(|c| c.text.as_str()).collect())
            .collect();
        assert_eq!(
            texts,
            vec![
                vec!["a", "b"],
                vec!["1", "2"],
                vec![],
                vec!["x\ny", "3"],
                vec![],
                vec!["4", "5"],
            ]
        );
    }

    #[test]
    fn csv_semicolons_and_windows_1252() {
        let bytes = b"Nom produit / option Planexpo;ID produit Planexpo\nBanni\xe8re;12\n";
        let grid = csv_grid(&decode(bytes)).unwrap();
        assert_eq!(grid.text(1, 0), "Bannière");
        assert_eq!(grid.text(1, 1), "12");
    }

    #[test]
    fn numbers_read_as_text() {
        assert_eq!(cell_of(Some(&Data::Float(12345.0))).text, "12345");
        assert_eq!(cell_of(Some(&Data::Float(-3.0))).text, "-3");
        assert_eq!(cell_of(Some(&Data::Float(2.5))).text, "2.5");
        assert_eq!(cell_of(Some(&Data::Int(7))).text, "7");
        let big = cell_of(Some(&Data::Float(1e17)));
        assert_eq!(big.text, "100000000000000000");
        assert!(big.problem.is_some());
        assert_eq!(
            cell_of(Some(&Data::String("  prd_1 ".into()))).text,
            "prd_1"
        );
    }
}
