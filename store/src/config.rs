//! The repository `config` file: GLib key-file syntax (`[group]`, `key=value`, `#` comments).
//! Edits keep the file's other lines, comments and order intact.

/// A parsed key file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyFile {
    lines: Vec<Line>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Line {
    Group(String),
    Entry(String, String),
    Other(String),
}

impl KeyFile {
    /// Parses key-file text; lines that are neither groups nor entries are kept verbatim.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut lines = Vec::new();
        let mut in_group = false;
        for (n, raw) in text.lines().enumerate() {
            let t = raw.trim();
            if t.is_empty() || t.starts_with('#') {
                lines.push(Line::Other(raw.to_string()));
            } else if let Some(g) = t.strip_prefix('[').and_then(|g| g.strip_suffix(']')) {
                in_group = true;
                lines.push(Line::Group(g.to_string()));
            } else if let Some((k, v)) = t.split_once('=') {
                if !in_group {
                    return Err(format!("line {}: key outside of any group", n + 1));
                }
                lines.push(Line::Entry(
                    k.trim().to_string(),
                    v.trim_start().to_string(),
                ));
            } else {
                return Err(format!(
                    "line {}: not a group, key or comment: {raw:?}",
                    n + 1
                ));
            }
        }
        Ok(KeyFile { lines })
    }

    /// The value of `key` in `group`.
    pub fn get(&self, group: &str, key: &str) -> Option<&str> {
        let mut current = None;
        for line in &self.lines {
            match line {
                Line::Group(g) => current = Some(g.as_str()),
                Line::Entry(k, v) if current == Some(group) && k == key => return Some(v),
                _ => {}
            }
        }
        None
    }

    /// A boolean value (`true`/`false`, as GLib spells them).
    pub fn get_bool(&self, group: &str, key: &str) -> Result<Option<bool>, String> {
        match self.get(group, key) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(format!("{group}.{key}: not a boolean: {other:?}")),
        }
    }

    /// Sets `key` in `group`, adding the group at the end when it is missing.
    pub fn set(&mut self, group: &str, key: &str, value: &str) {
        let mut current = None;
        let mut group_end = None;
        for (i, line) in self.lines.iter_mut().enumerate() {
            match line {
                Line::Group(g) => current = Some(g.clone()),
                Line::Entry(k, v) if current.as_deref() == Some(group) && k == key => {
                    *v = value.to_string();
                    return;
                }
                _ => {}
            }
            if current.as_deref() == Some(group) && !matches!(line, Line::Other(_)) {
                group_end = Some(i + 1);
            }
        }
        let entry = Line::Entry(key.to_string(), value.to_string());
        match group_end {
            Some(i) => self.lines.insert(i, entry),
            None => {
                // GKeyFile separates groups with a blank line.
                if !self.lines.is_empty() && self.lines.last() != Some(&Line::Other(String::new()))
                {
                    self.lines.push(Line::Other(String::new()));
                }
                self.lines.push(Line::Group(group.to_string()));
                self.lines.push(entry);
            }
        }
    }

    /// Removes `key` from `group`; returns whether it was there.
    pub fn remove(&mut self, group: &str, key: &str) -> bool {
        let mut current = None;
        let before = self.lines.len();
        self.lines.retain(|line| match line {
            Line::Group(g) => {
                current = Some(g.clone());
                true
            }
            Line::Entry(k, _) => !(current.as_deref() == Some(group) && k == key),
            Line::Other(_) => true,
        });
        before != self.lines.len()
    }

    /// Removes a group with its keys; returns whether it was there. Like GKeyFile, removing
    /// the last group also drops the blank line that separated it from the one before.
    pub fn remove_group(&mut self, group: &str) -> bool {
        let Some(start) = self
            .lines
            .iter()
            .position(|l| matches!(l, Line::Group(g) if g == group))
        else {
            return false;
        };
        let end = self.lines[start + 1..]
            .iter()
            .position(|l| matches!(l, Line::Group(_)))
            .map_or(self.lines.len(), |i| start + 1 + i);
        let was_last = end == self.lines.len();
        self.lines.drain(start..end);
        if was_last && self.lines.last() == Some(&Line::Other(String::new())) {
            self.lines.pop();
        }
        true
    }

    /// The groups, in file order.
    pub fn groups(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                Line::Group(g) => Some(g.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The text, one line each, ending in a newline.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            match line {
                Line::Group(g) => out.push_str(&format!("[{g}]")),
                Line::Entry(k, v) => out.push_str(&format!("{k}={v}")),
                Line::Other(s) => out.push_str(s),
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_get_set_keeps_layout() {
        let mut kf = KeyFile::parse("[core]\nrepo_version=1\nmode=bare\n").unwrap();
        assert_eq!(kf.get("core", "mode"), Some("bare"));
        kf.set("core", "fsync", "false");
        kf.set("remote \"o\"", "url", "http://x");
        assert_eq!(
            kf.to_text(),
            "[core]\nrepo_version=1\nmode=bare\nfsync=false\n\n[remote \"o\"]\nurl=http://x\n"
        );
        assert!(KeyFile::parse("oops\n").is_err());
    }
}
