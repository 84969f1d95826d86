//! Identifier checks, with no I/O: the unified social credit code (GB 32100-2015) with
//! its embedded organization code (GB 11714-1997), the 15-digit business registration
//! number (GS 15-2006, ISO 7064 MOD 11,10) and the resident identity number
//! (GB 11643-1999, ISO 7064 MOD 11-2). Facts and sources: `shared/standards.md` §1–2.
//!
//! Every failure has its own reason code, so a clerk can tell a typo in the check
//! character from a code of the wrong length.

/// The 31 characters of the credit-code alphabet (no I, O, S, V, Z), in value order.
pub const USCC_CHARSET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
/// Weights of positions 1..17 for the credit code's check character: 3^(i-1) mod 31.
const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];
/// Weights of the organization code's 8 body characters (GB 11714).
const ORG_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
/// Weights of the identity number's 17 body digits: 2^(18-i) mod 11.
const RIC_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// The placeholder a 个体工商户 without a credit code carries in 双公示 data.
pub const USCC_PLACEHOLDER: &str = "00000000000000000X";

/// Why an identifier is not valid. `code()` is the stable reason code used in the
/// quarantine, in reports and by `xinyong id check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdError {
    /// Nothing left after normalising.
    Empty,
    /// Wrong number of characters.
    Length,
    /// A character outside the alphabet (for the credit code: I, O, S, V, Z, or punctuation).
    Charset,
    /// Positions 3–8 of a credit code are not six digits.
    Division,
    /// The credit code's check character (position 18) is wrong.
    Check,
    /// The embedded organization code's own check character (position 17) is wrong.
    OrgCheck,
    /// The `00000000000000000X` placeholder: no credit code at all.
    Placeholder,
    /// An identity number whose birth date is not a real date.
    BirthDate,
}

impl IdError {
    /// Every failure, in the order of [`IdError::code`]'s table.
    pub const ALL: [IdError; 8] = [
        IdError::Empty,
        IdError::Length,
        IdError::Charset,
        IdError::Division,
        IdError::Check,
        IdError::OrgCheck,
        IdError::Placeholder,
        IdError::BirthDate,
    ];

    /// The reason code, stable across versions.
    pub fn code(self) -> &'static str {
        match self {
            IdError::Empty => "empty",
            IdError::Length => "length",
            IdError::Charset => "charset",
            IdError::Division => "division",
            IdError::Check => "check",
            IdError::OrgCheck => "org_check",
            IdError::Placeholder => "placeholder",
            IdError::BirthDate => "birth_date",
        }
    }
}

/// Normalises a code as clerks type it: trims, maps full-width forms (U+FF01–U+FF5E)
/// to ASCII, drops every space (including U+3000 and U+00A0) and upper-cases.
/// Normalising twice gives the same result as normalising once.
pub fn normalise_code(raw: &str) -> String {
    raw.chars()
        .map(halfwidth_char)
        .filter(|c| !c.is_whitespace() && *c != '\u{feff}')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Maps one full-width character to its ASCII form (U+3000 becomes a space).
pub fn halfwidth_char(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// Each byte's value in the credit-code alphabet (`NOT_IN_CHARSET` outside it): a code
/// is checked twice a row on a penalties export, and a search of the alphabet a
/// character cost a tenth of the validation.
const USCC_VALUES: [u8; 256] = {
    let mut table = [NOT_IN_CHARSET; 256];
    let charset = USCC_CHARSET.as_bytes();
    let mut i = 0;
    while i < charset.len() {
        table[charset[i] as usize] = i as u8;
        i += 1;
    }
    table
};
const NOT_IN_CHARSET: u8 = u8::MAX;

fn uscc_value(c: u8) -> Option<u32> {
    let v = USCC_VALUES[c as usize];
    (v != NOT_IN_CHARSET).then_some(v as u32)
}

/// The check character (position 18) for the first 17 characters of a credit code.
pub fn uscc_check_char(body: &[u8]) -> Option<char> {
    if body.len() != 17 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in body.iter().zip(USCC_WEIGHTS) {
        sum += uscc_value(*c)? * w;
    }
    let v = (31 - sum % 31) % 31;
    USCC_CHARSET.as_bytes().get(v as usize).map(|b| *b as char)
}

/// GB 11714 letter values: the full Latin alphabet, A=10 … Z=35 (unlike the credit code's table).
fn org_value(c: u8) -> Option<u32> {
    match c {
        b'0'..=b'9' => Some((c - b'0') as u32),
        b'A'..=b'Z' => Some((c - b'A') as u32 + 10),
        _ => None,
    }
}

/// The check character of an 8-character organization-code body.
pub fn org_check_char(body: &[u8]) -> Option<char> {
    if body.len() != 8 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in body.iter().zip(ORG_WEIGHTS) {
        sum += org_value(*c)? * w;
    }
    Some(match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        v => char::from_digit(v, 10).expect("a digit"),
    })
}

/// Checks an already-normalised credit code: length, alphabet, division digits, the
/// check character, then the embedded organization code's check character.
pub fn check_uscc(code: &str) -> Result<(), IdError> {
    let b = code.as_bytes();
    if b.is_empty() {
        return Err(IdError::Empty);
    }
    if code == USCC_PLACEHOLDER {
        return Err(IdError::Placeholder);
    }
    if code.chars().count() != 18 {
        return Err(IdError::Length);
    }
    if b.iter().any(|c| uscc_value(*c).is_none()) {
        return Err(IdError::Charset);
    }
    if !b[2..8].iter().all(u8::is_ascii_digit) {
        return Err(IdError::Division);
    }
    if uscc_check_char(&b[..17]) != Some(b[17] as char) {
        return Err(IdError::Check);
    }
    if org_check_char(&b[8..16]) != Some(b[16] as char) {
        return Err(IdError::OrgCheck);
    }
    Ok(())
}

/// Whether the registration-authority / institution-type pair (positions 1–2) is in the
/// widely published table. Unknown pairs warn, never reject: the authoritative table
/// is unsettled (standards.md §1.4).
pub fn uscc_known_type(code: &str) -> bool {
    let b = code.as_bytes();
    if b.len() < 2 {
        return false;
    }
    let allowed: &[u8] = match b[0] {
        b'1' => b"1239",
        b'2' => b"19",
        b'3' => b"123459",
        b'4' => b"19",
        b'5' => b"1239",
        b'6' => b"129",
        b'7' => b"129",
        b'8' => b"19",
        b'9' => b"123",
        b'A' => b"19",
        b'N' => b"1239",
        b'Y' => b"1",
        _ => b"",
    };
    allowed.contains(&b[1])
}

/// Checks an organization code (`XXXXXXXX-X` or without the hyphen), normalised.
pub fn check_org_code(code: &str) -> Result<(), IdError> {
    let compact: String = code.chars().filter(|c| *c != '-').collect();
    let b = compact.as_bytes();
    if b.is_empty() {
        return Err(IdError::Empty);
    }
    if compact.chars().count() != 9 {
        return Err(IdError::Length);
    }
    if b[..8].iter().any(|c| org_value(*c).is_none()) || !(b[8].is_ascii_digit() || b[8] == b'X') {
        return Err(IdError::Charset);
    }
    if org_check_char(&b[..8]) != Some(b[8] as char) {
        return Err(IdError::Check);
    }
    Ok(())
}

/// The check digit of a 14-digit registration-number body (ISO 7064 MOD 11,10).
pub fn regno_check_digit(body: &[u8]) -> Option<u8> {
    let mut p = 10u32;
    for c in body {
        let d = (*c as char).to_digit(10)?;
        let mut s = (d + p) % 10;
        if s == 0 {
            s = 10;
        }
        p = (2 * s) % 11;
    }
    Some(((11 - p) % 10) as u8)
}

/// Checks a 15-digit business registration number (GS 15-2006).
pub fn check_regno(code: &str) -> Result<(), IdError> {
    let b = code.as_bytes();
    if b.is_empty() {
        return Err(IdError::Empty);
    }
    if code.chars().count() != 15 {
        return Err(IdError::Length);
    }
    if !b.iter().all(u8::is_ascii_digit) {
        return Err(IdError::Charset);
    }
    if regno_check_digit(&b[..14]) != Some(b[14] - b'0') {
        return Err(IdError::Check);
    }
    Ok(())
}

/// The check character of a 17-digit identity-number body (ISO 7064 MOD 11-2).
pub fn ric_check_char(body: &[u8]) -> Option<char> {
    let mut sum = 0;
    for (c, w) in body.iter().zip(RIC_WEIGHTS) {
        sum += (*c as char).to_digit(10)? * w;
    }
    Some(b"10X98765432"[(sum % 11) as usize] as char)
}

fn real_date(y: &str, m: &str, d: &str) -> bool {
    match (y.parse(), m.parse(), d.parse()) {
        (Ok(y), Ok(m), Ok(d)) => chrono::NaiveDate::from_ymd_opt(y, m, d).is_some(),
        _ => false,
    }
}

/// Checks an 18-character resident identity number: digits, a real birth date, the check character.
pub fn check_ric(code: &str) -> Result<(), IdError> {
    let b = code.as_bytes();
    if b.is_empty() {
        return Err(IdError::Empty);
    }
    if code.chars().count() != 18 {
        return Err(IdError::Length);
    }
    if !b[..17].iter().all(u8::is_ascii_digit) || !(b[17].is_ascii_digit() || b[17] == b'X') {
        return Err(IdError::Charset);
    }
    if !real_date(&code[6..10], &code[10..12], &code[12..14]) {
        return Err(IdError::BirthDate);
    }
    if ric_check_char(&b[..17]) != Some(b[17] as char) {
        return Err(IdError::Check);
    }
    Ok(())
}

/// Converts an old 15-digit identity number (born 19YY, no check digit) to 18 characters.
pub fn ric_15_to_18(code: &str) -> Result<String, IdError> {
    if code.len() != 15 || !code.bytes().all(|c| c.is_ascii_digit()) {
        return Err(IdError::Length);
    }
    let body = format!("{}19{}", &code[..6], &code[6..]);
    if !real_date(&body[6..10], &body[10..12], &body[12..14]) {
        return Err(IdError::BirthDate);
    }
    let check = ric_check_char(body.as_bytes()).ok_or(IdError::Charset)?;
    Ok(format!("{body}{check}"))
}

/// Makes a valid credit code from its first 16 characters by appending both check
/// characters (positions 17 and 18). Used by the fixture generator and tests.
pub fn complete_uscc(first16: &str) -> Option<String> {
    let b = first16.as_bytes();
    if b.len() != 16 {
        return None;
    }
    let org = org_check_char(&b[8..16])?;
    let mut s = format!("{first16}{org}");
    let check = uscc_check_char(s.as_bytes())?;
    s.push(check);
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_real_codes() {
        assert_eq!(check_uscc("91110000802100433B"), Ok(()));
        // Correct position 18, but the embedded organization code fails GB 11714.
        assert_eq!(check_uscc("91310000631295002H"), Err(IdError::OrgCheck));
        assert_eq!(check_uscc("91110000802100433C"), Err(IdError::Check));
        assert_eq!(check_uscc("91110000802100433"), Err(IdError::Length));
        assert_eq!(check_uscc("9111000080210043IB"), Err(IdError::Charset));
        assert_eq!(check_uscc(USCC_PLACEHOLDER), Err(IdError::Placeholder));
        assert_eq!(check_uscc(""), Err(IdError::Empty));
        assert_eq!(check_uscc("91A10000802100433B"), Err(IdError::Division));
        assert!(uscc_known_type("91110000802100433B"));
        assert!(!uscc_known_type("9Y110000802100433B"));
    }

    #[test]
    fn org_codes_with_letters_use_the_gb11714_table() {
        for body in ["MA1MCGA5", "MB034103", "MB032716", "MB152917"] {
            let c = org_check_char(body.as_bytes()).unwrap();
            assert_eq!(check_org_code(&format!("{body}-{c}")), Ok(()));
        }
        assert_eq!(org_check_char(b"MA1MCGA5"), Some('2'));
    }

    #[test]
    fn registration_numbers() {
        assert_eq!(check_regno("520000000005018"), Ok(()));
        assert_eq!(check_regno("110108000673293"), Ok(()));
        assert_eq!(check_regno("440301104001819"), Err(IdError::Check));
        assert_eq!(check_regno("11010800067329"), Err(IdError::Length));
    }

    #[test]
    fn identity_numbers() {
        assert_eq!(
            ric_15_to_18("340524800101001").unwrap(),
            "34052419800101001X"
        );
        assert_eq!(check_ric("34052419800101001X"), Ok(()));
        assert_eq!(check_ric("340524198001010011"), Err(IdError::Check));
        assert_eq!(check_ric("34052419801301001X"), Err(IdError::BirthDate));
    }

    #[test]
    fn normalises_clerks_typing() {
        assert_eq!(
            normalise_code("\u{3000}９１１１０００ 0802100433b\u{a0}"),
            "91110000802100433B"
        );
    }

    /// Splits one line of `fixtures/ids/cases.csv` (only the input column may be quoted).
    fn split_case(line: &str) -> (String, String, String) {
        let (kind, rest) = line.split_once(',').unwrap();
        let (input, rest) = if let Some(q) = rest.strip_prefix('"') {
            let end = q.find('"').unwrap();
            (q[..end].to_string(), &q[end + 2..])
        } else {
            let (a, b) = rest.split_once(',').unwrap();
            (a.to_string(), b)
        };
        let expected = rest.split(',').next().unwrap().to_string();
        (kind.to_string(), input, expected)
    }

    #[test]
    fn agrees_with_the_independent_reference_on_every_case() {
        let table = include_str!("../../../fixtures/ids/cases.csv");
        let mut n = 0;
        for line in table.lines().skip(1) {
            let (kind, input, expected) = split_case(line);
            let code = normalise_code(&input);
            let got = match kind.as_str() {
                "uscc" => check_uscc(&code),
                "org" => check_org_code(&code),
                "regno" => check_regno(&code),
                "ric" => check_ric(&code),
                k => panic!("unknown kind {k}"),
            };
            let got = match got {
                Ok(()) => "valid",
                Err(e) => e.code(),
            };
            assert_eq!(got, expected, "{kind} {input:?}");
            n += 1;
        }
        assert!(n > 1000, "{n} cases");
    }

    fn arb_uscc() -> impl Strategy<Value = String> {
        let cs: Vec<char> = USCC_CHARSET.chars().collect();
        let org: Vec<char> = "0123456789ABCDEFGHJKLMNPQRTUWXY".chars().collect();
        (
            prop::sample::select(vec!['1', '5', '9', 'Y']),
            prop::sample::select(cs.clone()),
            "[0-9]{6}",
            prop::collection::vec(prop::sample::select(org), 8),
        )
            .prop_filter_map(
                "org check char must be in the alphabet",
                |(a, t, div, body)| {
                    let first16: String = format!("{a}{t}{div}{}", body.iter().collect::<String>());
                    complete_uscc(&first16).filter(|c| c.bytes().all(|b| uscc_value(b).is_some()))
                },
            )
    }

    proptest! {
        #[test]
        fn every_generated_code_passes(code in arb_uscc()) {
            prop_assert_eq!(check_uscc(&code), Ok(()));
        }

        #[test]
        fn every_single_substitution_fails(code in arb_uscc(), pos in 0usize..18, sub in 0usize..31) {
            let mut chars: Vec<char> = code.chars().collect();
            let replacement = USCC_CHARSET.chars().nth(sub).unwrap();
            prop_assume!(chars[pos] != replacement);
            chars[pos] = replacement;
            let bad: String = chars.into_iter().collect();
            prop_assert!(check_uscc(&bad).is_err(), "{} passed", bad);
        }

        #[test]
        fn normalising_is_idempotent(s in "\\PC{0,24}") {
            let once = normalise_code(&s);
            prop_assert_eq!(normalise_code(&once), once.clone());
        }
    }
}
