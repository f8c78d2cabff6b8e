//! Room names, nicknames and drawing ids: the rules of the contract.
//!
//! Room names are compared case-insensitively: the *key* of a room is its name
//! in NFC, lowercased, and in NFC again (lowercasing can decompose, e.g. `İ`).
//! Lengths are counted in Unicode scalar values of the NFC form, the way people
//! count characters for all but a few scripts.

use std::fmt;

use rand::Rng;
use unicode_normalization::UnicodeNormalization;

pub const ROOM_NAME_MIN_CHARS: usize = 3;
pub const ROOM_NAME_MAX_CHARS: usize = 64;
pub const NICK_MAX_CHARS: usize = 32;

/// Path words the services use themselves.
pub const RESERVED_ROOM_WORDS: &[&str] =
    &["api", "ws", "files", "static", "admin", "metrics", "livez", "readyz", "healthz"];

/// The files of `web/`, the folder aux-srv (and nginx) serve at `/{file}`:
/// a room of one of these names could never be reached, the file would win.
/// A test in aux-srv (`static_files::web_folder`) keeps this list equal to the
/// folder, both ways: a file added there must be added here, and a name stays
/// reserved only while a file of that name is served.
pub const WEB_FILE_NAMES: &[&str] = &[
    "alerts.js",
    "app.js",
    "composer.js",
    "connection.js",
    "draw.js",
    "favicon.svg",
    "home.js",
    "index.html",
    "message-article.js",
    "messages.js",
    "owner.js",
    "pacing.js",
    "people.js",
    "preview.js",
    "pow.js",
    "robots.txt",
    "room.html",
    "room.js",
    "search.js",
    "status.js",
    "style.css",
    "votes.js",
];

/// Paths browsers and crawlers ask for whether or not the site has them.
pub const WELL_KNOWN_PATHS: &[&str] = &["favicon.ico", "manifest.json", ".well-known"];

/// True when a room key names something the services serve themselves.
pub fn is_reserved_room_key(key: &str) -> bool {
    RESERVED_ROOM_WORDS.contains(&key)
        || WEB_FILE_NAMES.contains(&key)
        || WELL_KNOWN_PATHS.contains(&key)
}

const RESERVED_NICKS: &[&str] = &["system", "admin"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("room name must be 3 to 64 characters")]
    RoomLength,
    #[error("room name may hold only letters, digits, '-', '_' and '.'")]
    RoomCharacters,
    #[error("this room name is reserved")]
    RoomReserved,
    #[error("nickname must be 1 to 32 characters")]
    NickLength,
    #[error("nickname may not hold control characters")]
    NickCharacters,
    #[error("this nickname is reserved")]
    NickReserved,
}

impl NameError {
    /// The `snake_case` code used in error frames and HTTP error bodies.
    pub fn code(self) -> &'static str {
        match self {
            NameError::RoomLength | NameError::RoomCharacters => "bad_room_name",
            NameError::RoomReserved => "reserved_room_name",
            NameError::NickLength | NameError::NickCharacters => "bad_nick",
            NameError::NickReserved => "reserved_nick",
        }
    }
}

/// A valid room name: `display` as its creator typed it (in NFC), and `key`,
/// the case-folded form under which it is stored and compared.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoomName {
    display: String,
    key: String,
}

impl RoomName {
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let display = nfc(raw);
        let chars = display.chars().count();
        if !(ROOM_NAME_MIN_CHARS..=ROOM_NAME_MAX_CHARS).contains(&chars) {
            return Err(NameError::RoomLength);
        }
        if !is_room_name_text(&display) {
            return Err(NameError::RoomCharacters);
        }
        let key = room_key(&display);
        if is_reserved_room_key(&key) {
            return Err(NameError::RoomReserved);
        }
        Ok(Self { display, key })
    }

    /// The case-folded form: two names are the same room when their keys match.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The name as typed (NFC).
    pub fn display(&self) -> &str {
        &self.display
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

/// Letters and digits of any script, `-`, `_` and `.`. Combining marks count
/// as part of the letter they follow (Devanagari's virama, for one, is not
/// "alphabetic" by itself), but a name cannot start with one.
fn is_room_name_text(name: &str) -> bool {
    use unicode_normalization::char::is_combining_mark;
    let mut previous_is_letter = false;
    name.chars().all(|c| {
        let ok = c.is_alphanumeric()
            || matches!(c, '-' | '_' | '.')
            || (previous_is_letter && is_combining_mark(c));
        previous_is_letter = c.is_alphanumeric() || (previous_is_letter && is_combining_mark(c));
        ok
    })
}

/// The comparison key of a (valid) room name: NFC, lowercased, NFC again.
pub fn room_key(name: &str) -> String {
    if name.is_ascii() {
        return name.to_ascii_lowercase();
    }
    let lower: String = name.nfc().collect::<String>().to_lowercase();
    lower.nfc().collect()
}

/// `text` in NFC. ASCII text is NFC already; most names are ASCII, and every
/// API call parses one (normalising was a few per cent of aux-srv's CPU).
fn nfc(text: &str) -> String {
    if text.is_ascii() { text.to_owned() } else { text.nfc().collect() }
}

/// Characters a nickname may not hold: C0/C1 controls and the bidirectional
/// embedding, override and isolate controls (which would let one nick reorder
/// the text shown after it).
fn is_forbidden_in_nick(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Unicode's Default_Ignorable_Code_Point ranges (DerivedCoreProperties.txt):
/// characters a renderer shows as nothing, such as zero-width spaces and
/// joiners, variation selectors, soft hyphens, tags and Hangul fillers.
const DEFAULT_IGNORABLE: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{034F}', '\u{034F}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{115F}', '\u{1160}'),
    ('\u{17B4}', '\u{17B5}'),
    ('\u{180B}', '\u{180F}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{206F}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{FE00}', '\u{FE0F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFA0}', '\u{FFA0}'),
    ('\u{FFF0}', '\u{FFF8}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0000}', '\u{E0FFF}'),
];

fn is_default_ignorable(c: char) -> bool {
    DEFAULT_IGNORABLE.iter().any(|&(first, last)| (first..=last).contains(&c))
}

/// The form a nickname is compared in against the reserved ones: NFKC (so
/// fullwidth `ａｄｍｉｎ` and other compatibility look-alikes become `admin`),
/// without the characters that render as nothing (`admin` + a zero-width
/// space), lowercased, and in NFKC again (lowercasing can decompose).
pub fn nick_fold(nick: &str) -> String {
    if nick.is_ascii() {
        return nick.to_ascii_lowercase();
    }
    let visible: String = nick.nfkc().filter(|&c| !is_default_ignorable(c)).collect();
    visible.to_lowercase().nfkc().collect()
}

/// Validates a nickname: trimmed, NFC, 1–32 characters, no control
/// characters, not `system` or `admin` (compared after [`nick_fold`]).
/// `Ok(None)` means the client left it empty and should get a random one.
pub fn parse_nick(raw: &str) -> Result<Option<String>, NameError> {
    let nick = nfc(raw.trim());
    if nick.is_empty() {
        return Ok(None);
    }
    if nick.chars().count() > NICK_MAX_CHARS {
        return Err(NameError::NickLength);
    }
    if nick.chars().any(is_forbidden_in_nick) {
        return Err(NameError::NickCharacters);
    }
    if RESERVED_NICKS.contains(&nick_fold(&nick).as_str()) {
        return Err(NameError::NickReserved);
    }
    Ok(Some(nick))
}

/// Like [`parse_nick`], but an empty nickname is an error (renaming to nothing).
pub fn parse_required_nick(raw: &str) -> Result<String, NameError> {
    parse_nick(raw)?.ok_or(NameError::NickLength)
}

const ADJECTIVES: &[&str] = &[
    "quiet", "brave", "calm", "eager", "fuzzy", "gentle", "happy", "jolly", "kind", "lucky",
    "mellow", "nimble", "proud", "quick", "rapid", "shy", "sunny", "swift", "tidy", "witty",
    "amber", "bold", "bright", "clever", "cosy", "daring", "fancy", "keen", "merry", "noble",
];
const ANIMALS: &[&str] = &[
    "otter", "badger", "falcon", "heron", "koala", "lynx", "marmot", "newt", "owl", "panda",
    "puffin", "quokka", "raven", "seal", "tapir", "walrus", "wombat", "yak", "zebra", "fox",
    "gecko", "ibis", "jackal", "lemur", "mole", "ocelot", "pika", "robin", "stoat", "vole",
];

/// A readable random nickname such as `quiet-otter`.
pub fn random_nick(rng: &mut impl Rng) -> String {
    let adjective = ADJECTIVES[rng.random_range(0..ADJECTIVES.len())];
    let animal = ANIMALS[rng.random_range(0..ANIMALS.len())];
    format!("{adjective}-{animal}")
}

/// Length of a drawing id in hex digits: the first 128 bits of the SHA-256 of
/// the PNG.
pub const FILE_ID_HEX_LEN: usize = 32;

/// True for a well-formed drawing id: exactly 32 lowercase hex digits. Anything
/// else can never name a file, so it can never reach outside the data folder.
pub fn is_valid_file_id(id: &str) -> bool {
    id.len() == FILE_ID_HEX_LEN && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ascii_fast_path_agrees_with_unicode_rules() {
        let ascii: String = (' '..='~').collect();
        let slow: String = ascii.nfc().collect::<String>().to_lowercase().nfc().collect();
        assert_eq!(room_key(&ascii), slow);
        assert_eq!(nfc(&ascii), ascii.nfc().collect::<String>());
    }

    fn key(s: &str) -> String {
        RoomName::parse(s).unwrap().key().to_owned()
    }

    #[test]
    fn room_lengths() {
        assert_eq!(RoomName::parse("ab"), Err(NameError::RoomLength));
        assert!(RoomName::parse("abc").is_ok());
        assert!(RoomName::parse(&"a".repeat(64)).is_ok());
        assert_eq!(RoomName::parse(&"a".repeat(65)), Err(NameError::RoomLength));
        // Counted in characters, not bytes: 64 Cyrillic letters are 128 bytes.
        assert!(RoomName::parse(&"ж".repeat(64)).is_ok());
        assert_eq!(RoomName::parse(&"ж".repeat(65)), Err(NameError::RoomLength));
        // Decomposed "é" (e + combining acute) counts once after NFC.
        let decomposed = "e\u{301}".repeat(64);
        assert!(RoomName::parse(&decomposed).is_ok());
        assert_eq!(RoomName::parse("").unwrap_err(), NameError::RoomLength);
    }

    #[test]
    fn room_characters() {
        for ok in ["team-chat", "a_b.c", "Ünïcödé", "日本語", "café", "नमस्ते", "123", "x.y-z_1"]
        {
            assert!(RoomName::parse(ok).is_ok(), "{ok} should be valid");
        }
        for bad in [
            "has space",
            "slash/x",
            "back\\x",
            "q?x",
            "hash#x",
            "per%20",
            "emoji😀x",
            "zero\u{200B}width",
            "tab\tx",
            "nul\0xx",
            "rtl\u{202E}xx",
            "a+b",
            "\u{301}abc",
            "-\u{301}ab",
        ] {
            assert_eq!(RoomName::parse(bad), Err(NameError::RoomCharacters), "{bad:?}");
        }
    }

    #[test]
    fn room_case_and_normalisation() {
        assert_eq!(key("Team-Chat"), "team-chat");
        assert_eq!(key("CAFÉ"), key("café"));
        // Precomposed and decomposed forms are the same room.
        assert_eq!(key("caf\u{e9}"), key("cafe\u{301}"));
        // Greek final sigma and capital sigma: lowercase maps both sensibly.
        assert_eq!(key("ΣΟΦΙΑ"), key("σοφια"));
        // Dotted capital I lowercases to i + combining dot, re-normalised.
        assert_eq!(key("İstanbul"), room_key("i\u{307}stanbul"));
        // The display form keeps the creator's case, in NFC.
        let name = RoomName::parse("Cafe\u{301}").unwrap();
        assert_eq!(name.display(), "Caf\u{e9}");
        assert_eq!(name.key(), "caf\u{e9}");
        assert_eq!(name.to_string(), "Caf\u{e9}");
    }

    #[test]
    fn reserved_rooms() {
        assert_eq!(RoomName::parse("WS"), Err(NameError::RoomLength), "too short anyway");
        for word in ["api", "files", "Static", "ADMIN", "metrics", "livez", "readyz"] {
            assert_eq!(RoomName::parse(word), Err(NameError::RoomReserved), "{word}");
        }
        assert_eq!(RoomName::parse("healthz"), Err(NameError::RoomReserved));
        assert_eq!(RoomName::parse("Index.HTML"), Err(NameError::RoomReserved));
        assert_eq!(RoomName::parse("style.css"), Err(NameError::RoomReserved));
        assert_eq!(RoomName::parse("favicon.ico"), Err(NameError::RoomReserved));
        // The browser tests' node project is not served, so its names are free.
        for free in ["package.json", "package-lock.json", "tests", "node_modules"] {
            assert!(RoomName::parse(free).is_ok(), "{free}");
        }
        assert!(RoomName::parse("apis").is_ok());
        assert!(RoomName::parse("my-api").is_ok());
        assert_eq!(NameError::RoomReserved.code(), "reserved_room_name");
    }

    #[test]
    fn nicks() {
        assert_eq!(parse_nick("  Ada  "), Ok(Some("Ada".into())));
        assert_eq!(parse_nick("   "), Ok(None));
        assert_eq!(parse_nick(""), Ok(None));
        assert_eq!(parse_nick(&"n".repeat(32)).unwrap().unwrap().len(), 32);
        assert_eq!(parse_nick(&"n".repeat(33)), Err(NameError::NickLength));
        assert_eq!(parse_nick(&"ñ".repeat(32)).unwrap().unwrap().chars().count(), 32);
        assert_eq!(parse_nick("a\u{7}b"), Err(NameError::NickCharacters));
        assert_eq!(parse_nick("a\nb"), Err(NameError::NickCharacters));
        assert_eq!(parse_nick("a\u{85}b"), Err(NameError::NickCharacters));
        assert_eq!(parse_nick("evil\u{202E}gnp.exe"), Err(NameError::NickCharacters));
        assert_eq!(parse_nick("x\u{2067}y"), Err(NameError::NickCharacters));
        for reserved in ["system", "SYSTEM", " Admin ", "ADMİN"] {
            // "ADMİN" lowercases to "admi̇n" (with a combining dot): not "admin".
            let expected = if reserved == "ADMİN" {
                Ok(Some("ADMİN".into()))
            } else {
                Err(NameError::NickReserved)
            };
            assert_eq!(parse_nick(reserved), expected, "{reserved}");
        }
        assert_eq!(parse_nick("systems"), Ok(Some("systems".into())));
        assert_eq!(parse_nick("<b>x</b>"), Ok(Some("<b>x</b>".into())), "markup is text");
        assert_eq!(parse_required_nick(""), Err(NameError::NickLength));
    }

    /// Look-alikes of the reserved nicks are refused; names that merely
    /// contain them, or are other words, are not.
    #[test]
    fn reserved_nicks_are_matched_after_folding() {
        let refused = [
            ("\u{FF41}\u{FF44}\u{FF4D}\u{FF49}\u{FF4E}", "fullwidth ａｄｍｉｎ"),
            ("\u{FF21}\u{FF24}\u{FF2D}\u{FF29}\u{FF2E}", "fullwidth ＡＤＭＩＮ"),
            ("admin\u{200B}", "zero-width space"),
            ("ad\u{200D}min", "zero-width joiner"),
            ("\u{FEFF}admin", "byte order mark"),
            ("adm\u{00AD}in", "soft hyphen"),
            ("admin\u{FE0F}", "variation selector"),
            ("admin\u{E0041}", "tag letter"),
            ("sys\u{2060}tem", "word joiner"),
            ("\u{1D42C}\u{1D432}\u{1D42C}\u{1D42D}\u{1D41E}\u{1D426}", "mathematical bold"),
            ("ＳＹＳＴＥＭ", "fullwidth capitals"),
            ("\u{1D43}dmin", "superscript a"),
        ];
        for (nick, why) in refused {
            assert_eq!(parse_nick(nick), Err(NameError::NickReserved), "{why}: {nick:?}");
        }
        let allowed =
            ["admins", "sysadmin", "admin2", "ａｄｍｉｎｓ", "аdmin" /* Cyrillic а */];
        for nick in allowed {
            assert!(matches!(parse_nick(nick), Ok(Some(_))), "{nick:?}");
        }
        assert_eq!(nick_fold("ＡＤＭＩＮ\u{200B}"), "admin");
        assert_eq!(nick_fold("Ada"), "ada");
    }

    #[test]
    fn random_nicks_are_valid() {
        let mut rng = rand::rng();
        for _ in 0..200 {
            let nick = random_nick(&mut rng);
            assert!(nick.contains('-'));
            assert_eq!(parse_nick(&nick), Ok(Some(nick.clone())));
        }
    }

    #[test]
    fn file_ids() {
        assert!(is_valid_file_id("0123456789abcdef0123456789abcdef"));
        assert!(!is_valid_file_id("0123456789ABCDEF0123456789abcdef"));
        assert!(!is_valid_file_id("0123456789abcdef0123456789abcde"));
        assert!(!is_valid_file_id("../../../../etc/passwd0123456789a"));
        assert!(!is_valid_file_id("0123456789abcdef0123456789abcde/"));
        assert!(!is_valid_file_id(""));
    }
}
