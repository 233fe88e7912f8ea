//! Which deployments stay when a new one is added (`ostree_sysroot_simple_write_deployment`),
//! and the order `admin rollback` makes.

use super::Sysroot;
use super::deployment::Deployment;

/// What `admin deploy` keeps besides the new deployment.
#[derive(Clone, Copy, Debug, Default)]
pub struct Retention {
    /// `--retain`: keep every deployment.
    pub all: bool,
    /// `--retain-pending`: keep deployments before the booted (or merge) one.
    pub pending: bool,
    /// `--retain-rollback`: keep deployments after the booted (or merge) one.
    pub rollback: bool,
    /// `--not-as-default`: put the new deployment after the booted (or merge) one instead of
    /// first.
    pub not_as_default: bool,
}

/// The new deployment list: the new deployment first (or right after the booted/merge one),
/// then the deployments kept: pinned ones, other stateroots', the booted and merge ones, and
/// those the retention flags ask for.
pub fn new_deployment_list(
    sysroot: &Sysroot,
    osname: &str,
    new: Deployment,
    merge: Option<&Deployment>,
    r: Retention,
) -> Vec<Deployment> {
    let booted = sysroot.booted_deployment();
    let mut retain = r.all;
    // Without a booted or merge deployment there is no crossover: keep everything.
    if booted.is_none() && merge.is_none() && (r.pending || r.rollback) {
        retain = true;
    }
    let mut out = Vec::new();
    let mut new = Some(new);
    if !r.not_as_default {
        out.extend(new.take());
    }
    let (mut before_booted, mut before_merge) = (true, true);
    for d in &sysroot.deployments {
        let is_booted = booted.is_some_and(|b| b.same_as(d));
        let is_merge = merge.is_some_and(|m| m.same_as(d));
        if is_booted {
            before_booted = false;
        }
        if is_merge {
            before_merge = false;
        }
        let passed_crossover = if booted.is_some() {
            !before_booted
        } else {
            !before_merge
        };
        if retain
            || d.is_pinned()
            || d.osname != osname
            || (r.pending && !passed_crossover)
            || is_booted
            || is_merge
            || (r.rollback && passed_crossover)
        {
            out.push(d.clone());
        }
        if passed_crossover && new.is_some() {
            out.extend(new.take());
        }
    }
    out.extend(new.take());
    out
}

/// `admin rollback`: the list with the deployment to go back to moved first. Booted: the
/// booted one if something is pending before it, else the rollback one (the first after it).
/// Not booted: the second deployment of `osname`, as the first is what would boot.
pub fn rollback_list(sysroot: &Sysroot, osname: &str) -> Option<Vec<Deployment>> {
    let target = match sysroot.booted_deployment() {
        Some(b) => match sysroot.query_pending_rollback(osname) {
            (Some(_), _) if b.osname == osname => Some(b),
            (_, rollback) => rollback,
        },
        None => sysroot
            .deployments
            .iter()
            .filter(|d| d.osname == osname)
            .nth(1),
    }?;
    let mut list = vec![target.clone()];
    list.extend(
        sysroot
            .deployments
            .iter()
            .filter(|d| !d.same_as(target))
            .cloned(),
    );
    Some(list)
}
