//! Filters (RFC 7644 §3.4.2.2): parsed once into a [`Filter`], then evaluated against a
//! resource's JSON form. Attribute names are matched without regard to case (RFC 7643
//! §2.1); string values too, except for the attributes [`case_exact`] names.
//!
//! The parser bounds what it takes (length and nesting), so no input can exhaust the
//! stack.

use serde_json::Value;

use crate::error::{ScimError, ScimType};

/// The longest filter taken, in bytes.
const MAX_FILTER_BYTES: usize = 4096;
/// The deepest nesting of parentheses, brackets and `not` taken.
const MAX_DEPTH: usize = 16;

/// A comparison operator (RFC 7644 §3.4.2.2, Table 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    /// `eq`.
    Eq,
    /// `ne`.
    Ne,
    /// `co`.
    Co,
    /// `sw`.
    Sw,
    /// `ew`.
    Ew,
    /// `gt`.
    Gt,
    /// `ge`.
    Ge,
    /// `lt`.
    Lt,
    /// `le`.
    Le,
}

/// A parsed filter.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// `attr pr`: the attribute has a value.
    Present(AttrPath),
    /// `attr op value`.
    Compare(AttrPath, Compare, Value),
    /// `attr[filter]`: some value of a multi-valued attribute matches.
    ValuePath(AttrPath, Box<Filter>),
    /// `a and b`.
    And(Box<Filter>, Box<Filter>),
    /// `a or b`.
    Or(Box<Filter>, Box<Filter>),
    /// `not (a)`.
    Not(Box<Filter>),
}

/// An attribute path: a name and an optional sub-attribute, schema URN removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttrPath {
    /// The attribute, as written (matched without regard to case).
    pub name: String,
    /// The sub-attribute, if any.
    pub sub: Option<String>,
}

impl AttrPath {
    /// Parses `name`, `name.sub`, or either after a schema URN (`urn:…:User:name`).
    pub fn parse(text: &str) -> Result<AttrPath, ScimError> {
        // The attribute follows the URN's last colon; a dot in the URN's version
        // (`2.0`) comes before it.
        let local = text.rsplit(':').next().unwrap_or(text);
        let (name, sub) = match local.split_once('.') {
            Some((name, sub)) => (name, Some(sub)),
            None => (local, None),
        };
        let valid = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphabetic() || b == b'$')
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b'-')
        };
        if !valid(name) || !sub.is_none_or(valid) {
            return Err(ScimError::new(
                ScimType::InvalidPath,
                "an attribute path is malformed",
            ));
        }
        Ok(AttrPath {
            name: name.to_owned(),
            sub: sub.map(str::to_owned),
        })
    }

    /// The values this path names in `resource`: one per element of a multi-valued
    /// attribute.
    fn values<'a>(&self, resource: &'a Value) -> Vec<&'a Value> {
        let Some(top) = member(resource, &self.name) else {
            return Vec::new();
        };
        let items: Vec<&Value> = match top {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        match &self.sub {
            None => items,
            Some(sub) => items.into_iter().filter_map(|v| member(v, sub)).collect(),
        }
    }

    fn exact(&self) -> bool {
        case_exact(&self.name, self.sub.as_deref())
    }
}

/// The attribute of `object` named `name`, matched without regard to case.
pub fn member<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    object
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Whether string values of this attribute compare with regard to case: ids and
/// references do (RFC 7643 §3.1 and §4.2 declare them `caseExact`), names do not.
pub fn case_exact(name: &str, sub: Option<&str>) -> bool {
    let name = name.to_ascii_lowercase();
    match sub.map(str::to_ascii_lowercase).as_deref() {
        None => matches!(name.as_str(), "id" | "externalid"),
        Some(sub) => matches!(sub, "value" | "$ref") || name == "meta",
    }
}

impl Filter {
    /// Parses a filter.
    pub fn parse(text: &str) -> Result<Filter, ScimError> {
        if text.len() > MAX_FILTER_BYTES {
            return Err(invalid("the filter is too long"));
        }
        let tokens = tokenize(text)?;
        let mut parser = Parser { tokens, at: 0 };
        let filter = parser.or(0)?;
        if parser.at != parser.tokens.len() {
            return Err(invalid("the filter has text after its end"));
        }
        Ok(filter)
    }

    /// Whether `resource` (a JSON object) matches.
    pub fn matches(&self, resource: &Value) -> bool {
        match self {
            Filter::Present(path) => path.values(resource).iter().any(|v| present(v)),
            Filter::Compare(path, op, want) => {
                let exact = path.exact();
                path.values(resource)
                    .iter()
                    .any(|have| compare(have, *op, want, exact))
            }
            Filter::ValuePath(path, inner) => {
                path.values(resource).iter().any(|v| inner.matches(v))
            }
            Filter::And(a, b) => a.matches(resource) && b.matches(resource),
            Filter::Or(a, b) => a.matches(resource) || b.matches(resource),
            Filter::Not(a) => !a.matches(resource),
        }
    }
}

fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

fn compare(have: &Value, op: Compare, want: &Value, exact: bool) -> bool {
    use std::cmp::Ordering;
    let fold = |s: &str| {
        if exact {
            s.to_owned()
        } else {
            s.to_lowercase()
        }
    };
    let ordering: Option<Ordering> = match (have, want) {
        (Value::String(h), Value::String(w)) => {
            let (h, w) = (fold(h), fold(w));
            match op {
                Compare::Co => return h.contains(&w),
                Compare::Sw => return h.starts_with(&w),
                Compare::Ew => return h.ends_with(&w),
                _ => Some(h.cmp(&w)),
            }
        }
        (Value::Number(h), Value::Number(w)) => h
            .as_f64()
            .zip(w.as_f64())
            .and_then(|(h, w)| h.partial_cmp(&w)),
        (Value::Bool(h), Value::Bool(w)) => {
            return match op {
                Compare::Eq => h == w,
                Compare::Ne => h != w,
                _ => false,
            };
        }
        (_, Value::Null) => {
            return match op {
                Compare::Eq => !present(have),
                Compare::Ne => present(have),
                _ => false,
            };
        }
        _ => None,
    };
    let Some(ordering) = ordering else {
        return op == Compare::Ne;
    };
    match op {
        Compare::Eq => ordering == Ordering::Equal,
        Compare::Ne => ordering != Ordering::Equal,
        Compare::Gt => ordering == Ordering::Greater,
        Compare::Ge => ordering != Ordering::Less,
        Compare::Lt => ordering == Ordering::Less,
        Compare::Le => ordering != Ordering::Greater,
        Compare::Co | Compare::Sw | Compare::Ew => false,
    }
}

fn invalid(detail: &str) -> ScimError {
    ScimError::new(ScimType::InvalidFilter, detail)
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    Word(String),
    Literal(Value),
}

fn tokenize(text: &str) -> Result<Vec<Token>, ScimError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            b')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            b'[' => {
                tokens.push(Token::OpenBracket);
                i += 1;
            }
            b']' => {
                tokens.push(Token::CloseBracket);
                i += 1;
            }
            b'"' => {
                // A JSON string: find its closing quote, skipping escaped ones.
                let mut j = i + 1;
                while j < bytes.len() && bytes[j] != b'"' {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                if j >= bytes.len() {
                    return Err(invalid("a string in the filter is not closed"));
                }
                let value: Value = serde_json::from_str(&text[i..=j])
                    .map_err(|_| invalid("a string in the filter is malformed"))?;
                tokens.push(Token::Literal(value));
                i = j + 1;
            }
            _ => {
                let start = i;
                while i < bytes.len()
                    && !matches!(
                        bytes[i],
                        b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')' | b'[' | b']' | b'"'
                    )
                {
                    i += 1;
                }
                let word = &text[start..i];
                let literal = match word.to_ascii_lowercase().as_str() {
                    "true" => Some(Value::Bool(true)),
                    "false" => Some(Value::Bool(false)),
                    "null" => Some(Value::Null),
                    _ => None,
                };
                tokens.push(match literal {
                    Some(v) => Token::Literal(v),
                    None if word
                        .bytes()
                        .next()
                        .is_some_and(|b| b.is_ascii_digit() || b == b'-') =>
                    {
                        Token::Literal(
                            serde_json::from_str::<serde_json::Number>(word)
                                .map(Value::Number)
                                .map_err(|_| invalid("a number in the filter is malformed"))?,
                        )
                    }
                    None => Token::Word(word.to_owned()),
                });
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn or(&mut self, depth: usize) -> Result<Filter, ScimError> {
        let mut left = self.and(depth)?;
        while self.keyword("or") {
            self.at += 1;
            let right = self.and(depth)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Filter, ScimError> {
        let mut left = self.unary(depth)?;
        while self.keyword("and") {
            self.at += 1;
            let right = self.unary(depth)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self, depth: usize) -> Result<Filter, ScimError> {
        if depth >= MAX_DEPTH {
            return Err(invalid("the filter is nested too deeply"));
        }
        if self.keyword("not") {
            self.at += 1;
            return Ok(Filter::Not(Box::new(self.group(depth + 1)?)));
        }
        if self.peek() == Some(&Token::Open) {
            return self.group(depth + 1);
        }
        let Some(Token::Word(attr)) = self.next() else {
            return Err(invalid("an attribute was expected"));
        };
        let path = AttrPath::parse(&attr).map_err(|_| invalid("an attribute path is malformed"))?;
        if self.peek() == Some(&Token::OpenBracket) {
            self.at += 1;
            let inner = self.or(depth + 1)?;
            if self.next() != Some(Token::CloseBracket) {
                return Err(invalid("a '[' is not closed"));
            }
            return Ok(Filter::ValuePath(path, Box::new(inner)));
        }
        let Some(Token::Word(op)) = self.next() else {
            return Err(invalid("an operator was expected"));
        };
        let op = match op.to_ascii_lowercase().as_str() {
            "pr" => return Ok(Filter::Present(path)),
            "eq" => Compare::Eq,
            "ne" => Compare::Ne,
            "co" => Compare::Co,
            "sw" => Compare::Sw,
            "ew" => Compare::Ew,
            "gt" => Compare::Gt,
            "ge" => Compare::Ge,
            "lt" => Compare::Lt,
            "le" => Compare::Le,
            _ => return Err(invalid("an unknown operator")),
        };
        let Some(Token::Literal(value)) = self.next() else {
            return Err(invalid(
                "a value (a quoted string, a number, true, false or null) was expected",
            ));
        };
        Ok(Filter::Compare(path, op, value))
    }

    fn group(&mut self, depth: usize) -> Result<Filter, ScimError> {
        if self.next() != Some(Token::Open) {
            return Err(invalid("a '(' was expected"));
        }
        let inner = self.or(depth)?;
        if self.next() != Some(Token::Close) {
            return Err(invalid("a '(' is not closed"));
        }
        Ok(inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "id": "alice",
            "userName": "Alice",
            "displayName": "Alice Liddell",
            "active": true,
            "externalId": "E-17",
            "groups": [{"value": "g1", "display": "Support"}, {"value": "g2", "display": "Leads"}],
            "meta": {"lastModified": "2026-12-01T10:00:00Z"}
        })
    }

    fn check(filter: &str) -> bool {
        Filter::parse(filter).unwrap().matches(&user())
    }

    // RFC 7644 §3.4.2.2: attribute names and operators are case-insensitive; userName
    // is not caseExact (RFC 7643 §4.1.1), so its values compare without case.
    #[test]
    fn names_operators_and_non_exact_values_ignore_case() {
        assert!(check(r#"USERNAME EQ "alice""#));
        assert!(check(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "ALICE""#
        ));
        assert!(!check(r#"userName eq "bob""#));
        // externalId is caseExact.
        assert!(check(r#"externalId eq "E-17""#));
        assert!(!check(r#"externalId eq "e-17""#));
    }

    #[test]
    fn every_operator_and_logic() {
        assert!(check(r#"displayName co "lidd""#));
        assert!(check(r#"displayName sw "alice""#));
        assert!(check(r#"displayName ew "LIDDELL""#));
        assert!(check(r#"meta.lastModified gt "2026-11-30T00:00:00Z""#));
        assert!(!check(r#"meta.lastModified lt "2026-11-30T00:00:00Z""#));
        assert!(check("active eq true and not (active eq false)"));
        assert!(check(
            r#"userName eq "x" or (displayName pr and externalId ne "E-18")"#
        ));
        assert!(!check("nickName pr"));
        assert!(check(r#"groups[value eq "g2" and display sw "lead"]"#));
        assert!(check(r#"groups.value eq "g1""#));
        assert!(!check(r#"groups[value eq "g3"]"#));
    }

    #[test]
    fn malformed_filters_are_refused_with_invalid_filter() {
        for bad in [
            "",
            "userName",
            r#"userName xx "a""#,
            r#"userName eq"#,
            r#"userName eq "a" and"#,
            r#"(userName eq "a""#,
            r#"groups[value eq "a""#,
            r#"userName eq "a" extra"#,
            r#"userName eq "unterminated"#,
            r#"1abc eq "a""#,
        ] {
            let err = Filter::parse(bad).unwrap_err();
            assert_eq!(err.scim_type, ScimType::InvalidFilter, "{bad}");
        }
    }

    #[test]
    fn deep_or_long_filters_are_refused_without_overflowing_the_stack() {
        let deep = format!(
            "{}userName pr{}",
            "not (".repeat(10_000),
            ")".repeat(10_000)
        );
        assert!(Filter::parse(&deep).is_err());
        let nested = format!("{}userName pr{}", "(".repeat(17), ")".repeat(17));
        assert_eq!(
            Filter::parse(&nested).unwrap_err().scim_type,
            ScimType::InvalidFilter
        );
        let fine = format!("{}userName pr{}", "(".repeat(8), ")".repeat(8));
        assert!(Filter::parse(&fine).unwrap().matches(&user()));
    }
}
