//! Checks shared by the fuzz targets (`fuzz_targets/*.rs`) and by the corpus replay test
//! (`tests/fuzz_corpus.rs`, which includes this file as a module, so it uses only std and
//! `rostree_store`).
//!
//! Each check feeds untrusted bytes to one parser of `rostree_store`. A parse error is fine; a
//! panic is a bug. When a parse succeeds, the check asserts round-trip properties that must
//! hold. Normal form is not one of them: like glib, the parsers accept non-normal inputs (for
//! example nonzero padding), so only `decode(encode(decode(x))) == decode(x)` is asserted, never
//! `encode(decode(x)) == x`.

use rostree_store::config::KeyFile;
use rostree_store::gvariant::{Type, Value, text};
use rostree_store::{content, format, pull, refs};

/// A check: feeds one input to one parser and asserts its properties.
pub type Check = fn(&[u8]);

/// Every fuzz target, by name: the name of its `fuzz_targets/<name>.rs` file and of its
/// `corpus/<name>/` folder.
pub const TARGETS: &[(&str, Check)] = &[
    ("commit", commit),
    ("dirtree", dirtree),
    ("dirmeta", dirmeta),
    ("file_header", file_header),
    ("filez_header", filez_header),
    ("ostreemeta", ostreemeta),
    ("config", config),
    ("ref_file", ref_file),
    ("detached", detached),
    ("gvariant_value", gvariant_value),
    ("gvariant_text", gvariant_text),
    ("summary", summary),
    ("sizes", sizes),
];

const COMMIT_TYPE: &str = "(a{sv}aya(say)sstayay)";
const DIRTREE_TYPE: &str = "(a(say)a(sayay))";
const DIRMETA_TYPE: &str = "(uuua(ayay))";
const FILE_HEADER_TYPE: &str = "(uuuusa(ayay))";
const FILEZ_HEADER_TYPE: &str = "(tuuuusa(ayay))";
const METADATA_TYPE: &str = "a{sv}";

fn ty(s: &str) -> Type {
    Type::parse(s).expect("constant type string")
}

/// Two values are the same: equal encodings (exact, NaN payloads included) and equal
/// structure (`Debug`, which unlike `==` treats NaN as equal to itself).
fn assert_same(a: &Value, b: &Value) {
    assert_eq!(
        a.to_bytes(),
        b.to_bytes(),
        "encodings differ: {a:?} vs {b:?}"
    );
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}

/// For a value decoded as `t` (or parsed from text, with `t` its type): the value has type `t`,
/// its encoding decodes back to the same value, and re-encodes to the same bytes.
fn assert_value_roundtrip(t: &Type, v: &Value) {
    assert_eq!(
        &v.type_of(),
        t,
        "decoded value does not have the requested type: {v:?}"
    );
    let bytes = v.to_bytes();
    let again = Value::from_bytes(t, &bytes)
        .unwrap_or_else(|e| panic!("encoding of {v:?} does not decode as {t}: {e}"));
    assert_same(v, &again);
    assert_eq!(again.to_bytes(), bytes);
}

/// The generic decoder accepts what a specialized parser accepted; returns its normal form.
fn generic_normal_form(type_str: &str, data: &[u8]) -> Vec<u8> {
    let t = ty(type_str);
    let v = Value::from_bytes(&t, data)
        .unwrap_or_else(|e| panic!("generic decoder rejects a valid {type_str}: {e}"));
    assert_value_roundtrip(&t, &v);
    v.to_bytes()
}

/// `.commit` objects.
pub fn commit(data: &[u8]) {
    let Ok(c) = format::Commit::parse(data) else {
        return;
    };
    let bytes = c.to_bytes();
    assert_eq!(generic_normal_form(COMMIT_TYPE, data), bytes);
    let again = format::Commit::parse(&bytes).expect("re-encoded commit parses");
    assert_eq!(again.to_bytes(), bytes);
    assert_eq!(format!("{again:?}"), format!("{c:?}"));
    let _ = (c.version(), c.content_checksum());
}

/// `.dirtree` objects, through the zero-copy view.
pub fn dirtree(data: &[u8]) {
    let Ok(t) = format::DirTreeRef::parse(data) else {
        return;
    };
    let owned = t.to_owned();
    // Names are strictly sorted, so none is lost in the maps.
    assert_eq!(owned.files.len(), t.files.len());
    assert_eq!(owned.dirs.len(), t.dirs.len());
    for (name, id) in &t.files {
        assert_eq!(t.file(name), Some(*id));
    }
    for (name, tree, meta) in &t.dirs {
        assert_eq!(t.dir(name), Some((*tree, *meta)));
    }
    let bytes = owned.to_bytes();
    assert_eq!(generic_normal_form(DIRTREE_TYPE, data), bytes);
    let again = format::DirTreeRef::parse(&bytes).expect("re-encoded dirtree parses");
    assert_eq!(again, t);
    assert_eq!(again.to_owned(), owned);
}

/// `.dirmeta` objects.
pub fn dirmeta(data: &[u8]) {
    let Ok(m) = format::DirMeta::parse(data) else {
        return;
    };
    let bytes = m.to_bytes();
    assert_eq!(generic_normal_form(DIRMETA_TYPE, data), bytes);
    let again = format::DirMeta::parse(&bytes).expect("re-encoded dirmeta parses");
    assert_eq!(again, m);
    let _ = m.xattrs.print();
}

/// The `(uuuusa(ayay))` content header variant (checksums, bare-user metadata).
pub fn file_header(data: &[u8]) {
    let Ok(h) = format::FileHeader::parse_variant(data) else {
        return;
    };
    h.validate().expect("a parsed header is valid");
    let bytes = h.to_variant_bytes();
    assert_eq!(generic_normal_form(FILE_HEADER_TYPE, data), bytes);
    let again = format::FileHeader::parse_variant(&bytes).expect("re-encoded header parses");
    assert_eq!(again, h);
    let _ = format::content_checksum(&h, b"");
}

/// The header at the start of archive `.filez` objects.
pub fn filez_header(data: &[u8]) {
    let Ok((h, size, offset)) = format::parse_filez_header(data) else {
        return;
    };
    assert!(
        (8..=data.len()).contains(&offset),
        "offset {offset} out of range"
    );
    h.validate().expect("a parsed header is valid");
    let header = h.to_filez_header(size);
    assert_eq!(
        generic_normal_form(FILEZ_HEADER_TYPE, &data[8..offset]),
        header[8..]
    );
    let mut rebuilt = header.clone();
    rebuilt.extend_from_slice(&data[offset..]);
    let again = format::parse_filez_header(&rebuilt).expect("re-encoded header parses");
    assert_eq!(again, (h, size, header.len()));
}

/// The `user.ostreemeta` xattr of bare-user objects.
pub fn ostreemeta(data: &[u8]) {
    let Ok((uid, gid, mode, xattrs)) = content::parse_ostreemeta(data) else {
        return;
    };
    let bytes = Value::Tuple(vec![
        Value::Uint32(uid.to_be()),
        Value::Uint32(gid.to_be()),
        Value::Uint32(mode.to_be()),
        xattrs.to_value(),
    ])
    .to_bytes();
    assert_eq!(generic_normal_form(DIRMETA_TYPE, data), bytes);
    let again = content::parse_ostreemeta(&bytes).expect("re-encoded ostreemeta parses");
    assert_eq!(again, (uid, gid, mode, xattrs));
}

/// The repository `config` key file (bytes read as lossy UTF-8, as a caller would do).
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(kf) = KeyFile::parse(&text) else {
        return;
    };
    let out = kf.to_text();
    let again = KeyFile::parse(&out).expect("to_text output parses");
    // Lines are kept, except that `str::lines` drops one trailing '\r' of a comment or blank
    // line (written back with "\n"): groups and entries are kept exactly.
    let strip_cr = |s: String| s.replace('\r', "");
    assert_eq!(strip_cr(again.to_text()), strip_cr(out.clone()));
    assert_eq!(again.groups(), kf.groups());
    let mut keys: Vec<&str> = vec!["mode", "repo_version", "url", "fsync", ""];
    keys.extend(
        out.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, _)| k.trim()),
    );
    for group in kf.groups() {
        for key in &keys {
            assert_eq!(again.get(group, key), kf.get(group, key), "[{group}] {key}");
        }
    }
    let _ = kf.get_bool("core", "fsync");

    let mut edited = kf.clone();
    edited.set("core", "fuzz-key", "fuzz value");
    assert_eq!(edited.get("core", "fuzz-key"), Some("fuzz value"));
    let reparsed = KeyFile::parse(&edited.to_text()).expect("edited key file parses");
    assert_eq!(reparsed.get("core", "fuzz-key"), Some("fuzz value"));
    assert!(edited.remove("core", "fuzz-key"));
    assert_eq!(edited.get("core", "fuzz-key"), None);
}

/// Ref files: a checksum and trailing whitespace.
pub fn ref_file(data: &[u8]) {
    let Ok(id) = refs::parse_ref_file(data) else {
        return;
    };
    let text = std::str::from_utf8(data).expect("a parsed ref file is UTF-8");
    assert_eq!(text.trim_end(), id.to_hex());
    assert_eq!(refs::parse_ref_file(format!("{id}\n").as_bytes()), Ok(id));
}

/// Detached metadata (`.commitmeta`, `a{sv}`).
pub fn detached(data: &[u8]) {
    let Ok(meta) = format::parse_detached(data) else {
        return;
    };
    let bytes = format::metadata_value(&meta).to_bytes();
    assert_eq!(generic_normal_form(METADATA_TYPE, data), bytes);
    let again = format::parse_detached(&bytes).expect("re-encoded metadata parses");
    assert_eq!(again.len(), meta.len());
    for ((k1, v1), (k2, v2)) in meta.iter().zip(&again) {
        assert_eq!(k1, k2);
        assert_same(v1, v2);
    }
}

/// Types for [`gvariant_value`]: a first byte below 128 picks one of these.
const VALUE_TYPES: &[&str] = &[
    "a{sv}",
    "v",
    COMMIT_TYPE,
    DIRTREE_TYPE,
    DIRMETA_TYPE,
    FILE_HEADER_TYPE,
    FILEZ_HEADER_TYPE,
    "a(ayay)",
    "mv",
    "aav",
    "ms",
    "m(ts)",
    "(ybnqiuxthdsog)",
    "a{ss}",
    "(yv)",
    "a(sv)",
    "maay",
    "(a{sv}v)",
];

/// Generic GVariant decoding. The first byte picks the type: below 128, one of
/// [`VALUE_TYPES`]; otherwise the type string is read from the input up to the first NUL.
pub fn gvariant_value(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (t, payload) = if selector < 128 {
        (ty(VALUE_TYPES[selector as usize % VALUE_TYPES.len()]), rest)
    } else {
        let Some(nul) = rest.iter().position(|&b| b == 0) else {
            return;
        };
        let Ok(type_str) = std::str::from_utf8(&rest[..nul]) else {
            return;
        };
        let Ok(t) = Type::parse(type_str) else {
            return;
        };
        assert_eq!(t.to_string(), type_str, "type strings print as parsed");
        (t, &rest[nul + 1..])
    };
    let Ok(v) = Value::from_bytes(&t, payload) else {
        return;
    };
    assert_value_roundtrip(&t, &v);
}

/// GVariant text format (`commit --add-metadata`), input read as lossy UTF-8.
pub fn gvariant_text(data: &[u8]) {
    let input = String::from_utf8_lossy(data);
    let Ok(v) = text::parse(&input, None) else {
        return;
    };
    let t = v.type_of();
    // The type of a parsed value is a valid type: it can be written inside a variant.
    assert_eq!(Type::parse(&t.to_string()).as_ref(), Ok(&t));
    assert_value_roundtrip(&t, &v);
}

/// A remote's `summary` file, fetched over HTTP.
pub fn summary(data: &[u8]) {
    let Ok(refs) = pull::parse_summary(data) else {
        return;
    };
    for r in &refs {
        assert!(
            refs::is_valid_ref_name(&r.name),
            "invalid ref {:?} accepted",
            r.name
        );
    }
}

/// A commit's `ostree.sizes` metadata (`aay`).
pub fn sizes(data: &[u8]) {
    let Ok(value) = Value::from_bytes(&ty("aay"), data) else {
        return;
    };
    let Ok(entries) = format::parse_sizes(&value) else {
        return;
    };
    let again =
        format::parse_sizes(&format::sizes_value(&entries)).expect("encoded sizes parse again");
    assert_eq!(again, entries);
}
