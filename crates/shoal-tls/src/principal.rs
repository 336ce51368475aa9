//! Who a TLS client is: its certificate's subject, mapped by Kafka's `ssl.principal.mapping.rules`.
//!
//! Kafka names a TLS client `User:<name>`, where the name is the subject's distinguished name in
//! RFC 2253 form (`CN=alice,OU=eng,O=corp`: most specific first, no spaces) passed through the
//! rules: `RULE:<regex>/<replacement>/[L|U]` tried in order (the first whose regex matches the
//! whole name wins; `$1`… refer to its groups; `L`/`U` lower- or upper-case the result) and
//! `DEFAULT` (the name unchanged). A name no rule maps is refused, as Kafka refuses it. A client
//! without a certificate is `User:ANONYMOUS`.

use regex::Regex;

use crate::error::TlsError;

/// The principal of a connection that proved nothing.
pub const ANONYMOUS: &str = "User:ANONYMOUS";

/// `ssl.principal.mapping.rules`, parsed.
#[derive(Debug, Clone)]
pub struct PrincipalMapper {
    rules: Vec<MappingRule>,
}

#[derive(Debug, Clone)]
enum MappingRule {
    Default,
    Rewrite {
        pattern: Regex,
        /// The replacement with Kafka's `$N` references made explicit (`${N}`).
        replacement: String,
        case: Case,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Keep,
    Lower,
    Upper,
}

impl PrincipalMapper {
    /// Parses the rules (`DEFAULT` when empty).
    pub fn parse(rules: &str) -> Result<PrincipalMapper, TlsError> {
        let invalid = |reason: String| TlsError::Setting {
            name: "ssl.principal.mapping.rules".to_owned(),
            reason,
        };
        let mut parsed = Vec::new();
        let mut rest = rules.trim();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                parsed.push(MappingRule::Default);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let (pattern, after) = until_slash(after)
                    .ok_or_else(|| invalid(format!("rule {rest:?} has no /replacement/")))?;
                let (replacement, after) = until_slash(after)
                    .ok_or_else(|| invalid(format!("rule {rest:?} has no closing /")))?;
                let (case, after) = match after.as_bytes().first() {
                    Some(b'L') => (Case::Lower, &after[1..]),
                    Some(b'U') => (Case::Upper, &after[1..]),
                    _ => (Case::Keep, after),
                };
                let regex = Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|e| invalid(format!("rule pattern {pattern:?}: {e}")))?;
                let groups = regex.captures_len() - 1;
                parsed.push(MappingRule::Rewrite {
                    replacement: explicit_references(&replacement, groups),
                    pattern: regex,
                    case,
                });
                rest = after;
            } else {
                return Err(invalid(format!(
                    "{rest:?} is not DEFAULT or RULE:pattern/replacement/[LU]"
                )));
            }
            rest = rest.trim_start();
            match rest.strip_prefix(',') {
                Some(after) => rest = after.trim_start(),
                None if rest.is_empty() => {}
                None => return Err(invalid(format!("unexpected {rest:?} after a rule"))),
            }
        }
        if parsed.is_empty() {
            parsed.push(MappingRule::Default);
        }
        Ok(PrincipalMapper { rules: parsed })
    }

    /// The principal (`User:<name>`) for a distinguished name, or `None` if no rule maps it.
    pub fn principal(&self, distinguished_name: &str) -> Option<String> {
        self.rules.iter().find_map(|rule| match rule {
            MappingRule::Default => Some(format!("User:{distinguished_name}")),
            MappingRule::Rewrite {
                pattern,
                replacement,
                case,
            } => {
                let captures = pattern.captures(distinguished_name)?;
                let mut name = String::new();
                captures.expand(replacement, &mut name);
                let name = match case {
                    Case::Keep => name,
                    Case::Lower => name.to_lowercase(),
                    Case::Upper => name.to_uppercase(),
                };
                Some(format!("User:{name}"))
            }
        })
    }
}

/// Splits `text` at its first unescaped `/`: (before, after). `\x` escapes are kept for the
/// regex, except `\/`, which is a plain `/`.
fn until_slash(text: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '/' => return Some((out, &text[i + 1..])),
            '\\' => match chars.next() {
                Some((_, '/')) => out.push('/'),
                Some((_, escaped)) => {
                    out.push('\\');
                    out.push(escaped);
                }
                None => out.push('\\'),
            },
            other => out.push(other),
        }
    }
    None
}

/// Kafka's back references: `$N` uses group N, the longest such prefix of the digits that is a
/// group; a reference to no group is literal text.
fn explicit_references(replacement: &str, groups: usize) -> String {
    let mut out = String::new();
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
            digits.push(d);
            chars.next();
        }
        if digits.is_empty() {
            out.push_str("$$");
            continue;
        }
        let mut used = digits.len();
        while used > 1 && digits[..used].parse::<usize>().map_or(true, |n| n > groups) {
            used -= 1;
        }
        match digits[..used].parse::<usize>() {
            Ok(n) if n <= groups && !digits.starts_with('0') || digits == "0" => {
                out.push_str(&format!("${{{n}}}"));
                out.push_str(&digits[used..]);
            }
            _ => {
                out.push_str("$$");
                out.push_str(&digits);
            }
        }
    }
    out
}

/// The certificate subject as RFC 2253 text (what Java's `X500Principal.getName()` gives):
/// RDNs most specific first, `,` between them, special characters escaped.
pub fn distinguished_name(certificate_der: &[u8]) -> Result<String, TlsError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(certificate_der).map_err(|e| TlsError::Pem {
            what: "client certificate".to_owned(),
            reason: format!("does not parse: {e}"),
        })?;
    let mut rdns: Vec<String> = Vec::new();
    for rdn in cert.subject().iter() {
        let mut parts = Vec::new();
        for attribute in rdn.iter() {
            let oid = attribute.attr_type().to_id_string();
            let key = match oid.as_str() {
                "2.5.4.3" => "CN".to_owned(),
                "2.5.4.7" => "L".to_owned(),
                "2.5.4.8" => "ST".to_owned(),
                "2.5.4.10" => "O".to_owned(),
                "2.5.4.11" => "OU".to_owned(),
                "2.5.4.6" => "C".to_owned(),
                "2.5.4.9" => "STREET".to_owned(),
                "0.9.2342.19200300.100.1.25" => "DC".to_owned(),
                "0.9.2342.19200300.100.1.1" => "UID".to_owned(),
                other => other.to_owned(),
            };
            let value = attribute
                .as_str()
                .map(escape)
                .unwrap_or_else(|_| format!("#{}", hex(attribute.attr_value().data)));
            parts.push(format!("{key}={value}"));
        }
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    Ok(rdns.join(","))
}

/// RFC 2253 escaping of an attribute value.
fn escape(value: &str) -> String {
    let mut out = String::new();
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn kafka_mapping_rules() {
        let dn = "CN=alice,OU=ServiceUsers,O=Corp,L=Oslo,ST=Oslo,C=NO";
        for (rules, name, principal) in [
            (
                "",
                dn,
                Some("User:CN=alice,OU=ServiceUsers,O=Corp,L=Oslo,ST=Oslo,C=NO"),
            ),
            (
                "DEFAULT",
                dn,
                Some("User:CN=alice,OU=ServiceUsers,O=Corp,L=Oslo,ST=Oslo,C=NO"),
            ),
            (
                "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/",
                dn,
                Some("User:alice"),
            ),
            (
                "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/U",
                dn,
                Some("User:ALICE"),
            ),
            (
                "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L",
                dn,
                Some("User:alice@serviceusers"),
            ),
            // The first matching rule wins; a non-matching one falls through.
            (
                "RULE:^CN=(.*?),OU=Admins.*$/admin-$1/, RULE:^CN=(.*?),.*$/$1/, DEFAULT",
                dn,
                Some("User:alice"),
            ),
            (
                "RULE:^CN=(.*?),OU=Admins.*$/admin-$1/,DEFAULT",
                dn,
                Some("User:CN=alice,OU=ServiceUsers,O=Corp,L=Oslo,ST=Oslo,C=NO"),
            ),
            // No rule applies: refused.
            ("RULE:^CN=(.*?),OU=Admins.*$/$1/", dn, None),
            // A reference to no group is literal; $12 with one group is $1 then "2".
            ("RULE:^CN=(.*?),.*$/$1$9/", dn, Some("User:alice$9")),
            ("RULE:^CN=(.*?),.*$/$12/", dn, Some("User:alice2")),
            // An escaped slash inside the pattern.
            ("RULE:^CN=(.*?)\\/x,.*$/$1/", "CN=a/x,O=b", Some("User:a")),
        ] {
            let mapper = PrincipalMapper::parse(rules).unwrap();
            assert_eq!(mapper.principal(name).as_deref(), principal, "{rules:?}");
        }
    }

    #[test]
    fn malformed_rules_are_refused() {
        for rules in [
            "RULE:^CN=(.*)$",
            "RULE:^CN=(.*)$/$1",
            "RULE:^CN=((.*)$/$1/",
            "NONSENSE",
            "DEFAULT DEFAULT",
        ] {
            assert!(PrincipalMapper::parse(rules).is_err(), "{rules:?}");
        }
    }

    #[test]
    fn values_are_escaped_as_rfc_2253_says() {
        assert_eq!(escape("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape(" lead"), "\\ lead");
        assert_eq!(escape("#hash"), "\\#hash");
        assert_eq!(escape("trail "), "trail\\ ");
        assert_eq!(escape("plain"), "plain");
    }
}
