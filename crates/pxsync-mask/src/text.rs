//! Comparison-only text folding: sheet names, headers and keys are matched case- and
//! accent-insensitively. Values themselves are never folded.

/// Lowercases and strips French (and common Latin) accents; `×` becomes `x`.
pub(crate) fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => out.push('a'),
            'ç' => out.push('c'),
            'è' | 'é' | 'ê' | 'ë' => out.push('e'),
            'ì' | 'í' | 'î' | 'ï' => out.push('i'),
            'ñ' => out.push('n'),
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' => out.push('o'),
            'ù' | 'ú' | 'û' | 'ü' => out.push('u'),
            'ý' | 'ÿ' => out.push('y'),
            'œ' => out.push_str("oe"),
            'æ' => out.push_str("ae"),
            '×' => out.push('x'),
            // Combining accents (decomposed text): dropped.
            '\u{0300}'..='\u{036f}' => {}
            other => out.push(other),
        }
    }
    out
}

/// The folded alphanumeric words of `s`.
pub(crate) fn words(s: &str) -> Vec<String> {
    fold(s)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The folded words of `s` joined by single spaces: the comparison form.
pub(crate) fn norm(s: &str) -> String {
    words(s).join(" ")
}

/// The lines of a cell (a bilingual header or key is written "Français\nEnglish").
pub(crate) fn lines(s: &str) -> impl Iterator<Item = &str> {
    s.lines().map(str::trim).filter(|l| !l.is_empty())
}

/// A cell's text on one line: its lines joined by " / ".
pub(crate) fn one_line(s: &str) -> String {
    lines(s).collect::<Vec<_>>().join(" / ")
}

/// The spreadsheet letter of a 0-based column (0 → `A`, 26 → `AA`).
pub(crate) fn column_letter(mut col: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + (col % 26) as u8);
        if col < 26 {
            break;
        }
        col = col / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding() {
        assert_eq!(norm("  Prérequis   TECHNIQUES "), "prerequis techniques");
        assert_eq!(norm("Champs par défaut"), "champs par defaut");
        assert_eq!(norm("Pré-requis techniques"), "pre requis techniques");
        assert_eq!(norm("Produits e\u{0301}t options"), "produits et options");
        assert_eq!(words("planexpo_product_id"), ["planexpo", "product", "id"]);
        assert_eq!(
            one_line("ID produit Planexpo\nPlanexpo product id\n"),
            "ID produit Planexpo / Planexpo product id"
        );
    }

    #[test]
    fn letters() {
        assert_eq!(column_letter(0), "A");
        assert_eq!(column_letter(3), "D");
        assert_eq!(column_letter(25), "Z");
        assert_eq!(column_letter(26), "AA");
        assert_eq!(column_letter(27), "AB");
        assert_eq!(column_letter(701), "ZZ");
        assert_eq!(column_letter(702), "AAA");
    }
}
