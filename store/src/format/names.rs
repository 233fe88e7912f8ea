//! Validation of names inside dirtrees.

/// Checks a dirtree entry name as ostree does: not empty, `.`, `..`, and without `/`.
pub fn validate_filename(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Invalid empty filename".into());
    }
    if name == "." || name == ".." {
        return Err(format!("Invalid special element '{name}' in filename"));
    }
    if name.contains('/') {
        return Err(format!("Invalid / in filename {name}"));
    }
    Ok(())
}
