//! The shape of a mask, shared by the reader and the writers: sheet names, column headers,
//! prerequisite keys and the default fields (MISSION.md §1.1).

use crate::text::{lines, norm, words};
use serde::{Deserialize, Serialize};

/// The three sheets of a mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SheetKind {
    /// Sheet 1: what the APIs need (ids, references to where the credentials are kept).
    Prerequisites,
    /// Sheet 2: the fields always synchronised (for reference; not configurable).
    DefaultFields,
    /// Sheet 3: Planexpo product/option → inwink product.
    Products,
}

impl SheetKind {
    pub const ALL: [SheetKind; 3] = [Self::Prerequisites, Self::DefaultFields, Self::Products];

    /// The French name, the one the template uses.
    pub fn french_name(self) -> &'static str {
        match self {
            Self::Prerequisites => "Prérequis techniques",
            Self::DefaultFields => "Champs par défaut",
            Self::Products => "Produits et options",
        }
    }

    pub fn english_name(self) -> &'static str {
        match self {
            Self::Prerequisites => "Technical prerequisites",
            Self::DefaultFields => "Default fields",
            Self::Products => "Products and options",
        }
    }

    /// Recognises a sheet name, case- and accent-insensitively, trimmed. A leading number
    /// ("1. Prérequis techniques") and the article of the reference document ("Les …") are
    /// allowed.
    pub fn from_sheet_name(name: &str) -> Option<SheetKind> {
        let mut w = words(name);
        while w
            .first()
            .is_some_and(|f| f.chars().all(|c| c.is_ascii_digit()) || f == "les" || f == "the")
        {
            w.remove(0);
        }
        let n = w.join(" ");
        let aliases: &[(SheetKind, &[&str])] = &[
            (
                Self::Prerequisites,
                &[
                    "prerequis techniques",
                    "pre requis techniques",
                    "technical prerequisites",
                ],
            ),
            (
                Self::DefaultFields,
                &[
                    "champs par defaut",
                    "champs synchronises par defaut",
                    "default fields",
                    "default synchronised fields",
                    "default synchronized fields",
                ],
            ),
            (
                Self::Products,
                &["produits et options", "products and options"],
            ),
        ];
        aliases
            .iter()
            .find(|(_, names)| names.contains(&n.as_str()))
            .map(|(kind, _)| *kind)
    }
}

/// The four columns of the products sheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ProductColumn {
    PlanexpoName,
    PlanexpoId,
    InwinkName,
    InwinkId,
}

impl ProductColumn {
    pub(crate) const ALL: [ProductColumn; 4] = [
        Self::PlanexpoName,
        Self::PlanexpoId,
        Self::InwinkName,
        Self::InwinkId,
    ];

    /// Its position when the headers do not say (A–D).
    pub(crate) fn default_position(self) -> usize {
        self as usize
    }

    /// The letter `check_mask` uses for it.
    pub(crate) fn core_letter(self) -> &'static str {
        ["A", "B", "C", "D"][self as usize]
    }

    /// The template's header: French, then the English subtitle.
    pub(crate) fn header(self) -> &'static str {
        match self {
            Self::PlanexpoName => "Nom produit / option Planexpo\nPlanexpo product name",
            Self::PlanexpoId => "ID produit Planexpo\nPlanexpo product id",
            Self::InwinkName => "Produit inwink\ninwink product name",
            Self::InwinkId => "ID produit inwink\ninwink product id",
        }
    }

    /// What it is called in messages.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::PlanexpoName => "Planexpo product name",
            Self::PlanexpoId => "Planexpo product id",
            Self::InwinkName => "inwink product name",
            Self::InwinkId => "inwink product id",
        }
    }

    /// Recognises a header, French or English (`Nom produit / option Planexpo`,
    /// `ID du produit Inwink`, `planexpo_product_id`...): it names exactly one side
    /// (Planexpo or inwink), and an id or a name.
    pub(crate) fn from_header(header: &str) -> Option<ProductColumn> {
        let w = words(header);
        let has = |x: &str| w.iter().any(|t| t == x);
        let planexpo = has("planexpo");
        let inwink = has("inwink");
        let id = ["id", "ids", "identifiant", "identifier", "ref", "reference"]
            .iter()
            .any(|x| has(x));
        let name = [
            "nom", "name", "produit", "produits", "product", "products", "option", "options",
            "libelle", "label",
        ]
        .iter()
        .any(|x| has(x));
        match (planexpo, inwink, id, name) {
            (true, false, true, _) => Some(Self::PlanexpoId),
            (true, false, false, true) => Some(Self::PlanexpoName),
            (false, true, true, _) => Some(Self::InwinkId),
            (false, true, false, true) => Some(Self::InwinkName),
            _ => None,
        }
    }
}

/// How a prerequisite's value must look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueKind {
    /// An id, a slug or a URL: written as is.
    Plain,
    /// Where a secret is kept (`env:NAME`, `secret:name/key`), never the secret.
    Reference,
}

/// The keys of the prerequisites sheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrerequisiteKey {
    PlanexpoBaseUrl,
    PlanexpoEventSlug,
    PlanexpoApiKeyRef,
    InwinkEventId,
    InwinkClientId,
    InwinkClientSecretRef,
    WebhookSecretRef,
}

pub(crate) struct KeyInfo {
    pub(crate) key: PrerequisiteKey,
    pub(crate) french: &'static str,
    pub(crate) english: &'static str,
    pub(crate) technical: &'static str,
    pub(crate) env: &'static str,
    pub(crate) kind: ValueKind,
    /// The template's example value.
    pub(crate) example: &'static str,
    /// The value a draft starts with (references have a sensible default; ids are blank).
    pub(crate) draft: &'static str,
    pub(crate) help: &'static str,
}

pub(crate) const KEYS: [KeyInfo; 7] = [
    KeyInfo {
        key: PrerequisiteKey::PlanexpoBaseUrl,
        french: "URL de base Planexpo",
        english: "Planexpo base URL",
        technical: "planexpo_base_url",
        env: "PXSYNC_PLANEXPO_BASE_URL",
        kind: ValueKind::Plain,
        example: "https://organisateur.planexpo.fr",
        draft: "",
        help: "Adresse de l'API Planexpo de l'organisateur.\nThe organiser's Planexpo API address.",
    },
    KeyInfo {
        key: PrerequisiteKey::PlanexpoEventSlug,
        french: "Slug de l'événement Planexpo",
        english: "Planexpo event slug",
        technical: "planexpo_event",
        env: "PXSYNC_PLANEXPO_EVENT",
        kind: ValueKind::Plain,
        example: "mon-salon-2026",
        draft: "",
        help: "Identifiant court de l'événement sur Planexpo.\nThe event's short id on Planexpo.",
    },
    KeyInfo {
        key: PrerequisiteKey::PlanexpoApiKeyRef,
        french: "Référence de la clé API Planexpo",
        english: "Planexpo API key reference",
        technical: "planexpo_api_key_ref",
        env: "PXSYNC_PLANEXPO_API_KEY",
        kind: ValueKind::Reference,
        example: "env:PXSYNC_PLANEXPO_API_KEY",
        draft: "env:PXSYNC_PLANEXPO_API_KEY",
        help: "Où la clé est rangée, jamais la clé : env:NOM ou secret:nom/clé.\nWhere the key is kept, never the key: env:NAME or secret:name/key.",
    },
    KeyInfo {
        key: PrerequisiteKey::InwinkEventId,
        french: "ID de l'événement inwink",
        english: "inwink event id",
        technical: "inwink_event_id",
        env: "PXSYNC_INWINK_EVENT_ID",
        kind: ValueKind::Plain,
        example: "id-evenement-inwink",
        draft: "",
        help: "L'identifiant de l'événement dans les adresses de l'API inwink.\nThe event id in inwink's API addresses.",
    },
    KeyInfo {
        key: PrerequisiteKey::InwinkClientId,
        french: "ID client inwink",
        english: "inwink client id",
        technical: "inwink_client_id",
        env: "PXSYNC_INWINK_CLIENT_ID",
        kind: ValueKind::Plain,
        example: "pxsync-mon-salon",
        draft: "",
        help: "L'identifiant du client OAuth2 fourni par inwink.\nThe OAuth2 client id given by inwink.",
    },
    KeyInfo {
        key: PrerequisiteKey::InwinkClientSecretRef,
        french: "Référence du secret client inwink",
        english: "inwink client secret reference",
        technical: "inwink_client_secret_ref",
        env: "PXSYNC_INWINK_CLIENT_SECRET",
        kind: ValueKind::Reference,
        example: "secret:pxsync-inwink/client-secret",
        draft: "env:PXSYNC_INWINK_CLIENT_SECRET",
        help: "Où le secret est rangé, jamais le secret : env:NOM ou secret:nom/clé.\nWhere the secret is kept, never the secret: env:NAME or secret:name/key.",
    },
    KeyInfo {
        key: PrerequisiteKey::WebhookSecretRef,
        french: "Référence du secret webhook",
        english: "webhook secret reference",
        technical: "webhook_secret_ref",
        env: "PXSYNC_WEBHOOK_SECRET",
        kind: ValueKind::Reference,
        example: "env:PXSYNC_WEBHOOK_SECRET",
        draft: "env:PXSYNC_WEBHOOK_SECRET",
        help: "Où le secret des webhooks Planexpo est rangé, jamais le secret.\nWhere the Planexpo webhook secret is kept, never the secret.",
    },
];

impl PrerequisiteKey {
    pub(crate) fn info(self) -> &'static KeyInfo {
        KEYS.iter().find(|k| k.key == self).unwrap_or(&KEYS[0])
    }

    pub fn french_label(self) -> &'static str {
        self.info().french
    }

    pub fn english_label(self) -> &'static str {
        self.info().english
    }

    /// The environment variable pxsync reads this setting from.
    pub fn env_var(self) -> &'static str {
        self.info().env
    }

    /// Whether the value must be a reference to where a secret is kept.
    pub fn is_reference(self) -> bool {
        self.info().kind == ValueKind::Reference
    }

    /// Recognises a key cell, French or English, one line of it at least ("Référence de la clé
    /// API Planexpo\nPlanexpo API key reference"), or its technical name or environment
    /// variable.
    pub fn from_label(label: &str) -> Option<PrerequisiteKey> {
        let candidates: Vec<String> = std::iter::once(norm(label))
            .chain(lines(label).map(norm))
            .chain(label.split(" / ").map(norm))
            .collect();
        KEYS.iter()
            .find(|k| {
                [k.french, k.english, k.technical, k.env]
                    .iter()
                    .any(|alias| candidates.contains(&norm(alias)))
            })
            .map(|k| k.key)
    }

    /// The template's cell text: French, then the English subtitle.
    pub(crate) fn cell(self) -> String {
        format!("{}\n{}", self.info().french, self.info().english)
    }
}

/// Which inwink record a default field lands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Object {
    Partner,
    Participant,
}

impl Object {
    pub(crate) fn cell(self) -> &'static str {
        match self {
            Self::Partner => "Partenaire\nPartner",
            Self::Participant => "Participant\nParticipant",
        }
    }
}

/// One default field (MISSION.md §1.1): always synchronised, not configurable.
pub(crate) struct DefaultField {
    pub(crate) object: Object,
    pub(crate) planexpo_fr: &'static str,
    pub(crate) planexpo_en: &'static str,
    /// The inwink field, as contracts.md spells it.
    pub(crate) inwink: &'static str,
    pub(crate) note: &'static str,
}

const fn field(
    object: Object,
    planexpo_fr: &'static str,
    planexpo_en: &'static str,
    inwink: &'static str,
    note: &'static str,
) -> DefaultField {
    DefaultField {
        object,
        planexpo_fr,
        planexpo_en,
        inwink,
        note,
    }
}

pub(crate) const DEFAULT_FIELDS: [DefaultField; 20] = [
    field(
        Object::Partner,
        "ID public du dossier",
        "public order id",
        "planexpo_public_order_id",
        "champ personnalisé\ncustom field",
    ),
    field(
        Object::Partner,
        "ID privé du dossier",
        "private order id",
        "planexpo_order_id",
        "champ personnalisé, la clé stable\ncustom field, the stable key",
    ),
    field(
        Object::Partner,
        "Relation parent/enfant – exposant/co-exposant",
        "parent/child relation – exhibitor/co-exhibitor",
        "affiliatedToId",
        "le partenaire du dossier parent\nthe parent order's partner",
    ),
    field(
        Object::Partner,
        "Nom de la société",
        "company name",
        "name",
        "",
    ),
    field(
        Object::Partner,
        "Adresse de la société (coordonnées postales)",
        "company postal address",
        "address",
        "",
    ),
    field(
        Object::Partner,
        "Statut « Validé »",
        "status \"Validé\"",
        "status",
        "publié (Published)\npublished",
    ),
    field(
        Object::Partner,
        "Numéro de stand",
        "stand number",
        "emplacement",
        "",
    ),
    field(
        Object::Partner,
        "Espace",
        "space",
        "space",
        "optionnel\noptional",
    ),
    field(
        Object::Partner,
        "Allée",
        "aisle",
        "aisle",
        "optionnel\noptional",
    ),
    field(Object::Partner, "Site web", "website", "website", ""),
    field(
        Object::Participant,
        "Contact de réservation du dossier",
        "the order's booking contact",
        "team member (Admin)",
        "membre de l'équipe du partenaire\nteam member of the partner",
    ),
    field(
        Object::Participant,
        "E-mail",
        "e-mail",
        "email",
        "identifie la personne (sans tenir compte de la casse)\nidentifies the person (ignoring case)",
    ),
    field(Object::Participant, "Civilité", "civility", "civility", ""),
    field(Object::Participant, "Nom", "last name", "lastname", ""),
    field(Object::Participant, "Prénom", "first name", "firstname", ""),
    field(Object::Participant, "Société", "company", "company", ""),
    field(
        Object::Participant,
        "Poste / fonction",
        "job title",
        "jobTitle",
        "",
    ),
    field(Object::Participant, "Tél 1", "phone 1", "phone1", ""),
    field(Object::Participant, "Tél 2", "phone 2", "phone2", ""),
    field(
        Object::Participant,
        "Langue préférée",
        "preferred language",
        "language",
        "",
    ),
];

impl DefaultField {
    /// The template's Planexpo cell: French, then English.
    pub(crate) fn planexpo_cell(&self) -> String {
        format!("{}\n{}", self.planexpo_fr, self.planexpo_en)
    }

    /// Whether a row (its Planexpo and inwink cells) lists this field. The inwink field name
    /// decides when present; otherwise the Planexpo wording, French or English.
    pub(crate) fn matches(&self, planexpo: &str, inwink: &str) -> bool {
        let squash = |s: &str| words(s).concat();
        if !inwink.trim().is_empty() {
            return squash(inwink) == squash(self.inwink);
        }
        let mine = [squash(self.planexpo_fr), squash(self.planexpo_en)];
        std::iter::once(planexpo)
            .chain(lines(planexpo))
            .any(|l| mine.contains(&squash(l)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheet_names() {
        use SheetKind::*;
        for (name, kind) in [
            ("Prérequis techniques", Some(Prerequisites)),
            ("  PREREQUIS TECHNIQUES ", Some(Prerequisites)),
            ("Pré-requis techniques", Some(Prerequisites)),
            ("Technical prerequisites", Some(Prerequisites)),
            ("1. Prérequis techniques", Some(Prerequisites)),
            ("Champs par défaut", Some(DefaultFields)),
            ("Les champs synchronisés par défaut", Some(DefaultFields)),
            ("default fields", Some(DefaultFields)),
            ("Produits et options", Some(Products)),
            ("Products and Options", Some(Products)),
            ("3 - produits et options", Some(Products)),
            ("Feuil1", None),
            ("Produits", None),
        ] {
            assert_eq!(SheetKind::from_sheet_name(name), kind, "{name}");
        }
    }

    #[test]
    fn product_headers() {
        use ProductColumn::*;
        for (h, c) in [
            ("Nom produit / option Planexpo", Some(PlanexpoName)),
            ("Nom du produit ou de l'option Planexpo", Some(PlanexpoName)),
            ("Planexpo product name", Some(PlanexpoName)),
            ("planexpo_product_name", Some(PlanexpoName)),
            ("ID produit Planexpo", Some(PlanexpoId)),
            ("Planexpo product id", Some(PlanexpoId)),
            ("planexpo_product_id", Some(PlanexpoId)),
            ("Produit inwink", Some(InwinkName)),
            ("Produit Inwink à synchroniser", Some(InwinkName)),
            ("inwink product name", Some(InwinkName)),
            ("ID produit inwink", Some(InwinkId)),
            ("ID du produit Inwink", Some(InwinkId)),
            ("inwink_product_id", Some(InwinkId)),
            (ProductColumn::PlanexpoName.header(), Some(PlanexpoName)),
            (ProductColumn::InwinkId.header(), Some(InwinkId)),
            ("Remarque\nNote", None),
            ("Planexpo → inwink", None),
        ] {
            assert_eq!(ProductColumn::from_header(h), c, "{h}");
        }
    }

    #[test]
    fn prerequisite_keys() {
        for k in &KEYS {
            assert_eq!(PrerequisiteKey::from_label(k.french), Some(k.key));
            assert_eq!(PrerequisiteKey::from_label(k.english), Some(k.key));
            assert_eq!(PrerequisiteKey::from_label(&k.key.cell()), Some(k.key));
            assert_eq!(
                PrerequisiteKey::from_label(&crate::text::one_line(&k.key.cell())),
                Some(k.key)
            );
            assert_eq!(PrerequisiteKey::from_label(k.env), Some(k.key));
        }
        assert_eq!(
            PrerequisiteKey::from_label("reference de la cle api PLANEXPO"),
            Some(PrerequisiteKey::PlanexpoApiKeyRef)
        );
        assert_eq!(PrerequisiteKey::from_label("Mot de passe"), None);
    }

    #[test]
    fn default_fields_are_unique() {
        for (i, a) in DEFAULT_FIELDS.iter().enumerate() {
            for b in &DEFAULT_FIELDS[i + 1..] {
                assert!(!a.matches(&b.planexpo_cell(), b.inwink), "{}", b.inwink);
                assert!(!a.matches(&b.planexpo_cell(), ""), "{}", b.planexpo_fr);
            }
            assert!(a.matches(&a.planexpo_cell(), a.inwink));
            assert!(a.matches(&a.planexpo_cell(), ""));
            assert!(a.matches("", a.inwink));
        }
    }
}
