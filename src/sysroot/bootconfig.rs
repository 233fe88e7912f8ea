//! Boot Loader Specification entries (`/boot/loader.N/entries/ostree-*.conf`), read and written
//! as ostree's `OstreeBootconfigParser` does: `KEY VALUE` lines, later keys win, a second
//! `initrd` is an overlay initrd; written in the spec's key order, then the other keys.

use rostree_store::ghash::ghash_order;

/// The keys written first, in this order (the BLS example's order).
const ORDERED_KEYS: [&str; 6] = [
    "title",
    "version",
    "options",
    "devicetree",
    "linux",
    "initrd",
];

/// One boot entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BootConfig {
    /// Keys and values in first-insertion order (the order GLib's hash table saw them).
    options: Vec<(String, String)>,
    /// `initrd` lines after the first.
    overlay_initrds: Vec<String>,
}

impl BootConfig {
    /// Parses an entry's text. Lines not starting with a letter are ignored, as are lines
    /// without a value.
    pub fn parse(text: &str) -> Self {
        let mut config = BootConfig::default();
        for line in text.split('\n') {
            if !line.starts_with(|c: char| c.is_ascii_alphabetic()) {
                continue;
            }
            let Some(sep) = line.find([' ', '\t']) else {
                continue;
            };
            let (key, value) = (&line[..sep], &line[sep + 1..]);
            if key == "initrd" && config.get("initrd").is_some() {
                config.overlay_initrds.push(value.to_string());
            } else {
                config.set(key, value);
            }
        }
        config
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `key` (replacing its value in place).
    pub fn set(&mut self, key: &str, value: &str) {
        match self.options.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.options.push((key.to_string(), value.to_string())),
        }
    }

    /// Overlay initrds (extra `initrd` lines).
    pub fn overlay_initrds(&self) -> &[String] {
        &self.overlay_initrds
    }

    /// The entry's text: the BLS keys in order, overlay initrds, then any other key in the
    /// order GLib's hash table iterates them.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for key in ORDERED_KEYS {
            if let Some(v) = self.get(key) {
                out.push_str(&format!("{key} {v}\n"));
            }
        }
        if self.get("initrd").is_some() {
            for initrd in &self.overlay_initrds {
                out.push_str(&format!("initrd {initrd}\n"));
            }
        }
        let all: Vec<&str> = self.options.iter().map(|(k, _)| k.as_str()).collect();
        for key in ghash_order(&all) {
            if ORDERED_KEYS.contains(&key.as_str()) {
                continue;
            }
            if let Some(v) = self.get(&key) {
                out.push_str(&format!("{key} {v}\n"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::BootConfig;

    #[test]
    fn entries_round_trip_in_bls_order() {
        let text =
            "linux /vmlinuz\ntitle T\n# comment\noptions a b\ninitrd /i1\ninitrd /i2\nversion 1\n";
        let c = BootConfig::parse(text);
        assert_eq!(c.get("options"), Some("a b"));
        assert_eq!(c.overlay_initrds(), ["/i2"]);
        assert_eq!(
            c.to_text(),
            "title T\nversion 1\noptions a b\nlinux /vmlinuz\ninitrd /i1\ninitrd /i2\n"
        );
    }
}
