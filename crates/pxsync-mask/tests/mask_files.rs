//! Mask files read back: every .xlsx fixture is generated here with rust_xlsxwriter (no binary
//! fixture is committed), written to a temporary directory, then read with `read_mask`.

use pxsync_mask::{
    LocatedIssue, MaskFile, PrerequisiteKey, REDACTED, Severity, read_mask, write_draft,
    write_template,
};
use rust_xlsxwriter::Workbook;
use std::path::{Path, PathBuf};

/// A cell of a fixture.
#[derive(Clone, Copy)]
enum V<'a> {
    S(&'a str),
    N(f64),
    Blank,
}
use V::{Blank, N, S};

/// A fresh directory for one test, removed when dropped.
struct Dir(PathBuf);

impl std::ops::Deref for Dir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dir(test: &str) -> Dir {
    let d = std::env::temp_dir().join(format!("pxsync-mask-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Dir(d)
}

/// A fixture file in its own directory.
struct Fixture {
    path: PathBuf,
    _dir: Dir,
}

impl std::ops::Deref for Fixture {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

fn xlsx(test: &str, sheets: &[(&str, Vec<Vec<V<'_>>>)]) -> Fixture {
    let dir = dir(test);
    let path = dir.join("masque.xlsx");
    let mut wb = Workbook::new();
    for (name, rows) in sheets {
        let ws = wb.add_worksheet();
        ws.set_name(*name).unwrap();
        for (r, row) in rows.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                let (r, c) = (r as u32, c as u16);
                match v {
                    S(s) => {
                        ws.write_string(r, c, *s).unwrap();
                    }
                    N(n) => {
                        ws.write_number(r, c, *n).unwrap();
                    }
                    Blank => {}
                }
            }
        }
    }
    wb.save(&path).unwrap();
    Fixture { path, _dir: dir }
}

fn csv(test: &str, content: &str) -> Fixture {
    let dir = dir(test);
    let path = dir.join("mask.csv");
    std::fs::write(&path, content).unwrap();
    Fixture { path, _dir: dir }
}

fn prerequisites_fr() -> Vec<Vec<V<'static>>> {
    vec![
        vec![S("Paramètre"), S("Valeur")],
        vec![S("URL de base Planexpo"), S("https://salon.planexpo.fr")],
        vec![S("Slug de l'événement Planexpo"), S("santexpo-2024")],
        vec![
            S("Référence de la clé API Planexpo"),
            S("env:PXSYNC_PLANEXPO_API_KEY"),
        ],
        vec![S("ID de l'événement inwink"), S("evt-santexpo")],
        vec![S("ID client inwink"), S("pxsync-santexpo")],
        vec![
            S("Référence du secret client inwink"),
            S("secret:pxsync-inwink/client-secret"),
        ],
        vec![
            S("Référence du secret webhook"),
            S("env:PXSYNC_WEBHOOK_SECRET"),
        ],
    ]
}

/// MISSION.md §1.1, written independently of the crate's table.
fn default_fields() -> Vec<Vec<V<'static>>> {
    let mut rows = vec![vec![S("Objet"), S("Champ Planexpo"), S("Champ inwink")]];
    for (object, planexpo, inwink) in [
        (
            "Partenaire",
            "ID public du dossier",
            "planexpo_public_order_id",
        ),
        ("Partenaire", "ID privé du dossier", "planexpo_order_id"),
        ("Partenaire", "Relation parent/enfant", "affiliatedToId"),
        ("Partenaire", "Nom de la société", "name"),
        ("Partenaire", "Adresse de la société", "address"),
        ("Partenaire", "Statut", "status"),
        ("Partenaire", "Numéro de stand", "emplacement"),
        ("Partenaire", "Espace", "space"),
        ("Partenaire", "Allée", "aisle"),
        ("Partenaire", "Site web", "website"),
        (
            "Participant",
            "Contact de réservation",
            "team member (Admin)",
        ),
        ("Participant", "E-mail", "email"),
        ("Participant", "Civilité", "civility"),
        ("Participant", "Nom", "lastname"),
        ("Participant", "Prénom", "firstname"),
        ("Participant", "Société", "company"),
        ("Participant", "Poste / fonction", "jobTitle"),
        ("Participant", "Tél 1", "phone1"),
        ("Participant", "Tél 2", "phone2"),
        ("Participant", "Langue préférée", "language"),
    ] {
        rows.push(vec![S(object), S(planexpo), S(inwink)]);
    }
    rows
}

fn products_header_fr() -> Vec<V<'static>> {
    vec![
        S("Nom produit / option Planexpo"),
        S("ID produit Planexpo"),
        S("Produit inwink"),
        S("ID produit inwink"),
    ]
}

fn french_mask(test: &str, products: Vec<Vec<V<'static>>>) -> Fixture {
    let mut rows = vec![products_header_fr()];
    rows.extend(products);
    xlsx(
        test,
        &[
            ("Prérequis techniques", prerequisites_fr()),
            ("Champs par défaut", default_fields()),
            ("Produits et options", rows),
        ],
    )
}

fn text(issues: &[LocatedIssue]) -> Vec<String> {
    issues.iter().map(ToString::to_string).collect()
}

fn errors(m: &MaskFile) -> Vec<&LocatedIssue> {
    m.issues
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .collect()
}

#[test]
fn a_correct_mask_imports() {
    let path = french_mask(
        "correct",
        vec![
            vec![S("Bannière 2x1 m"), S("prd_b21"), S("Bannière"), S("iw_1")],
            vec![S("Wi-Fi"), S("opt_wifi"), S("Wifi"), S("iw_2")],
            vec![S("Stand nu"), S("prd_stand"), Blank, Blank],
            vec![Blank, Blank, S("Badge VIP"), S("iw_3")],
        ],
    );
    let m = read_mask(&path).unwrap();
    assert!(m.issues.is_empty(), "{:#?}", text(&m.issues));
    assert!(!m.has_errors());
    assert_eq!(m.rows.len(), 4);
    assert_eq!(m.rows[0].row, 2);
    assert_eq!(m.rows[0].planexpo_product_name, "Bannière 2x1 m");
    assert_eq!(m.rows[0].planexpo_product_id.as_deref(), Some("prd_b21"));
    assert_eq!(m.rows[0].inwink_product_name, "Bannière");
    assert_eq!(m.rows[0].inwink_product_id.as_deref(), Some("iw_1"));
    assert_eq!(m.rows[2].inwink_product_id, None);
    assert_eq!(m.rows[3].row, 5);
    let mask = m.mask();
    assert_eq!(mask.products.len(), 2);
    assert_eq!(
        mask.inwink_product("opt_wifi").unwrap().inwink_product_id,
        "iw_2"
    );
    assert!(mask.inwink_product("prd_stand").is_none());

    assert_eq!(m.prerequisites.len(), 7);
    assert_eq!(m.prerequisites[0].key, "URL de base Planexpo");
    assert_eq!(m.prerequisites[0].row, 2);
    assert_eq!(
        m.prerequisites[0].known_key(),
        Some(PrerequisiteKey::PlanexpoBaseUrl)
    );
    assert_eq!(
        m.prerequisite(PrerequisiteKey::PlanexpoEventSlug),
        Some("santexpo-2024")
    );
    assert_eq!(
        m.prerequisite(PrerequisiteKey::InwinkClientSecretRef),
        Some("secret:pxsync-inwink/client-secret")
    );
}

#[test]
fn the_template_round_trips() {
    let dir = dir("template");
    let path = dir.join("modele.xlsx");
    write_template(&path).unwrap();
    let m = read_mask(&path).unwrap();
    assert!(m.issues.is_empty(), "{:#?}", text(&m.issues));
    assert_eq!(m.rows.len(), 2);
    assert!(
        m.rows
            .iter()
            .all(|r| r.planexpo_product_id.is_some() && r.inwink_product_id.is_some())
    );
    assert_eq!(m.mask().products.len(), 2);
    assert_eq!(m.prerequisites.len(), 7);
    assert!(m.prerequisites.iter().all(|p| p.known_key().is_some()));
    assert_eq!(
        m.prerequisites[0].key,
        "URL de base Planexpo / Planexpo base URL"
    );
    assert_eq!(
        m.prerequisite(PrerequisiteKey::PlanexpoApiKeyRef),
        Some("env:PXSYNC_PLANEXPO_API_KEY")
    );
}

#[test]
fn duplicates_on_b_and_d_are_located_errors() {
    let path = french_mask(
        "duplicates",
        vec![
            vec![S("Bannière"), S("prd_b"), S("Banner"), S("iw_1")],
            vec![S("Bannière bis"), S("prd_b"), S("Banner 2"), S("iw_2")],
            vec![S("Wi-Fi"), S("opt_wifi"), S("Wifi"), S("iw_1")],
        ],
    );
    let m = read_mask(&path).unwrap();
    assert!(m.has_errors());
    assert_eq!(
        text(&m.issues),
        [
            "error: sheet Produits et options, row 3, column B: Planexpo product prd_b is already mapped on row 2 (one Planexpo product = one inwink product)",
            "error: sheet Produits et options, row 4, column D: inwink product iw_1 is already mapped on row 2 (one inwink product = one Planexpo product)",
        ]
    );
}

#[test]
fn an_empty_row_between_rows_is_an_error_and_trailing_ones_are_ignored() {
    let path = french_mask(
        "empty-row",
        vec![
            vec![S("Bannière"), S("prd_b"), S("Banner"), S("iw_1")],
            vec![S(""), S("  "), Blank, Blank],
            vec![S("Wi-Fi"), S("opt_wifi"), S("Wifi"), S("iw_2")],
            vec![S(" "), Blank, Blank, Blank],
            vec![Blank, Blank, S(""), Blank],
        ],
    );
    let m = read_mask(&path).unwrap();
    assert_eq!(m.rows.len(), 3);
    assert_eq!(
        text(&m.issues),
        ["error: sheet Produits et options, row 3: empty row"]
    );
}

#[test]
fn an_unknown_sheet_is_an_error_naming_it() {
    let mut products = vec![products_header_fr()];
    products.push(vec![S("Wi-Fi"), S("opt_wifi"), S("Wifi"), S("iw_2")]);
    let path = xlsx(
        "unknown-sheet",
        &[
            ("Prérequis techniques", prerequisites_fr()),
            ("Champs par défaut", default_fields()),
            ("Produits et options", products),
            ("Feuil1", vec![vec![S("brouillon")]]),
        ],
    );
    let m = read_mask(&path).unwrap();
    assert!(m.has_errors());
    let e = errors(&m);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].sheet, "Feuil1");
    assert!(
        e[0].to_string()
            .starts_with("error: sheet Feuil1: unknown sheet \"Feuil1\""),
        "{}",
        e[0]
    );
    // The rest is still read.
    assert_eq!(m.rows.len(), 1);
}

#[test]
fn a_workbook_without_products_sheet_is_an_error() {
    let path = xlsx(
        "no-products",
        &[("Prérequis techniques", prerequisites_fr())],
    );
    let m = read_mask(&path).unwrap();
    assert!(m.has_errors());
    assert!(
        text(&m.issues)
            .contains(&"error: the workbook has no sheet \"Produits et options\" (or \"Products and options\")".to_owned()),
        "{:#?}",
        text(&m.issues)
    );
    assert_eq!(m.prerequisites.len(), 7);
}

#[test]
fn english_sheet_names_headers_and_keys() {
    let path = xlsx(
        "english",
        &[
            (
                "  technical PREREQUISITES ",
                vec![
                    vec![S("Setting"), S("Value")],
                    vec![S("Planexpo base URL"), S("https://salon.planexpo.fr")],
                    vec![S("Planexpo event slug"), S("santexpo-2024")],
                    vec![S("Planexpo API key reference"), S("env:PLANEXPO_KEY")],
                    vec![S("inwink event id"), S("evt-1")],
                    vec![S("inwink client id"), S("pxsync")],
                    vec![
                        S("inwink client secret reference"),
                        S("secret:inwink/secret"),
                    ],
                    vec![S("webhook secret reference"), S("env:HOOK")],
                ],
            ),
            ("Default fields", default_fields()),
            (
                "Products and options",
                vec![
                    // Another order than A–D, and a notes column: identified by header.
                    vec![
                        S("inwink product id"),
                        S("Planexpo product name"),
                        S("Notes"),
                        S("Planexpo product id"),
                        S("inwink product name"),
                    ],
                    vec![S("iw_1"), S("Banner"), S("ok"), S("prd_b"), S("Banner")],
                    vec![S("iw_1"), S("Wi-Fi"), S(""), S("opt_wifi"), S("Wifi")],
                ],
            ),
        ],
    );
    let m = read_mask(&path).unwrap();
    assert_eq!(m.rows.len(), 2);
    assert_eq!(m.rows[0].planexpo_product_id.as_deref(), Some("prd_b"));
    assert_eq!(m.rows[0].inwink_product_id.as_deref(), Some("iw_1"));
    assert_eq!(
        m.prerequisite(PrerequisiteKey::WebhookSecretRef),
        Some("env:HOOK")
    );
    // The duplicate is located in the sheet's own column (A), not the core's D.
    assert_eq!(
        text(&m.issues),
        [
            "error: sheet Products and options, row 3, column A: inwink product iw_1 is already mapped on row 2 (one inwink product = one Planexpo product)"
        ]
    );
}

#[test]
fn ids_typed_as_numbers_read_without_decimals() {
    let mut prerequisites = prerequisites_fr();
    prerequisites[4] = vec![S("ID de l'événement inwink"), N(4242.0)];
    let mut products = vec![products_header_fr()];
    products.push(vec![S("Bannière"), N(12345.0), S("Banner"), N(987654321.0)]);
    products.push(vec![S("Wi-Fi"), N(7.0), S("Wifi"), S("0042")]);
    let path = xlsx(
        "numbers",
        &[
            ("Prérequis techniques", prerequisites),
            ("Champs par défaut", default_fields()),
            ("Produits et options", products),
        ],
    );
    let m = read_mask(&path).unwrap();
    assert!(m.issues.is_empty(), "{:#?}", text(&m.issues));
    assert_eq!(m.rows[0].planexpo_product_id.as_deref(), Some("12345"));
    assert_eq!(m.rows[0].inwink_product_id.as_deref(), Some("987654321"));
    assert_eq!(m.rows[1].planexpo_product_id.as_deref(), Some("7"));
    assert_eq!(m.rows[1].inwink_product_id.as_deref(), Some("0042"));
    assert_eq!(m.prerequisite(PrerequisiteKey::InwinkEventId), Some("4242"));
    assert_eq!(
        m.mask().inwink_product("12345").unwrap().inwink_product_id,
        "987654321"
    );
}

#[test]
fn a_secret_in_the_prerequisites_is_an_error_that_does_not_show_it() {
    const API_KEY: &str = "pk_live_9fQ2xT7vLm3ZrB8wK1nYc4Hd";
    const CLIENT_ID: &str = "Xq7Lm2Vt9Rk4Wz8Bn3Jd6Fh1";
    const PASSWORD: &str = "hunter2hunter2";
    let mut prerequisites = prerequisites_fr();
    prerequisites[3] = vec![S("Référence de la clé API Planexpo"), S(API_KEY)];
    prerequisites[5] = vec![S("ID client inwink"), S(CLIENT_ID)];
    prerequisites.push(vec![S("Mot de passe admin"), S(PASSWORD)]);
    prerequisites.push(vec![S("Export password"), S("env:EXPORT_PASSWORD")]);
    let mut products = vec![products_header_fr()];
    products.push(vec![S("Wi-Fi"), S("opt_wifi"), S("Wifi"), S("iw_2")]);
    let path = xlsx(
        "secret",
        &[
            ("Prérequis techniques", prerequisites),
            ("Champs par défaut", default_fields()),
            ("Produits et options", products),
        ],
    );
    let m = read_mask(&path).unwrap();
    assert!(m.has_errors());
    let e = errors(&m);
    let at: Vec<(usize, &str)> = e.iter().map(|i| (i.row, i.column.as_str())).collect();
    assert_eq!(at, [(4, "B"), (6, "B"), (9, "B")], "{:#?}", text(&m.issues));
    assert!(e.iter().all(|i| i.sheet == "Prérequis techniques"));
    let everything = format!("{:?} {:?}", text(&m.issues), m);
    for secret in [API_KEY, CLIENT_ID, PASSWORD] {
        assert!(!everything.contains(secret), "{secret} leaked");
    }
    assert!(e[0].message.contains("not shown"), "{}", e[0]);
    assert_eq!(m.prerequisites[2].value, REDACTED);
    assert_eq!(m.prerequisites[4].value, REDACTED);
    assert_eq!(m.prerequisites[7].value, REDACTED);
    // A reference under a secret-like key is fine (a warning: unknown to pxsync).
    assert_eq!(m.prerequisites[8].value, "env:EXPORT_PASSWORD");
}

#[test]
fn a_pack_size_mismatch_is_a_warning() {
    let path = french_mask(
        "pack",
        vec![
            vec![
                S("Badges pack de 10"),
                S("opt_b10"),
                S("Badges pack of 5"),
                S("iw_b5"),
            ],
            vec![
                S("Lot de 3 chaises"),
                S("opt_c3"),
                S("Chairs x3"),
                S("iw_c3"),
            ],
            vec![S("Pack de 20 flyers"), S("opt_f20"), S("Flyers"), S("iw_f")],
        ],
    );
    let m = read_mask(&path).unwrap();
    assert!(!m.has_errors());
    let w: Vec<(usize, &str, Severity)> = m
        .issues
        .iter()
        .map(|i| (i.row, i.column.as_str(), i.severity))
        .collect();
    assert_eq!(
        w,
        [(2, "C", Severity::Warning), (4, "C", Severity::Warning)],
        "{:#?}",
        text(&m.issues)
    );
    assert!(m.issues[0].message.contains("10"));
    assert!(m.issues[0].message.contains('5'));
    assert_eq!(m.issues[0].sheet, "Produits et options");
    // Still imported: a warning does not block.
    assert_eq!(m.mask().products.len(), 3);
}

#[test]
fn csv_with_the_existing_header() {
    let path = csv(
        "csv-existing",
        "planexpo_product_name,planexpo_product_id,inwink_product_name,inwink_product_id\n\
         Bannière, prd_b ,Banner,iw_1\n\
         \"Wi-Fi, premium\",opt_wifi,Wifi,iw_2\n\
         Stand,prd_stand,,\n\n",
    );
    let m = read_mask(&path).unwrap();
    assert!(m.issues.is_empty(), "{:#?}", text(&m.issues));
    assert!(m.prerequisites.is_empty());
    assert_eq!(m.rows.len(), 3);
    assert_eq!(m.rows[0].planexpo_product_id.as_deref(), Some("prd_b"));
    assert_eq!(m.rows[1].planexpo_product_name, "Wi-Fi, premium");
    assert_eq!(m.rows[2].row, 4);
    assert_eq!(m.rows[2].inwink_product_id, None);
    assert_eq!(m.mask().products.len(), 2);
}

#[test]
fn csv_with_french_headers_semicolons_and_a_bom() {
    let path = csv(
        "csv-french",
        "\u{feff}Nom produit / option Planexpo;ID produit Planexpo;Produit inwink;ID produit inwink\n\
         Bannière;prd_b;Bannière;iw_1\n\
         \n\
         Wi-Fi;prd_b;Wifi;iw_2\n",
    );
    let m = read_mask(&path).unwrap();
    assert_eq!(m.rows.len(), 3);
    assert_eq!(
        text(&m.issues),
        [
            "error: sheet mask.csv, row 3: empty row",
            "error: sheet mask.csv, row 4, column B: Planexpo product prd_b is already mapped on row 2 (one Planexpo product = one inwink product)",
        ]
    );
}

#[test]
fn without_headers_columns_are_read_by_position() {
    let path = csv("csv-positions", "A,B,C,D\nBannière,prd_b,Banner,iw_1\n");
    let m = read_mask(&path).unwrap();
    assert!(!m.has_errors());
    assert_eq!(m.issues.len(), 1, "{:#?}", text(&m.issues));
    assert_eq!(m.issues[0].severity, Severity::Warning);
    assert_eq!(m.rows[0].inwink_product_id.as_deref(), Some("iw_1"));
}

#[test]
fn the_default_fields_sheet_is_checked() {
    let mut fields = default_fields();
    fields.remove(8); // space
    fields.push(vec![
        S("Partenaire"),
        S("Couleur du stand"),
        S("standColor"),
    ]);
    let mut products = vec![products_header_fr()];
    products.push(vec![S("Wi-Fi"), S("opt_wifi"), S("Wifi"), S("iw_2")]);
    let path = xlsx(
        "default-fields",
        &[
            ("Prérequis techniques", prerequisites_fr()),
            ("Champs par défaut", fields),
            ("Produits et options", products),
        ],
    );
    let m = read_mask(&path).unwrap();
    assert!(!m.has_errors());
    let w = text(&m.issues);
    assert_eq!(w.len(), 2, "{w:#?}");
    assert!(
        w[0].starts_with(
            "warning: sheet Champs par défaut: the default field \"Espace\" → space is missing"
        ),
        "{}",
        w[0]
    );
    assert!(w[1].starts_with("warning: sheet Champs par défaut, row 21, column C: \"standColor\" is not a default field"), "{}", w[1]);
}

#[test]
fn the_draft_matches_by_exact_name() {
    let s = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    let planexpo = [
        s("prd_b", "Bannière 2x1 m"),
        s("opt_wifi", "Wi-Fi"),
        s("prd_stand", "Stand nu"),
        s("opt_badge", "Badge"),
        s("opt_badge2", "Badge"),
        s("opt_bag", "Sac"),
    ];
    let inwink = [
        s("iw_1", "Bannière 2x1 m"),
        s("iw_2", "Wi-Fi"),
        s("iw_3", "Badge"),
        s("iw_4", "wi-fi"),
        s("iw_5", "Sac"),
        s("iw_6", "Sac"),
    ];
    let dir = dir("draft");
    let path = dir.join("brouillon.xlsx");
    let settings = std::collections::BTreeMap::from([
        (PrerequisiteKey::PlanexpoEventSlug, "salon-2026".to_owned()),
        (
            PrerequisiteKey::InwinkEventId,
            "3f2b8c1e-9d4a-4b6e-8f00-1234567890ab".to_owned(),
        ),
    ]);
    let summary = write_draft(&path, &planexpo, &inwink, &settings).unwrap();
    assert_eq!(summary.matched, 2);
    assert_eq!(summary.planexpo_unmatched, [s("prd_stand", "Stand nu")]);
    assert_eq!(summary.inwink_unmatched, [s("iw_4", "wi-fi")]);
    let ambiguous: Vec<(&str, usize, usize)> = summary
        .ambiguous
        .iter()
        .map(|a| (a.name.as_str(), a.planexpo_ids.len(), a.inwink_ids.len()))
        .collect();
    assert_eq!(ambiguous, [("Badge", 2, 1), ("Sac", 1, 2)]);

    let m = read_mask(&path).unwrap();
    assert!(!m.has_errors(), "{:#?}", text(&m.issues));
    let mask = m.mask();
    assert_eq!(mask.products.len(), 2);
    assert_eq!(
        mask.inwink_product("prd_b").unwrap().inwink_product_id,
        "iw_1"
    );
    assert_eq!(
        mask.inwink_product("opt_wifi").unwrap().inwink_product_id,
        "iw_2"
    );
    // Every product of both catalogues has its row.
    assert_eq!(m.rows.len(), 6 + 4);
    // The draft's references are in place; the ids given by the deployment are filled, the
    // others are for a person to fill.
    assert_eq!(
        m.prerequisite(PrerequisiteKey::InwinkClientSecretRef),
        Some("env:PXSYNC_INWINK_CLIENT_SECRET")
    );
    assert_eq!(
        m.prerequisite(PrerequisiteKey::InwinkEventId),
        Some("3f2b8c1e-9d4a-4b6e-8f00-1234567890ab")
    );
    assert_eq!(
        m.prerequisite(PrerequisiteKey::PlanexpoEventSlug),
        Some("salon-2026")
    );
    assert_eq!(m.prerequisite(PrerequisiteKey::InwinkClientId), None);
}

#[test]
fn unreadable_files_are_errors() {
    let d = dir("unreadable");
    let bad = d.join("masque.xlsx");
    std::fs::write(&bad, "not a zip").unwrap();
    assert!(read_mask(&bad).is_err());
    let other = d.join("masque.pdf");
    std::fs::write(&other, "x").unwrap();
    let e = read_mask(&other).unwrap_err();
    assert!(e.to_string().contains("unsupported mask file"), "{e}");
    assert!(read_mask(&d.join("missing.csv")).is_err());
}
