//! `config get|set|unset SECTION.KEY [VALUE]`.

use super::util::open_repo;
use std::path::Path;
use std::process::ExitCode;

/// Options of `config`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// `get`, `set` or `unset`.
    action: String,
    /// `SECTION.KEY`, e.g. `core.mode` or `remote "origin".url`.
    key: String,
    /// The value, for `set`.
    value: Option<String>,
    /// Operate on the group given as argument (with `get`/`set`/`unset` taking KEY).
    #[arg(long)]
    group: Option<String>,
}

/// Splits `SECTION.KEY` at the last dot (sections may contain dots and quotes).
fn split_key(key: &str) -> anyhow::Result<(String, String)> {
    key.rsplit_once('.')
        .map(|(g, k)| (g.to_string(), k.to_string()))
        .ok_or_else(|| anyhow::anyhow!("Key must be of the form \"sectionname.keyname\""))
}

/// Runs `config`.
pub fn run(repo: Option<&Path>, args: Args) -> anyhow::Result<ExitCode> {
    let mut repo = open_repo(repo)?;
    let (group, key) = match &args.group {
        Some(g) => (g.clone(), args.key.clone()),
        None => split_key(&args.key)?,
    };
    match args.action.as_str() {
        "get" => {
            let config = repo.config();
            anyhow::ensure!(
                config.groups().contains(&group.as_str()),
                "Key file does not have group “{group}”"
            );
            let value = config.get(&group, &key).ok_or_else(|| {
                anyhow::anyhow!("Key file does not have key “{key}” in group “{group}”")
            })?;
            println!("{value}");
        }
        "set" => {
            let value = args
                .value
                .ok_or_else(|| anyhow::anyhow!("You must specify a value to set"))?;
            let mut config = repo.config().clone();
            config.set(&group, &key, &value);
            repo.write_config(config)?;
        }
        "unset" => {
            let mut config = repo.config().clone();
            config.remove(&group, &key);
            repo.write_config(config)?;
        }
        other => anyhow::bail!("Unknown operation {other}"),
    }
    Ok(ExitCode::SUCCESS)
}
