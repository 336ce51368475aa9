//! Client settings every librdkafka client of the run gets: a Kafka client properties file
//! (`--command-config`, `key=value` lines) and `-X key=value` flags, as kcat's. They are applied
//! after each client's own settings, so `security.protocol`, `sasl.*` and `ssl.*` reach a secured
//! cluster (and a flag may also change a tuning default). Flags come after the file: the last
//! value of a key wins.

use std::path::Path;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;

/// The settings, in the order they are applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientSettings(Vec<(String, String)>);

impl ClientSettings {
    /// Every setting, in the order applied (a later one wins).
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// The file's settings (when given), then the flags'. The error is one line for the user.
    pub fn load(file: Option<&Path>, flags: &[(String, String)]) -> Result<ClientSettings, String> {
        let mut settings = Vec::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read --command-config {}: {e}", path.display()))?;
            settings = parse_properties(&text)
                .map_err(|e| format!("--command-config {}: {e}", path.display()))?;
        }
        settings.extend(flags.iter().cloned());
        let settings = ClientSettings(settings);
        settings.check()?;
        Ok(settings)
    }

    /// Sets every setting on `config`, over what it already holds.
    pub fn apply<'a>(&self, config: &'a mut ClientConfig) -> &'a mut ClientConfig {
        for (key, value) in &self.0 {
            config.set(key, value);
        }
        config
    }

    /// Whether librdkafka knows every name and accepts every value, so a typo fails the run
    /// before it starts. The value is left out of the message: it may be a password.
    fn check(&self) -> Result<(), String> {
        match self.apply(&mut ClientConfig::new()).create_native_config() {
            Ok(_) => Ok(()),
            Err(KafkaError::ClientConfig(_, description, key, _)) => {
                Err(format!("client setting {key}: {description}"))
            }
            Err(e) => Err(format!("client settings: {e}")),
        }
    }
}

/// One `-X key=value` flag.
pub fn parse_flag(raw: &str) -> Result<(String, String), String> {
    parse_line(raw).map_err(|e| format!("{e}, not {raw:?}"))
}

/// `key=value` lines; blank lines and lines starting with `#` or `!` (Java properties' comments)
/// are skipped, and space around keys and values is trimmed. Java's `key: value` form and line
/// continuations are not read: they are refused with the line number rather than misread.
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        if line.ends_with('\\') {
            return Err(format!(
                "line {}: continued lines (a trailing \\) are not supported",
                index + 1
            ));
        }
        let (key, value) = parse_line(line).map_err(|e| format!("line {}: {e}", index + 1))?;
        out.push((key, value));
    }
    Ok(out)
}

fn parse_line(line: &str) -> Result<(String, String), String> {
    match line.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.trim().to_owned()))
        }
        Some(_) => Err("expected key=value, the key is empty".into()),
        None => Err("expected key=value".into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn reads_key_value_lines_and_skips_comments_and_blanks() {
        let text = "# admin over SASL_SSL\n\
                    security.protocol=SASL_SSL\n\
                    \n\
                    ! a Java-style comment\n\
                    \x20 sasl.mechanism = SCRAM-SHA-512 \n\
                    sasl.username=admin\n\
                    sasl.password=a=b#c\n\
                    ssl.ca.location=/certs/ca.pem\r\n";
        assert_eq!(
            parse_properties(text).unwrap(),
            pairs(&[
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "SCRAM-SHA-512"),
                ("sasl.username", "admin"),
                // Only the first '=' splits, and '#' inside a value is part of it.
                ("sasl.password", "a=b#c"),
                ("ssl.ca.location", "/certs/ca.pem"),
            ])
        );
        assert_eq!(parse_properties("").unwrap(), vec![]);
        assert_eq!(parse_properties("empty=").unwrap(), pairs(&[("empty", "")]));
    }

    #[test]
    fn a_bad_line_is_named_by_its_number() {
        assert_eq!(
            parse_properties("a=1\n\nsecurity.protocol SASL_SSL\n").unwrap_err(),
            "line 3: expected key=value"
        );
        assert_eq!(
            parse_properties("# c\n=x").unwrap_err(),
            "line 2: expected key=value, the key is empty"
        );
        assert!(
            parse_properties("sasl.jaas.config=a \\\n  b")
                .unwrap_err()
                .starts_with("line 1: continued lines")
        );
    }

    #[test]
    fn flags_look_like_kcat_ones() {
        assert_eq!(
            parse_flag("security.protocol=SSL").unwrap(),
            ("security.protocol".to_owned(), "SSL".to_owned())
        );
        assert_eq!(
            parse_flag("security.protocol").unwrap_err(),
            "expected key=value, not \"security.protocol\""
        );
    }

    #[test]
    fn load_puts_flags_after_the_file_and_checks_names() {
        let dir = std::env::temp_dir().join(format!("shoal-chaos-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("client.properties");
        std::fs::write(&file, "security.protocol=SSL\nsocket.timeout.ms=7000\n").unwrap();
        let flags = pairs(&[("socket.timeout.ms", "9000")]);
        let settings = ClientSettings::load(Some(&file), &flags).unwrap();
        assert_eq!(
            settings.0,
            pairs(&[
                ("security.protocol", "SSL"),
                ("socket.timeout.ms", "7000"),
                ("socket.timeout.ms", "9000"),
            ])
        );

        std::fs::write(&file, "no.such.setting=1\n").unwrap();
        let e = ClientSettings::load(Some(&file), &[]).unwrap_err();
        assert!(e.contains("no.such.setting"), "{e}");
        std::fs::write(&file, "oops\n").unwrap();
        let e = ClientSettings::load(Some(&file), &[]).unwrap_err();
        assert!(
            e.ends_with("client.properties: line 1: expected key=value"),
            "{e}"
        );
        let e = ClientSettings::load(Some(&dir.join("missing")), &[]).unwrap_err();
        assert!(e.starts_with("cannot read --command-config "), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();

        let e = ClientSettings::load(None, &pairs(&[("security.protocol", "carrier-pigeon")]))
            .unwrap_err();
        assert!(e.starts_with("client setting security.protocol:"), "{e}");
        assert_eq!(
            ClientSettings::load(None, &[]).unwrap(),
            ClientSettings::default()
        );
    }

    #[test]
    fn settings_win_over_a_clients_own_defaults() {
        let settings = ClientSettings(pairs(&[
            ("security.protocol", "SASL_SSL"),
            ("socket.timeout.ms", "9000"),
        ]));
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", "127.0.0.1:19092")
            .set("socket.timeout.ms", "3000");
        settings.apply(&mut config);
        assert_eq!(config.get("socket.timeout.ms"), Some("9000"));
        assert_eq!(config.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(config.get("bootstrap.servers"), Some("127.0.0.1:19092"));
    }
}
