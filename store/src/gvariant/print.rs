//! glib's text format (`g_variant_print`), byte for byte: ostree prints metadata this way.

use super::{Type, Value};
use std::fmt::Write;

pub(super) fn print(value: &Value, annotate: bool, out: &mut String) {
    match value {
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Byte(b) => {
            if annotate {
                out.push_str("byte ");
            }
            let _ = write!(out, "0x{b:02x}");
        }
        Value::Int16(n) => annotated(out, annotate, "int16", n),
        Value::Uint16(n) => annotated(out, annotate, "uint16", n),
        Value::Int32(n) => annotated(out, false, "", n),
        Value::Uint32(n) => annotated(out, annotate, "uint32", n),
        Value::Int64(n) => annotated(out, annotate, "int64", n),
        Value::Uint64(n) => annotated(out, annotate, "uint64", n),
        Value::Handle(n) => annotated(out, annotate, "handle", n),
        Value::Double(d) => print_double(*d, out),
        Value::String(s) => quote(s, out),
        Value::ObjectPath(s) => {
            if annotate {
                out.push_str("objectpath ");
            }
            quote(s, out);
        }
        Value::Signature(s) => {
            if annotate {
                out.push_str("signature ");
            }
            quote(s, out);
        }
        Value::Variant(inner) => {
            out.push('<');
            print(inner, true, out);
            out.push('>');
        }
        Value::Maybe(ty, inner) => {
            if annotate {
                let _ = write!(out, "@m{ty} ");
            }
            match inner {
                None => out.push_str("nothing"),
                Some(inner) => {
                    if matches!(ty, Type::Maybe(_)) {
                        out.push_str("just ");
                    }
                    print(inner, false, out);
                }
            }
        }
        Value::Bytes(b) => print_bytes(b, annotate, out),
        Value::Array(ty, items) => print_array(ty, items, annotate, out),
        Value::Tuple(items) => {
            out.push('(');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                print(item, annotate, out);
            }
            if items.len() == 1 {
                out.push(',');
            }
            out.push(')');
        }
        Value::DictEntry(k, v) => {
            out.push('{');
            print(k, annotate, out);
            out.push_str(", ");
            print(v, annotate, out);
            out.push('}');
        }
    }
}

fn annotated(out: &mut String, annotate: bool, name: &str, n: impl std::fmt::Display) {
    if annotate {
        out.push_str(name);
        out.push(' ');
    }
    let _ = write!(out, "{n}");
}

fn print_array(ty: &Type, items: &[Value], mut annotate: bool, out: &mut String) {
    if items.is_empty() {
        if annotate {
            let _ = write!(out, "@a{ty} ");
        }
        out.push_str(if matches!(ty, Type::DictEntry(..)) {
            "{}"
        } else {
            "[]"
        });
        return;
    }
    if matches!(ty, Type::DictEntry(..)) {
        out.push('{');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            if let Value::DictEntry(k, v) = item {
                print(k, annotate, out);
                out.push_str(": ");
                print(v, annotate, out);
            }
            annotate = false;
        }
        out.push('}');
        return;
    }
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        // glib annotates only the first element: it fixes the type of the rest.
        print(item, annotate, out);
        annotate = false;
    }
    out.push(']');
}

/// `ay` prints as a bytestring `b'...'` when it is NUL-terminated without inner NULs.
fn print_bytes(b: &[u8], annotate: bool, out: &mut String) {
    if let Some((0, body)) = b.split_last()
        && !body.contains(&0)
    {
        let quote = if body.contains(&b'\'') { '"' } else { '\'' };
        out.push('b');
        out.push(quote);
        strescape(body, out);
        out.push(quote);
        return;
    }
    let items: Vec<Value> = b.iter().map(|&b| Value::Byte(b)).collect();
    print_array(&Type::Byte, &items, annotate, out);
}

/// glib's `g_strescape` with no exceptions.
fn strescape(s: &[u8], out: &mut String) {
    for &c in s {
        match c {
            b'\x08' => out.push_str("\\b"),
            b'\x0c' => out.push_str("\\f"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b'\x0b' => out.push_str("\\v"),
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            c if !(0x20..0x7f).contains(&c) => {
                let _ = write!(out, "\\{c:03o}");
            }
            c => out.push(c as char),
        }
    }
}

/// Quotes a string as glib does: `'` unless the string holds one.
fn quote(s: &str, out: &mut String) {
    let quote = if s.contains('\'') { '"' } else { '\'' };
    out.push(quote);
    for c in s.chars() {
        if c == quote || c == '\\' {
            out.push('\\');
        }
        if is_printable(c) {
            out.push(c);
            continue;
        }
        out.push('\\');
        match c {
            '\x07' => out.push('a'),
            '\x08' => out.push('b'),
            '\x0c' => out.push('f'),
            '\n' => out.push('n'),
            '\r' => out.push('r'),
            '\t' => out.push('t'),
            '\x0b' => out.push('v'),
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "U{:08x}", c as u32);
            }
        }
    }
    out.push(quote);
}

/// An approximation of `g_unichar_isprint`: everything but control and format characters.
fn is_printable(c: char) -> bool {
    !(c.is_control() || matches!(c as u32, 0xad | 0x200b..=0x200f | 0x2028..=0x202e | 0xfeff))
}

/// `%.17g`, with `.0` appended when the result would read as an integer.
fn print_double(d: f64, out: &mut String) {
    let s = format_g17(d);
    let looks_integral = !s.contains(['.', 'e', 'n', 'i']);
    out.push_str(&s);
    if looks_integral {
        out.push_str(".0");
    }
}

fn format_g17(d: f64) -> String {
    if d.is_nan() {
        return "nan".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d == 0.0 {
        return if d.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let exp = d.abs().log10().floor() as i32;
    if !(-5..17).contains(&exp) {
        let s = format!("{d:.16e}");
        let (mantissa, e) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = trim_zeros(mantissa);
        let e: i32 = e.parse().unwrap_or(0);
        let sign = if e < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", e.abs());
    }
    let decimals = (16 - exp).max(0) as usize;
    trim_zeros(&format!("{d:.decimals$}")).to_string()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}
