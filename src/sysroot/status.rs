//! `admin status`: the deployments in boot order, worded exactly as `ostree admin status`
//! 2022.7 prints them, or as JSON.

use super::Sysroot;
use super::bootloader::commit_version;
use super::deployment::Deployment;
use std::io::Write;

/// What status shows of one deployment.
struct Row<'a> {
    d: &'a Deployment,
    booted: bool,
    pending: bool,
    rollback: bool,
    version: Option<String>,
    source_title: Option<String>,
}

fn rows(sysroot: &Sysroot) -> Vec<Row<'_>> {
    let (pending, rollback) = match sysroot.booted_deployment() {
        Some(b) => sysroot.query_pending_rollback(&b.osname),
        None => (None, None),
    };
    let is = |x: Option<&Deployment>, d: &Deployment| x.is_some_and(|x| x.same_as(d));
    sysroot
        .deployments
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let meta = |key: &str| -> Option<String> {
                let id = rostree_store::ObjectId::from_hex(&d.csum).ok()?;
                let c = sysroot.repo.read_commit(&id).ok()?;
                c.metadata
                    .iter()
                    .find(|(k, _)| k == key)
                    .and_then(|(_, v)| v.as_str().map(str::to_string))
            };
            Row {
                d,
                booted: sysroot.booted == Some(i),
                pending: is(pending, d),
                rollback: is(rollback, d),
                version: commit_version(sysroot, &d.csum),
                source_title: meta("ostree.source-title"),
            }
        })
        .collect()
}

/// Prints ostree's text.
pub fn print_text(sysroot: &Sysroot, out: &mut dyn Write) -> std::io::Result<()> {
    let rows = rows(sysroot);
    if rows.is_empty() {
        return writeln!(out, "No deployments.");
    }
    for r in rows {
        let state = if r.pending {
            " (pending)"
        } else if r.rollback {
            " (rollback)"
        } else {
            ""
        };
        writeln!(
            out,
            "{} {} {}.{}{state}",
            if r.booted { '*' } else { ' ' },
            r.d.osname,
            r.d.csum,
            r.d.deployserial
        )?;
        if let Some(v) = &r.version {
            writeln!(out, "    Version: {v}")?;
        }
        if r.d.unlocked != "none" {
            // Red and bold on a terminal, as ostree prints it.
            let tty = std::io::IsTerminal::is_terminal(&std::io::stdout());
            let (start, end) = if tty {
                ("\x1b[31m\x1b[1m", "\x1b[0m\x1b[22m")
            } else {
                ("", "")
            };
            writeln!(out, "    {start}Unlocked: {}{end}", r.d.unlocked)?;
        }
        if r.d.is_pinned() {
            writeln!(out, "    Pinned: yes")?;
        }
        match &r.d.origin {
            None => writeln!(out, "    origin: none")?,
            Some(_) => {
                match r.d.origin_refspec() {
                    Some(spec) => writeln!(out, "    origin refspec: {spec}")?,
                    None => writeln!(out, "    origin: <unknown origin type>")?,
                }
                if let Some(t) = &r.source_title {
                    writeln!(out, "    `- {t}")?;
                }
            }
        }
    }
    Ok(())
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_opt(s: Option<&str>) -> String {
    s.map(json_str).unwrap_or_else(|| "null".into())
}

/// Prints the deployments as one JSON object:
/// `{"bootversion":N,"subbootversion":M,"deployments":[{...}]}`, each deployment with
/// `index`, `osname`, `checksum`, `serial`, `booted`, `pending`, `rollback`, `pinned`,
/// `unlocked`, `version`, `refspec`, `bootcsum`, `bootserial` and `kargs` (null when absent).
pub fn print_json(sysroot: &Sysroot, out: &mut dyn Write) -> std::io::Result<()> {
    let items: Vec<String> = rows(sysroot)
        .iter()
        .map(|r| {
            format!(
                "{{\"index\":{},\"osname\":{},\"checksum\":{},\"serial\":{},\"booted\":{},\"pending\":{},\"rollback\":{},\"pinned\":{},\"unlocked\":{},\"version\":{},\"refspec\":{},\"bootcsum\":{},\"bootserial\":{},\"kargs\":{}}}",
                r.d.index,
                json_str(&r.d.osname),
                json_str(&r.d.csum),
                r.d.deployserial,
                r.booted,
                r.pending,
                r.rollback,
                r.d.is_pinned(),
                json_str(r.d.unlocked),
                json_opt(r.version.as_deref()),
                json_opt(r.d.origin_refspec()),
                json_str(&r.d.bootcsum),
                r.d.bootserial,
                json_opt(r.d.bootconfig.get("options")),
            )
        })
        .collect();
    writeln!(
        out,
        "{{\"bootversion\":{},\"subbootversion\":{},\"deployments\":[{}]}}",
        sysroot.bootversion,
        sysroot.subbootversion,
        items.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::json_str;

    #[test]
    fn json_strings_escape() {
        assert_eq!(json_str("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\u0001é\"");
    }
}
