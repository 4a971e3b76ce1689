//! Writing masks: the blank template the organiser duplicates, and the draft pre-filled from
//! the two catalogues.

use crate::layout::{DEFAULT_FIELDS, KEYS, PrerequisiteKey, ProductColumn, SheetKind};
use crate::{AmbiguousName, DraftSummary, MaskFileError};
use rust_xlsxwriter::{Color, Format, FormatAlign, FormatBorder, Workbook, Worksheet, XlsxError};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

struct Formats {
    header: Format,
    wrap: Format,
    id: Format,
    hint: Format,
}

impl Formats {
    fn new() -> Formats {
        Formats {
            header: Format::new()
                .set_bold()
                .set_text_wrap()
                .set_align(FormatAlign::Top)
                .set_background_color(Color::RGB(0xD9E1F2))
                .set_border_bottom(FormatBorder::Thin),
            wrap: Format::new().set_text_wrap().set_align(FormatAlign::Top),
            // Ids are text: an id typed as a number keeps its leading zeros.
            id: Format::new()
                .set_num_format("@")
                .set_align(FormatAlign::Top),
            hint: Format::new()
                .set_italic()
                .set_text_wrap()
                .set_align(FormatAlign::Top)
                .set_font_color(Color::RGB(0x595959)),
        }
    }
}

/// A product row of sheet 3: columns A–D and a note in column E.
struct ProductLine<'a> {
    planexpo_name: &'a str,
    planexpo_id: &'a str,
    inwink_name: &'a str,
    inwink_id: &'a str,
    note: String,
}

/// What the prerequisites sheet is filled with.
#[derive(Clone, Copy)]
enum Values<'a> {
    Examples,
    /// The draft's defaults, overridden by the settings given (from the deployment).
    Draft(&'a BTreeMap<PrerequisiteKey, String>),
}

fn prerequisites_sheet(
    ws: &mut Worksheet,
    f: &Formats,
    values: Values<'_>,
) -> Result<(), XlsxError> {
    ws.set_name(SheetKind::Prerequisites.french_name())?;
    ws.write_string_with_format(0, 0, "Paramètre\nSetting", &f.header)?;
    ws.write_string_with_format(0, 1, "Valeur\nValue", &f.header)?;
    ws.write_string_with_format(
        0,
        2,
        "Explication (jamais de secret dans ce document)\nExplanation (never a secret in this document)",
        &f.header,
    )?;
    ws.set_row_height(0, 30)?;
    for (i, k) in KEYS.iter().enumerate() {
        let row = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let value = match values {
            Values::Examples => k.example,
            Values::Draft(given) => given.get(&k.key).map_or(k.draft, String::as_str),
        };
        ws.write_string_with_format(row, 0, k.key.cell(), &f.wrap)?;
        ws.write_string_with_format(row, 1, value, &f.id)?;
        ws.write_string_with_format(row, 2, k.help, &f.hint)?;
        ws.set_row_height(row, 30)?;
    }
    ws.set_column_width(0, 36)?;
    ws.set_column_width(1, 40)?;
    ws.set_column_width(2, 70)?;
    ws.set_freeze_panes(1, 0)?;
    Ok(())
}

fn default_fields_sheet(ws: &mut Worksheet, f: &Formats) -> Result<(), XlsxError> {
    ws.set_name(SheetKind::DefaultFields.french_name())?;
    for (col, h) in [
        "Objet inwink\ninwink object",
        "Champ Planexpo\nPlanexpo field",
        "Champ inwink\ninwink field",
        "Remarque\nNote",
    ]
    .iter()
    .enumerate()
    {
        ws.write_string_with_format(0, col as u16, *h, &f.header)?;
    }
    ws.set_row_height(0, 30)?;
    for (i, field) in DEFAULT_FIELDS.iter().enumerate() {
        let row = u32::try_from(i + 1).unwrap_or(u32::MAX);
        ws.write_string_with_format(row, 0, field.object.cell(), &f.wrap)?;
        ws.write_string_with_format(row, 1, field.planexpo_cell(), &f.wrap)?;
        ws.write_string_with_format(row, 2, field.inwink, &f.wrap)?;
        ws.write_string_with_format(row, 3, field.note, &f.hint)?;
        ws.set_row_height(row, 30)?;
    }
    let row = u32::try_from(DEFAULT_FIELDS.len() + 2).unwrap_or(u32::MAX);
    ws.write_string_with_format(
        row,
        0,
        "Ces champs sont toujours synchronisés et ne sont pas configurables : cette feuille sert de référence.\nThese fields are always synchronised and are not configurable: this sheet is for reference.",
        &f.hint,
    )?;
    ws.set_column_width(0, 16)?;
    ws.set_column_width(1, 46)?;
    ws.set_column_width(2, 28)?;
    ws.set_column_width(3, 48)?;
    ws.set_freeze_panes(1, 0)?;
    Ok(())
}

fn products_sheet(
    ws: &mut Worksheet,
    f: &Formats,
    lines: &[ProductLine<'_>],
) -> Result<(), XlsxError> {
    ws.set_name(SheetKind::Products.french_name())?;
    for (col, c) in ProductColumn::ALL.iter().enumerate() {
        ws.write_string_with_format(0, col as u16, c.header(), &f.header)?;
    }
    let notes = lines.iter().any(|l| !l.note.is_empty());
    if notes {
        ws.write_string_with_format(0, 4, "Remarque\nNote", &f.header)?;
    }
    ws.set_row_height(0, 30)?;
    for (i, l) in lines.iter().enumerate() {
        let row = u32::try_from(i + 1).unwrap_or(u32::MAX);
        ws.write_string(row, 0, l.planexpo_name)?;
        ws.write_string_with_format(row, 1, l.planexpo_id, &f.id)?;
        ws.write_string(row, 2, l.inwink_name)?;
        ws.write_string_with_format(row, 3, l.inwink_id, &f.id)?;
        if !l.note.is_empty() {
            ws.write_string_with_format(row, 4, &l.note, &f.hint)?;
        }
    }
    // Typed ids stay text in the rows the organiser adds.
    ws.set_column_format(1, &f.id)?;
    ws.set_column_format(3, &f.id)?;
    ws.set_column_width(0, 44)?;
    ws.set_column_width(1, 24)?;
    ws.set_column_width(2, 44)?;
    ws.set_column_width(3, 24)?;
    if notes {
        ws.set_column_width(4, 70)?;
    }
    ws.set_freeze_panes(1, 0)?;
    ws.set_active(true);
    Ok(())
}

fn save(path: &Path, values: Values<'_>, lines: &[ProductLine<'_>]) -> Result<(), MaskFileError> {
    let build = || -> Result<(), XlsxError> {
        let f = Formats::new();
        let mut workbook = Workbook::new();
        prerequisites_sheet(workbook.add_worksheet(), &f, values)?;
        default_fields_sheet(workbook.add_worksheet(), &f)?;
        products_sheet(workbook.add_worksheet(), &f, lines)?;
        workbook.save(path)
    };
    build().map_err(|source| MaskFileError::Write {
        path: path.to_owned(),
        source,
    })
}

pub(crate) fn template(path: &Path) -> Result<(), MaskFileError> {
    let lines = [
        ProductLine {
            planexpo_name: "Bannière 2x1 m (exemple)",
            planexpo_id: "prd_banniere_2x1",
            inwink_name: "Bannière 2x1 m",
            inwink_id: "iw_banniere_2x1",
            note: String::new(),
        },
        ProductLine {
            planexpo_name: "Pack de 10 badges exposant (exemple)",
            planexpo_id: "opt_badges_10",
            inwink_name: "Pack de 10 badges exposant",
            inwink_id: "iw_badges_10",
            note: String::new(),
        },
    ];
    save(path, Values::Examples, &lines)
}

pub(crate) fn draft(
    path: &Path,
    planexpo: &[(String, String)],
    inwink: &[(String, String)],
    settings: &BTreeMap<PrerequisiteKey, String>,
) -> Result<DraftSummary, MaskFileError> {
    /// One product per id (the first), ids and names trimmed, products without an id dropped.
    fn catalogue(products: &[(String, String)]) -> Vec<(&str, &str)> {
        let mut seen = BTreeSet::new();
        products
            .iter()
            .map(|(id, name)| (id.trim(), name.trim()))
            .filter(|(id, _)| !id.is_empty() && seen.insert(*id))
            .collect()
    }
    fn by_name<'a>(products: &[(&'a str, &'a str)]) -> BTreeMap<&'a str, Vec<&'a str>> {
        let mut map: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (id, name) in products {
            if !name.is_empty() {
                map.entry(*name).or_default().push(*id);
            }
        }
        map
    }
    let px = catalogue(planexpo);
    let iw = catalogue(inwink);
    let px_names = by_name(&px);
    let iw_names = by_name(&iw);
    let count = |map: &BTreeMap<&str, Vec<&str>>, name: &str| map.get(name).map_or(0, Vec::len);
    let ambiguous_note = |name: &str| {
        format!(
            "Plusieurs produits portent ce nom (Planexpo : {p}, inwink : {i}) : choisir à la main / Several products have this name (Planexpo: {p}, inwink: {i}): choose by hand",
            p = count(&px_names, name),
            i = count(&iw_names, name)
        )
    };
    let is_ambiguous = |name: &str| {
        let (p, i) = (count(&px_names, name), count(&iw_names, name));
        p >= 1 && i >= 1 && (p > 1 || i > 1)
    };

    let mut summary = DraftSummary::default();
    let mut lines = Vec::new();
    let mut used_inwink = BTreeSet::new();
    for (id, name) in &px {
        let matches = iw_names.get(name).map_or(&[][..], Vec::as_slice);
        if !name.is_empty() && count(&px_names, name) == 1 && matches.len() == 1 {
            let inwink_id = matches[0];
            used_inwink.insert(inwink_id);
            summary.matched += 1;
            lines.push(ProductLine {
                planexpo_name: name,
                planexpo_id: id,
                inwink_name: name,
                inwink_id,
                note: String::new(),
            });
        } else if is_ambiguous(name) {
            lines.push(ProductLine {
                planexpo_name: name,
                planexpo_id: id,
                inwink_name: "",
                inwink_id: "",
                note: ambiguous_note(name),
            });
        } else {
            summary
                .planexpo_unmatched
                .push(((*id).to_owned(), (*name).to_owned()));
            lines.push(ProductLine {
                planexpo_name: name,
                planexpo_id: id,
                inwink_name: "",
                inwink_id: "",
                note: "Aucun produit inwink ne porte ce nom : à associer à la main, ou laisser non synchronisé / No inwink product has this name: map it by hand, or leave it unsynchronised".into(),
            });
        }
    }
    for (id, name) in &iw {
        if used_inwink.contains(id) {
            continue;
        }
        let note = if is_ambiguous(name) {
            ambiguous_note(name)
        } else {
            summary
                .inwink_unmatched
                .push(((*id).to_owned(), (*name).to_owned()));
            "Aucun produit Planexpo ne porte ce nom / No Planexpo product has this name".into()
        };
        lines.push(ProductLine {
            planexpo_name: "",
            planexpo_id: "",
            inwink_name: name,
            inwink_id: id,
            note,
        });
    }
    for (name, px_ids) in &px_names {
        if is_ambiguous(name) {
            summary.ambiguous.push(AmbiguousName {
                name: (*name).to_owned(),
                planexpo_ids: px_ids.iter().map(|s| (*s).to_owned()).collect(),
                inwink_ids: iw_names
                    .get(name)
                    .map(|v| v.iter().map(|s| (*s).to_owned()).collect())
                    .unwrap_or_default(),
            });
        }
    }
    save(path, Values::Draft(settings), &lines)?;
    Ok(summary)
}
