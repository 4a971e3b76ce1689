//! `POST /_sim/generate`: a realistic synthetic event, deterministic for a seed.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Value, json};

use super::wire::{Address, BookingContact, Catalog, Company, Line, Order, Product, Stand};

/// The fixed demo catalogue (ids and names are relied upon by the demo mask).
pub(crate) fn demo_catalog_typed() -> Catalog {
    let p = |id: &str, name: &str, kind: &str, paid: bool| Product {
        id: id.to_owned(),
        name: name.to_owned(),
        kind: kind.to_owned(),
        paid,
    };
    Catalog {
        products: vec![
            p("prd_stand_9m2", "Stand nu 9 m²", "product", true),
            p("prd_stand_18m2", "Stand nu 18 m²", "product", true),
            p("prd_fees", "Frais de dossier", "product", true),
            p("prd_cleaning", "Nettoyage stand", "option", true),
            p(
                "prd_badge_pack10",
                "Pack 10 badges exposant",
                "product",
                true,
            ),
            p("prd_banner_2x1", "Bannière 2x1 m", "product", true),
            p("prd_logo_catalog", "Logo au catalogue", "product", true),
            p("prd_pass_vip", "Pass VIP", "product", true),
            p("opt_wifi", "Wi-Fi stand", "option", false),
            p("opt_power_3kw", "Boîtier électrique 3 kW", "option", true),
            p("opt_furniture", "Pack mobilier", "option", true),
            p(
                "opt_lead_scan",
                "Application scan de badges",
                "option",
                true,
            ),
        ],
    }
}

const SURNAMES: &[&str] = &[
    "Dupré",
    "Lefèvre",
    "Bérard",
    "Gauthier",
    "Moreau",
    "Rousseau",
    "Fournier",
    "Girard",
    "Bonnet",
    "Dupont",
    "Lambert",
    "Fontaine",
    "Chevalier",
    "Robin",
    "Mercier",
    "Blanc",
    "Guérin",
    "Boyer",
    "Garnier",
    "Faure",
    "André",
    "Lemaître",
    "Hébert",
    "Perrin",
    "Morel",
    "Mathieu",
    "Clément",
    "Lefebvre",
    "Roux",
    "Durand",
    "Petit",
    "Martin",
    "Bernard",
    "Thomas",
    "Richard",
    "Barbier",
    "Brun",
    "Chénier",
    "Noël",
    "Benoît",
    "Gaillard",
    "Leroy",
    "Masson",
    "Aubert",
    "Carré",
    "Rémy",
    "Vidal",
    "Caron",
    "Périer",
    "Lévêque",
];

const FIRST_NAMES_F: &[&str] = &[
    "Claire",
    "Élodie",
    "Hélène",
    "Chloé",
    "Camille",
    "Léa",
    "Manon",
    "Inès",
    "Margaux",
    "Sophie",
    "Amélie",
    "Émilie",
    "Céline",
    "Nathalie",
    "Anaïs",
    "Noémie",
    "Agnès",
    "Béatrice",
    "Zoé",
    "Maëlle",
];

const FIRST_NAMES_M: &[&str] = &[
    "Jérôme",
    "François",
    "Benoît",
    "Étienne",
    "Julien",
    "Thomas",
    "Nicolas",
    "Hugo",
    "Théo",
    "Lucas",
    "Mathéo",
    "Cédric",
    "Loïc",
    "Raphaël",
    "Sébastien",
    "Grégoire",
    "Frédéric",
    "Antoine",
    "Rémi",
    "Jean-Marc",
];

const REGIONS: &[&str] = &[
    "Ouest",
    "Est",
    "Atlantique",
    "Méditerranée",
    "Île-de-France",
    "Rhône-Alpes",
    "Normandie",
    "Bretagne",
    "Provence",
    "Occitanie",
    "Grand Est",
    "Val de Loire",
];

const CITIES: &[(&str, &str)] = &[
    ("75002", "Paris"),
    ("75011", "Paris"),
    ("92100", "Boulogne-Billancourt"),
    ("69003", "Lyon"),
    ("13008", "Marseille"),
    ("31000", "Toulouse"),
    ("44000", "Nantes"),
    ("33000", "Bordeaux"),
    ("59000", "Lille"),
    ("67000", "Strasbourg"),
    ("35000", "Rennes"),
    ("34000", "Montpellier"),
    ("06000", "Nice"),
    ("21000", "Dijon"),
    ("29200", "Brest"),
    ("63000", "Clermont-Ferrand"),
    ("76000", "Rouen"),
    ("38000", "Grenoble"),
    ("49000", "Angers"),
    ("97400", "Saint-Denis"),
];

const STREETS: &[&str] = &[
    "rue de la Paix",
    "avenue Jean-Jaurès",
    "boulevard Haussmann",
    "rue Sainte-Catherine",
    "quai de la Fosse",
    "place Bellecour",
    "rue de la République",
    "allée des Érables",
    "chemin des Prés",
    "rue du Général-Leclerc",
    "avenue de l'Europe",
    "rue Émile-Zola",
    "boulevard de la Libération",
    "rue des Lilas",
    "impasse des Tilleuls",
    "cours Mirabeau",
];

const STREET2: &[&str] = &[
    "Bâtiment B",
    "ZA des Châtaigniers",
    "3e étage",
    "BP 214",
    "Parc d'activités du Moulin",
];

/// (masculine, feminine)
const JOB_TITLES: &[(&str, &str)] = &[
    ("Directeur marketing", "Directrice marketing"),
    ("Responsable commercial", "Responsable commerciale"),
    (
        "Chef de projet événementiel",
        "Cheffe de projet événementiel",
    ),
    ("Directeur général", "Directrice générale"),
    ("Chargé de communication", "Chargée de communication"),
    ("Responsable salons", "Responsable salons"),
    ("Assistant de direction", "Assistante de direction"),
    ("Directeur des ventes", "Directrice des ventes"),
];

/// The catalogue products an order may carry besides its stand.
const EXTRA_PRODUCTS: &[&str] = &[
    "prd_fees",
    "prd_cleaning",
    "prd_badge_pack10",
    "prd_banner_2x1",
    "prd_logo_catalog",
    "prd_pass_vip",
    "opt_wifi",
    "opt_power_3kw",
    "opt_furniture",
    "opt_lead_scan",
];

pub(crate) const STATUSES: &[&str] = &["validated", "submitted", "draft", "refused", "cancelled"];

fn pick<'a, T>(rng: &mut fastrand::Rng, items: &'a [T]) -> &'a T {
    // The lists above are never empty.
    &items[rng.usize(..items.len())]
}

/// Lowercase ASCII: accents folded, anything else but letters and digits becomes `sep`.
pub(crate) fn slug(s: &str, sep: char) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let folded: &str = match c {
            'à' | 'â' | 'ä' | 'À' | 'Â' | 'Ä' => "a",
            'ç' | 'Ç' => "c",
            'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' | 'Ë' => "e",
            'î' | 'ï' | 'Î' | 'Ï' => "i",
            'ô' | 'ö' | 'Ô' | 'Ö' => "o",
            'ù' | 'û' | 'ü' | 'Ù' | 'Û' | 'Ü' => "u",
            'ÿ' => "y",
            'œ' | 'Œ' => "oe",
            'æ' | 'Æ' => "ae",
            _ => "",
        };
        if !folded.is_empty() {
            out.push_str(folded);
        } else if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with(sep) {
            out.push(sep);
        }
    }
    while out.ends_with(sep) {
        out.pop();
    }
    out
}

fn company_name(rng: &mut fastrand::Rng) -> String {
    let surname = *pick(rng, SURNAMES);
    let surname2 = *pick(rng, SURNAMES);
    let region = *pick(rng, REGIONS);
    let city = pick(rng, CITIES).1;
    match rng.u32(0..16) {
        0 => format!("Laboratoires {surname} & Fils"),
        1 => format!("Laboratoires {surname}"),
        2 => format!("{surname} Médical"),
        3 => format!("Médical Santé {region}"),
        4 => format!("Clinique {surname}"),
        5 => format!("Pharmacie {surname}-{surname2}"),
        6 => format!("BioSanté {region}"),
        7 => format!("Orthopédie {surname}"),
        8 => format!("{surname} & Associés"),
        9 => format!("Institut {surname}"),
        10 => format!("Groupe Hospitalier {city}"),
        11 => format!("Centre d'Imagerie {city}"),
        12 => format!("Éditions Santé {region}"),
        13 => format!("Dentalia {region}"),
        14 => format!("Télémédecine {region}"),
        _ => format!("Ergonomie & Bien-Être {surname}"),
    }
}

fn phone(rng: &mut fastrand::Rng, mobile: bool) -> String {
    let first = if mobile { rng.u32(6..8) } else { rng.u32(1..6) };
    format!(
        "+33 {first} {:02} {:02} {:02} {:02}",
        rng.u32(0..100),
        rng.u32(0..100),
        rng.u32(0..100),
        rng.u32(0..100)
    )
}

fn order_id(rng: &mut fastrand::Rng, taken: &HashSet<String>) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    loop {
        let suffix: String = (0..5)
            .map(|_| char::from(ALPHABET[rng.usize(..ALPHABET.len())]))
            .collect();
        let id = format!("ord_{suffix}");
        if !taken.contains(&id) {
            return id;
        }
    }
}

fn status(rng: &mut fastrand::Rng) -> &'static str {
    match rng.u32(0..100) {
        0..70 => "validated",
        70..80 => "submitted",
        80..88 => "draft",
        88..95 => "refused",
        _ => "cancelled",
    }
}

fn quantity_for(rng: &mut fastrand::Rng, product: &str) -> u64 {
    match product {
        "prd_badge_pack10" => rng.u64(1..4),
        "prd_banner_2x1" => rng.u64(1..3),
        "prd_pass_vip" => rng.u64(1..5),
        "opt_power_3kw" => rng.u64(1..3),
        _ => 1,
    }
}

/// What `generate` answers besides the orders themselves.
pub(crate) struct Summary {
    pub(crate) by_status: BTreeMap<&'static str, u64>,
    pub(crate) co_exhibitors: u64,
}

impl Summary {
    pub(crate) fn to_json(&self, orders: usize) -> Value {
        json!({"orders": orders, "by_status": self.by_status, "co_exhibitors": self.co_exhibitors})
    }
}

/// Makes `n` orders. `taken` are the ids already in the event (never reused); public ids
/// follow `first_number`. Everything but `updated_at` depends only on the arguments.
pub(crate) fn generate(
    seed: u64,
    n: usize,
    event: &str,
    updated_at: &str,
    taken: &HashSet<String>,
    first_number: usize,
) -> (Vec<Order>, Summary) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let catalog = demo_catalog_typed();
    let name_of = |id: &str| {
        catalog
            .products
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| id.to_owned())
    };
    let mut taken = taken.clone();
    let mut orders: Vec<Order> = Vec::with_capacity(n);
    // Indexes (in `orders`) of validated top-level orders: the possible parents.
    let mut parents: Vec<usize> = Vec::new();
    let mut summary = Summary {
        by_status: STATUSES.iter().map(|s| (*s, 0)).collect(),
        co_exhibitors: 0,
    };
    for i in 0..n {
        let id = order_id(&mut rng, &taken);
        taken.insert(id.clone());
        let status = status(&mut rng);
        let name = company_name(&mut rng);
        let domain = format!("{}.example", slug(&name, '-'));
        let (postal_code, city) = *pick(&mut rng, CITIES);
        let street = format!("{} {}", rng.u32(1..181), pick(&mut rng, STREETS));
        let street2 = rng
            .u32(0..4)
            .eq(&0)
            .then(|| pick(&mut rng, STREET2).to_string());
        let website = (rng.u32(0..10) != 0).then(|| format!("https://www.{domain}"));

        let parent = if !parents.is_empty() && rng.u32(0..100) < 15 {
            let idx = *pick(&mut rng, &parents);
            orders
                .get(idx)
                .map(|p: &Order| (p.id.clone(), p.stand.clone()))
        } else {
            None
        };

        let no_stand_pct = match status {
            "validated" => 5,
            "submitted" => 30,
            "draft" => 50,
            _ => 20,
        };
        let own_stand = (rng.u32(0..100) >= no_stand_pct).then(|| Stand {
            number: format!("{}{}", char::from(b'A' + rng.u8(0..8)), rng.u32(1..61)),
            space: (rng.u32(0..10) < 7).then(|| format!("Hall {}", rng.u32(1..5))),
            aisle: (rng.u32(0..10) < 6)
                .then(|| format!("Allée {}", char::from(b'A' + rng.u8(0..6)))),
        });
        let stand = match &parent {
            // Co-exhibitors often share their main exhibitor's stand.
            Some((_, Some(parent_stand))) if rng.u32(0..10) < 6 => Some(parent_stand.clone()),
            _ => own_stand,
        };

        let shared_contact = if !orders.is_empty() && rng.u32(0..100) < 5 {
            let other = pick(&mut rng, &orders);
            Some(other.booking_contact.clone())
        } else {
            None
        };
        let booking_contact = match shared_contact {
            Some(mut contact) => {
                // The same person books for this company too.
                contact.company = Some(name.clone());
                contact
            }
            None => {
                let female = rng.bool();
                let first = if female {
                    *pick(&mut rng, FIRST_NAMES_F)
                } else {
                    *pick(&mut rng, FIRST_NAMES_M)
                };
                let last = *pick(&mut rng, SURNAMES);
                let titles = pick(&mut rng, JOB_TITLES);
                let job_title = if female { titles.1 } else { titles.0 };
                let mobile = rng.u32(0..3) == 0;
                let phone_1 = phone(&mut rng, mobile);
                let phone_2 = (rng.u32(0..10) < 4).then(|| phone(&mut rng, true));
                BookingContact {
                    civility: Some(if female { "Mme" } else { "M." }.to_owned()),
                    last_name: Some(last.to_owned()),
                    first_name: Some(first.to_owned()),
                    email: Some(format!("{}.{}@{domain}", slug(first, '-'), slug(last, '-'))),
                    company: Some(name.clone()),
                    job_title: Some(job_title.to_owned()),
                    phone_1: Some(phone_1),
                    phone_2,
                    preferred_language: Some(
                        if rng.u32(0..100) < 80 { "fr" } else { "en" }.to_owned(),
                    ),
                }
            }
        };

        let stand_product = if rng.u32(0..10) < 6 {
            "prd_stand_9m2"
        } else {
            "prd_stand_18m2"
        };
        let mut lines = vec![Line {
            product_id: stand_product.to_owned(),
            product_name: name_of(stand_product),
            quantity: 1,
        }];
        for _ in 0..rng.usize(0..5) {
            let product = *pick(&mut rng, EXTRA_PRODUCTS);
            lines.push(Line {
                product_id: product.to_owned(),
                product_name: name_of(product),
                quantity: quantity_for(&mut rng, product),
            });
        }
        if lines.len() > 1 && rng.u32(0..10) == 0 {
            // The same product ordered twice, on two lines.
            if let Some(line) = lines.last().cloned() {
                lines.push(Line {
                    quantity: quantity_for(&mut rng, &line.product_id),
                    ..line
                });
            }
        }

        let parent_order_id = parent.map(|(pid, _)| pid);
        if parent_order_id.is_some() {
            summary.co_exhibitors += 1;
        } else if status == "validated" {
            parents.push(orders.len());
        }
        if let Some(count) = summary.by_status.get_mut(status) {
            *count += 1;
        }
        orders.push(Order {
            id,
            public_id: format!("SX26-{:04}", first_number + i),
            event: event.to_owned(),
            revision: rng.u64(1..6),
            updated_at: updated_at.to_owned(),
            status: status.to_owned(),
            parent_order_id,
            company: Company {
                name,
                address: Address {
                    street: Some(street),
                    street2,
                    postal_code: Some(postal_code.to_owned()),
                    city: Some(city.to_owned()),
                    country: Some("FR".to_owned()),
                },
                website,
            },
            stand,
            booking_contact,
            lines,
        });
    }
    (orders, summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_for_a_seed_and_realistic() {
        let none = HashSet::new();
        let (a, sa) = generate(7, 400, "ev", "2026-01-01T00:00:00Z", &none, 1);
        let (b, _) = generate(7, 400, "ev", "2026-01-01T00:00:00Z", &none, 1);
        let (c, _) = generate(8, 400, "ev", "2026-01-01T00:00:00Z", &none, 1);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a[0].public_id, "SX26-0001");
        let ids: HashSet<_> = a.iter().map(|o| o.id.clone()).collect();
        assert_eq!(ids.len(), 400);
        for o in &a {
            assert!(o.id.starts_with("ord_") && o.id.len() == 9);
            assert!(
                o.id[4..]
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            );
            let email = o.booking_contact.email.clone().unwrap_or_default();
            assert_eq!(email, email.to_lowercase());
            assert!(email.is_ascii() && email.contains('@'));
            assert!(o.lines[0].product_id.starts_with("prd_stand_"));
            if let Some(parent) = &o.parent_order_id {
                let p = a
                    .iter()
                    .position(|x| &x.id == parent)
                    .expect("parent exists");
                let me = a.iter().position(|x| x.id == o.id).expect("self");
                assert!(p < me);
                assert_eq!(a[p].status, "validated");
            }
        }
        let validated = sa.by_status["validated"];
        assert!((240..=320).contains(&validated), "validated {validated}");
        assert!(sa.co_exhibitors >= 20, "co-exhibitors {}", sa.co_exhibitors);
        assert!(a.iter().any(|o| o.stand.is_none()));
        assert!(a.iter().any(|o| !o.company.name.is_ascii()));
        let mut emails = HashSet::new();
        let shared = a
            .iter()
            .filter(|o| !emails.insert(o.booking_contact.email.clone()))
            .count();
        assert!(shared > 0);
    }

    #[test]
    fn slugs_fold_accents() {
        assert_eq!(
            slug("Laboratoires Dupré & Fils", '-'),
            "laboratoires-dupre-fils"
        );
        assert_eq!(slug("Hélène", '-'), "helene");
        assert_eq!(slug("Centre d'Imagerie Île", '-'), "centre-d-imagerie-ile");
    }
}
