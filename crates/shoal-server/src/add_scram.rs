//! `--add-scram`: SCRAM credentials a new cluster starts with, in the syntax of Kafka's
//! `kafka-storage format --add-scram` (`SCRAM-SHA-256=[name=admin,password=admin-secret]`,
//! optionally `iterations=8192`). They are written with the cluster's bootstrap entry, so a
//! secured cluster has its first (super) user before any listener opens: no plaintext window.
//! On a node whose quorum already exists they are ignored, with a warning: credentials then
//! change only through AlterUserScramCredentials.

use shoal_sasl::{ScramCredential, ScramMechanism};

/// Kafka's default iteration count for `--add-scram` (ScramFormatter's 4096 is the floor;
/// 8192 doubles the cost of a guess).
pub const DEFAULT_ITERATIONS: u32 = 8_192;

/// Parses one `--add-scram` value into (user, credential), salting the password now.
pub fn parse_add_scram(raw: &str) -> Result<(String, ScramCredential), String> {
    let (mechanism, rest) = raw
        .split_once('=')
        .ok_or_else(|| "expected MECHANISM=[name=…,password=…]".to_owned())?;
    let mechanism = ScramMechanism::from_name(mechanism.trim()).map_err(|e| e.to_string())?;
    let body = rest
        .trim()
        .strip_prefix('[')
        .and_then(|b| b.strip_suffix(']'))
        .ok_or_else(|| "the attributes go in brackets: [name=…,password=…]".to_owned())?;
    let (mut name, mut password, mut iterations) = (None, None, DEFAULT_ITERATIONS);
    for attribute in body.split(',') {
        let (key, value) = attribute
            .split_once('=')
            .ok_or_else(|| format!("attribute {attribute:?} is not key=value"))?;
        let value = value.trim().trim_matches('"');
        match key.trim() {
            "name" => name = Some(value.to_owned()),
            "password" => password = Some(value.to_owned()),
            "iterations" => {
                iterations = value
                    .parse()
                    .map_err(|_| format!("iterations {value:?} is not a number"))?;
            }
            other => {
                return Err(format!(
                    "unknown attribute {other:?} (name, password, iterations)"
                ));
            }
        }
    }
    let name = name.filter(|n| !n.is_empty()).ok_or("name=… is required")?;
    let password = password
        .filter(|p| !p.is_empty())
        .ok_or("password=… is required")?;
    let credential = ScramCredential::from_password(mechanism, &password, iterations)
        .map_err(|e| e.to_string())?;
    Ok((name, credential))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn kafka_storage_format_syntax() {
        let (name, c) =
            parse_add_scram("SCRAM-SHA-256=[name=admin,password=admin-secret]").unwrap();
        assert_eq!(name, "admin");
        assert_eq!(
            (c.mechanism, c.iterations),
            (ScramMechanism::Sha256, DEFAULT_ITERATIONS)
        );
        assert!(c.verifies(b"admin-secret"));
        let (_, c) =
            parse_add_scram("SCRAM-SHA-512=[name=\"ops\",password=\"p w\",iterations=4096]")
                .unwrap();
        assert_eq!((c.mechanism, c.iterations), (ScramMechanism::Sha512, 4096));
        assert!(c.verifies(b"p w"));
        for bad in [
            "SCRAM-SHA-256",
            "PLAIN=[name=a,password=b]",
            "SCRAM-SHA-256=name=a,password=b",
            "SCRAM-SHA-256=[name=a]",
            "SCRAM-SHA-256=[password=b]",
            "SCRAM-SHA-256=[name=a,password=b,iterations=10]",
            "SCRAM-SHA-256=[name=a,password=b,salt=c]",
        ] {
            assert!(parse_add_scram(bad).is_err(), "{bad}");
        }
    }
}
