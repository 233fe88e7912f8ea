//! Kernel arguments as ostree's `OstreeKernelArgs` keeps them: an ordered list of `KEY[=VALUE]`
//! entries where one key may repeat (`console=` twice), and "replace" keeps the position of the
//! key's first occurrence. The order is what ends up on the BLS `options` line, so it matters.

/// An ordered list of kernel arguments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelArgs {
    entries: Vec<(String, Option<String>)>,
}

fn split(arg: &str) -> (String, Option<String>) {
    match arg.split_once('=') {
        Some((k, v)) => (k.to_string(), Some(v.to_string())),
        None => (arg.to_string(), None),
    }
}

impl KernelArgs {
    /// Parses a space-separated `options` line. Like ostree (`g_strsplit`), it splits on every
    /// single space, so the line round-trips unchanged, and an empty line has no arguments.
    pub fn from_string(options: &str) -> Self {
        let mut kargs = KernelArgs::default();
        if !options.is_empty() {
            kargs.append_all(options.split(' '));
        }
        kargs
    }

    /// Adds `arg` at the end, keeping earlier values of the same key.
    pub fn append(&mut self, arg: &str) {
        self.entries.push(split(arg));
    }

    /// Appends every argument.
    pub fn append_all<'a>(&mut self, args: impl IntoIterator<Item = &'a str>) {
        for arg in args {
            self.append(arg);
        }
    }

    /// Sets `arg`: every value of its key is dropped and the new one takes the place of the
    /// first; a new key goes at the end.
    pub fn replace(&mut self, arg: &str) {
        let (key, value) = split(arg);
        match self.entries.iter().position(|(k, _)| *k == key) {
            Some(first) => {
                self.entries.retain(|(k, _)| *k != key);
                self.entries.insert(first, (key, value));
            }
            None => self.entries.push((key, value)),
        }
    }

    /// Deletes `KEY` (when it has one value) or `KEY=VALUE`, with ostree's errors.
    pub fn delete(&mut self, arg: &str) -> Result<(), String> {
        let (key, value) = split(arg);
        let positions: Vec<usize> = (0..self.entries.len())
            .filter(|&i| self.entries[i].0 == key)
            .collect();
        let at = match positions.as_slice() {
            [] => return Err(format!("No key '{key}' found")),
            [only] => {
                if value.is_some() && value != self.entries[*only].1 {
                    return Err(format!("No karg '{arg}' found"));
                }
                *only
            }
            many => match many.iter().find(|&&i| self.entries[i].1 == value) {
                Some(&i) => i,
                None if value.is_none() => {
                    return Err(format!("Multiple values for key '{arg}' found"));
                }
                None => return Err(format!("No karg '{arg}' found")),
            },
        };
        self.entries.remove(at);
        Ok(())
    }

    /// Changes one value of a key already there, keeping its position: `KEY=NEW` when the key
    /// has one value, `KEY=OLD=NEW` to pick the value (rpm-ostree's `kargs --replace`).
    pub fn replace_value(&mut self, arg: &str) -> Result<(), String> {
        let (key, value) = split(arg);
        let positions: Vec<usize> = (0..self.entries.len())
            .filter(|&i| self.entries[i].0 == key)
            .collect();
        if positions.is_empty() {
            return Err(format!("No key '{key}' found"));
        }
        let (at, new) = match value.as_deref().and_then(|v| v.split_once('=')) {
            Some((old, new)) => {
                let at = positions
                    .iter()
                    .copied()
                    .find(|&i| self.entries[i].1.as_deref() == Some(old))
                    .ok_or_else(|| format!("No karg '{key}={old}' found"))?;
                (at, Some(new.to_string()))
            }
            None if positions.len() > 1 => {
                return Err(format!("Multiple values for key '{key}' found"));
            }
            None => (positions[0], value),
        };
        self.entries[at].1 = new;
        Ok(())
    }

    /// Applies `edits` in their order: deletions, replacements, appends, appends if missing.
    pub fn apply(&mut self, edits: &Edits) -> Result<(), String> {
        for arg in &edits.delete {
            self.delete(arg)?;
        }
        for arg in &edits.replace {
            self.replace_value(arg)?;
        }
        self.append_all(edits.append.iter().map(String::as_str));
        for arg in &edits.append_if_missing {
            self.append_if_missing(arg);
        }
        Ok(())
    }

    /// Appends `arg` unless its key is already set.
    pub fn append_if_missing(&mut self, arg: &str) {
        let (key, _) = split(arg);
        if !self.entries.iter().any(|(k, _)| *k == key) {
            self.append(arg);
        }
    }

    /// The arguments, each `KEY` or `KEY=VALUE`.
    pub fn to_strv(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{k}={v}"),
                None => k.clone(),
            })
            .collect()
    }
}

/// Changes to kernel arguments, as `admin kargs edit-in-place` takes them.
#[derive(Clone, Debug, Default)]
pub struct Edits {
    /// `KEY` or `KEY=VALUE` to delete ([`KernelArgs::delete`]).
    pub delete: Vec<String>,
    /// `KEY=NEW` or `KEY=OLD=NEW` ([`KernelArgs::replace_value`]).
    pub replace: Vec<String>,
    /// Arguments to append.
    pub append: Vec<String>,
    /// Arguments to append unless their key is set.
    pub append_if_missing: Vec<String>,
}

impl std::fmt::Display for KernelArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_strv().join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::KernelArgs;

    #[test]
    fn replace_keeps_the_first_position_and_append_repeats() {
        let mut k =
            KernelArgs::from_string("ostree=/old root=/dev/a console=ttyS0 console=tty0 quiet");
        k.replace("console=hvc0");
        k.replace("ostree=/new");
        k.append("console=tty1");
        k.replace("rw");
        assert_eq!(
            k.to_string(),
            "ostree=/new root=/dev/a console=hvc0 quiet console=tty1 rw"
        );
        assert_eq!(KernelArgs::from_string("a  b").to_string(), "a  b");
        assert_eq!(KernelArgs::from_string("").to_strv(), Vec::<String>::new());
    }

    #[test]
    fn replace_value_changes_one_value_in_place() {
        let mut k = KernelArgs::from_string("a=1 c=2 c=3 d quiet");
        assert_eq!(k.replace_value("x=1").unwrap_err(), "No key 'x' found");
        assert_eq!(
            k.replace_value("c=9").unwrap_err(),
            "Multiple values for key 'c' found"
        );
        assert_eq!(k.replace_value("c=9=1").unwrap_err(), "No karg 'c=9' found");
        k.replace_value("c=3=4").unwrap();
        k.replace_value("a=5").unwrap();
        k.replace_value("d=on").unwrap();
        k.replace_value("quiet").unwrap();
        assert_eq!(k.to_string(), "a=5 c=2 c=4 d=on quiet");
        let edits = super::Edits {
            delete: vec!["c=2".into()],
            replace: vec!["c=5".into()],
            append: vec!["c=6".into()],
            append_if_missing: vec!["a=7".into(), "e".into()],
        };
        k.apply(&edits).unwrap();
        assert_eq!(k.to_string(), "a=5 c=5 d=on quiet c=6 e");
    }

    #[test]
    fn delete_needs_the_value_when_a_key_repeats() {
        let mut k = KernelArgs::from_string("a=1 c c=2 c=3 d=4");
        assert_eq!(k.delete("x").unwrap_err(), "No key 'x' found");
        assert_eq!(k.delete("a=2").unwrap_err(), "No karg 'a=2' found");
        assert_eq!(k.delete("c=9").unwrap_err(), "No karg 'c=9' found");
        k.delete("c").unwrap();
        assert_eq!(
            k.delete("c").unwrap_err(),
            "Multiple values for key 'c' found"
        );
        k.delete("c=3").unwrap();
        k.delete("a").unwrap();
        k.delete("d=4").unwrap();
        assert_eq!(k.to_string(), "c=2");
    }
}
