//! Parsing glib's GVariant text format (`g_variant_parse`) for the common types, as used by
//! `commit --add-metadata KEY=VALUE`: strings, numbers with or without type keywords, booleans,
//! bytestrings, arrays, dictionaries, tuples, variants, `@TYPE` annotations and `nothing`/`just`.

use super::types::MAX_DEPTH;
use super::{Type, Value, VariantError};

/// Parses `text`; `ty` is the expected type, if known.
pub fn parse(text: &str, ty: Option<&Type>) -> Result<Value, VariantError> {
    let mut p = Parser {
        src: text,
        pos: 0,
        depth: 0,
    };
    let v = p.value(ty)?;
    p.skip_ws();
    if p.pos != text.len() {
        return Err(p.err("trailing characters"));
    }
    Ok(v)
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    /// How many values are being parsed around the current one.
    depth: usize,
}

const KEYWORDS: &[(&str, Type)] = &[
    ("boolean", Type::Bool),
    ("byte", Type::Byte),
    ("int16", Type::Int16),
    ("uint16", Type::Uint16),
    ("int32", Type::Int32),
    ("uint32", Type::Uint32),
    ("int64", Type::Int64),
    ("uint64", Type::Uint64),
    ("handle", Type::Handle),
    ("double", Type::Double),
    ("string", Type::String),
    ("objectpath", Type::ObjectPath),
    ("signature", Type::Signature),
];

impl<'a> Parser<'a> {
    fn err(&self, why: &str) -> VariantError {
        VariantError::Text {
            text: self.src.to_string(),
            why: format!("{why} at offset {}", self.pos),
        }
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.src.len() - trimmed.len();
    }

    fn eat(&mut self, s: &str) -> bool {
        self.skip_ws();
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, s: &str) -> Result<(), VariantError> {
        if self.eat(s) {
            Ok(())
        } else {
            Err(self.err(&format!("expected {s:?}")))
        }
    }

    /// Eats a keyword followed by a non-identifier character.
    fn eat_word(&mut self, word: &str) -> bool {
        self.skip_ws();
        let rest = self.rest();
        if rest.starts_with(word)
            && !rest[word.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    /// Parses a value, of type `ty` if given: anything else is an error, so that every value
    /// built (items of arrays, dictionaries and maybes included) has the type it claims.
    fn value(&mut self, ty: Option<&Type>) -> Result<Value, VariantError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        self.depth += 1;
        let v = self.value_unchecked(ty);
        self.depth -= 1;
        let v = v?;
        if ty.is_some_and(|t| *t != v.type_of()) {
            return Err(self.err("value does not have the expected type"));
        }
        Ok(v)
    }

    fn value_unchecked(&mut self, ty: Option<&Type>) -> Result<Value, VariantError> {
        self.skip_ws();
        if self.eat("@") {
            let rest = self.rest().as_bytes();
            let (annotated, after) =
                Type::parse_prefix(rest).ok_or_else(|| self.err("bad type annotation"))?;
            self.pos = self.src.len() - after.len();
            if ty.is_some_and(|t| *t != annotated) {
                return Err(self.err("type annotation conflicts with the expected type"));
            }
            return self.value(Some(&annotated));
        }
        for (word, kw_ty) in KEYWORDS {
            if self.eat_word(word) {
                if ty.is_some_and(|t| t != kw_ty) {
                    return Err(self.err("type keyword conflicts with the expected type"));
                }
                return self.value(Some(kw_ty));
            }
        }
        if let Some(Type::Maybe(inner)) = ty {
            if self.eat_word("nothing") {
                return Ok(Value::Maybe((**inner).clone(), None));
            }
            self.eat_word("just");
            let v = self.value(Some(inner))?;
            return Ok(Value::Maybe((**inner).clone(), Some(Box::new(v))));
        }
        let c = self
            .rest()
            .chars()
            .next()
            .ok_or_else(|| self.err("unexpected end"))?;
        match c {
            '\'' | '"' => {
                let s = self.string()?;
                if s.contains('\0') {
                    return Err(self.err("NUL character in a string"));
                }
                match ty {
                    None | Some(Type::String) => Ok(Value::String(s)),
                    Some(Type::ObjectPath) => Ok(Value::ObjectPath(s)),
                    Some(Type::Signature) => Ok(Value::Signature(s)),
                    Some(_) => Err(self.err("a string where another type is expected")),
                }
            }
            'b' if self.rest()[1..].starts_with(['\'', '"']) => {
                self.pos += 1;
                let mut bytes = self.string()?.into_bytes();
                bytes.push(0);
                match ty {
                    None | Some(Type::Array(_)) => Ok(Value::Bytes(bytes)),
                    Some(_) => Err(self.err("a bytestring where another type is expected")),
                }
            }
            '<' => {
                self.pos += 1;
                let inner = self.value(None)?;
                self.expect(">")?;
                Ok(Value::Variant(Box::new(inner)))
            }
            '[' => self.array(ty),
            '{' => self.dict(ty),
            '(' => self.tuple(ty),
            _ if self.eat_word("true") => Ok(Value::Bool(true)),
            _ if self.eat_word("false") => Ok(Value::Bool(false)),
            _ => self.number(ty),
        }
    }

    fn string(&mut self) -> Result<String, VariantError> {
        let mut chars = self.rest().char_indices();
        let (_, quote) = chars.next().ok_or_else(|| self.err("unexpected end"))?;
        let mut out = String::new();
        while let Some((i, c)) = chars.next() {
            if c == quote {
                self.pos += i + 1;
                return Ok(out);
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let (_, e) = chars
                .next()
                .ok_or_else(|| self.err("unterminated escape"))?;
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'a' => out.push('\x07'),
                'b' => out.push('\x08'),
                'f' => out.push('\x0c'),
                'v' => out.push('\x0b'),
                'u' | 'U' => {
                    let n = if e == 'u' { 4 } else { 8 };
                    let hex: String = chars.by_ref().take(n).map(|(_, c)| c).collect();
                    let code = u32::from_str_radix(&hex, 16)
                        .ok()
                        .and_then(char::from_u32)
                        .ok_or_else(|| self.err("bad unicode escape"))?;
                    out.push(code);
                }
                other => out.push(other),
            }
        }
        Err(self.err("unterminated string"))
    }

    fn elem_type(ty: Option<&Type>) -> Option<&Type> {
        match ty {
            Some(Type::Array(e)) => Some(e),
            _ => None,
        }
    }

    fn array(&mut self, ty: Option<&Type>) -> Result<Value, VariantError> {
        self.expect("[")?;
        let mut elem = Self::elem_type(ty).cloned();
        let mut items = Vec::new();
        if !self.eat("]") {
            loop {
                let v = self.value(elem.as_ref())?;
                elem.get_or_insert_with(|| v.type_of());
                items.push(v);
                if self.eat("]") {
                    break;
                }
                self.expect(",")?;
            }
        }
        let elem = elem.ok_or_else(|| self.err("cannot infer the type of an empty array"))?;
        Ok(make_array(elem, items))
    }

    fn dict(&mut self, ty: Option<&Type>) -> Result<Value, VariantError> {
        self.expect("{")?;
        let (mut kt, mut vt) = match Self::elem_type(ty) {
            Some(Type::DictEntry(k, v)) => (Some((**k).clone()), Some((**v).clone())),
            _ => (None, None),
        };
        let mut items = Vec::new();
        if !self.eat("}") {
            loop {
                let k = self.value(kt.as_ref())?;
                self.expect(":")?;
                let v = self.value(vt.as_ref())?;
                kt.get_or_insert_with(|| k.type_of());
                vt.get_or_insert_with(|| v.type_of());
                items.push(Value::DictEntry(Box::new(k), Box::new(v)));
                if self.eat("}") {
                    break;
                }
                self.expect(",")?;
            }
        }
        match (kt, vt) {
            (Some(k), _) if !k.is_basic() => Err(self.err("dictionary key of a container type")),
            (Some(k), Some(v)) => Ok(Value::Array(
                Type::DictEntry(Box::new(k), Box::new(v)),
                items,
            )),
            _ => Err(self.err("cannot infer the type of an empty dictionary")),
        }
    }

    fn tuple(&mut self, ty: Option<&Type>) -> Result<Value, VariantError> {
        self.expect("(")?;
        let types = match ty {
            Some(Type::Tuple(items)) => Some(items.as_slice()),
            _ => None,
        };
        let mut items = Vec::new();
        if !self.eat(")") {
            loop {
                let item_ty = types.and_then(|t| t.get(items.len()));
                items.push(self.value(item_ty)?);
                if self.eat(")") {
                    break;
                }
                self.expect(",")?;
                if self.eat(")") {
                    break;
                }
            }
        }
        if types.is_some_and(|t| t.len() != items.len()) {
            return Err(self.err("wrong number of tuple items"));
        }
        Ok(Value::Tuple(items))
    }

    fn number(&mut self, ty: Option<&Type>) -> Result<Value, VariantError> {
        self.skip_ws();
        let len = self
            .rest()
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.')))
            .unwrap_or(self.rest().len());
        let tok = &self.rest()[..len];
        if tok.is_empty() {
            return Err(self.err("expected a value"));
        }
        let is_float = !tok.starts_with("0x") && tok.contains(['.', 'e', 'E']);
        let ty = ty
            .cloned()
            .unwrap_or(if is_float { Type::Double } else { Type::Int32 });
        let bad = || self.err(&format!("{tok:?} is not a valid {ty}"));
        let int = || -> Option<i128> {
            let (neg, digits) = match tok.strip_prefix('-') {
                Some(d) => (true, d),
                None => (false, tok.strip_prefix('+').unwrap_or(tok)),
            };
            let n = match digits.strip_prefix("0x") {
                Some(hex) => i128::from_str_radix(hex, 16).ok()?,
                None => digits.parse::<i128>().ok()?,
            };
            if neg { n.checked_neg() } else { Some(n) }
        };
        let v = match ty {
            Type::Byte => Value::Byte(int().and_then(|n| n.try_into().ok()).ok_or_else(bad)?),
            Type::Int16 => Value::Int16(int().and_then(|n| n.try_into().ok()).ok_or_else(bad)?),
            Type::Uint16 => Value::Uint16(int().and_then(|n| n.try_into().ok()).ok_or_else(bad)?),
            Type::Int32 => Value::Int32(int().and_then(|n| n.try_into().ok()).ok_or_else(bad)?),
            Type::Uint32 => Value::Uint32(int().and_then(|n| n.try_into().ok()).ok_or_else(bad)?),
            Type::Int64 => Value::Int64(int().and_then(|n| n.try_into().ok()).ok_or_else(bad)?),
            Type::Uint64 => Value::Uint64(int().and_then(|n| n.try_into().ok()).ok_or_else(bad)?),
            Type::Handle => Value::Handle(int().and_then(|n| n.try_into().ok()).ok_or_else(bad)?),
            Type::Double => Value::Double(tok.parse().map_err(|_| bad())?),
            _ => return Err(bad()),
        };
        self.pos += len;
        Ok(v)
    }
}

/// Builds an array value, keeping `ay` as [`Value::Bytes`].
fn make_array(elem: Type, items: Vec<Value>) -> Value {
    if elem == Type::Byte {
        return Value::Bytes(
            items
                .into_iter()
                .filter_map(|v| match v {
                    Value::Byte(b) => Some(b),
                    _ => None,
                })
                .collect(),
        );
    }
    Value::Array(elem, items)
}
