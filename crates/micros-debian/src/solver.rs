//! Which packages a system needs: the dependency closure of the requested
//! packages, solved by resolvo (a CDCL SAT solver), honouring Depends,
//! Pre-Depends, version constraints, alternatives, virtual packages
//! (Provides), Conflicts and Breaks.
//!
//! How Debian maps onto resolvo, whose solvables each have one name:
//!
//! ```text
//! real name  "runit"            candidates: every runit version (one may be chosen)
//! virtual    "awk (virtual)"    candidates: one per provider (mawk 1.3.4, gawk 5.2, …),
//!                               several may be chosen; each requires its provider
//! Depends "a (>= 1) | awk"  →   requirement: union of {a, >= 1} ∪ {a (virtual), >= 1} ∪ {awk} ∪ {awk (virtual)}
//! Conflicts "b (<< 2)"      →   constraint on b: not (<< 2); on b (virtual): only own
//! ```
//!
//! Packages the user or a module excludes count as present: a dependency
//! group naming one is dropped. Essential packages are not added unless
//! asked for: MicrOS images contain what they need, no more.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use resolvo::utils::Pool;
use resolvo::{
    Candidates, Condition, ConditionId, ConditionalRequirement, Dependencies, DependencyProvider,
    Interner, KnownDependencies, NameId, Problem, SolvableId, Solver, SolverCache, StringId,
    UnsolvableOrCancelled, VersionSetId, VersionSetUnionId,
};

use crate::index::Package;
use crate::relation::{Alternatives, Constraint, Dependency};
use crate::version::Version;

/// A package the solver may choose, or a virtual package one provides.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Record {
    Real {
        index: usize,
        version: Version,
    },
    Provided {
        provider: usize,
        provider_name: String,
        provider_version: Version,
        version: Option<Version>,
    },
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Record::Real { version, .. } => write!(f, "{version}"),
            Record::Provided {
                provider_name,
                provider_version,
                version,
                ..
            } => {
                write!(f, "provided by {provider_name} {provider_version}")?;
                if let Some(version) = version {
                    write!(f, " as version {version}")?;
                }
                Ok(())
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Set {
    /// Versions matching the constraint (any without one).
    Matching(Option<Constraint>),
    /// Exactly this package (a virtual package's link to its provider).
    Exactly(usize),
    /// What a conflict allows: versions *not* matching the constraint, and
    /// anything the conflicting package itself provides.
    Allowed {
        conflict: Option<Constraint>,
        own: String,
    },
}

impl fmt::Display for Set {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Set::Matching(None) => write!(f, "*"),
            Set::Matching(Some(constraint)) => write!(f, "{constraint}"),
            Set::Exactly(_) => write!(f, "(this provider)"),
            Set::Allowed {
                conflict: None,
                own,
            } => write!(f, "(none: {own} conflicts)"),
            Set::Allowed {
                conflict: Some(constraint),
                own,
            } => write!(f, "not {constraint} ({own} conflicts)"),
        }
    }
}

impl resolvo::utils::VersionSet for Set {
    type V = Record;
}

/// What to solve for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The packages asked for by name (config, kernel, modules).
    pub packages: Vec<String>,
    /// Packages treated as present: name → why it may be dropped.
    pub exclude: BTreeMap<String, String>,
    /// Versions to keep if possible (from an existing lock).
    pub prefer: BTreeMap<String, Version>,
}

/// An exclusion that removed something from the closure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedExclusion {
    pub reason: String,
    /// The chosen packages whose dependency it dropped.
    pub required_by: BTreeSet<String>,
}

#[derive(Debug, Clone)]
pub struct Solution {
    /// Indexes into the universe, sorted by package name.
    pub packages: Vec<usize>,
    pub exclusions: BTreeMap<String, AppliedExclusion>,
}

#[derive(Debug, thiserror::Error)]
pub enum SolveError {
    #[error("cannot satisfy the requested packages:\n{explanation}")]
    Unsatisfiable { explanation: String },
    #[error("no package named `{name}` in the archive for this architecture{}", suggestion.as_ref().map(|s| format!("\nhint: did you mean `{s}`?")).unwrap_or_default())]
    UnknownPackage {
        name: String,
        suggestion: Option<String>,
    },
}

struct Provider<'a> {
    pool: Pool<Set, String>,
    universe: &'a [Package],
    request: &'a Request,
    real: HashMap<String, (NameId, Vec<SolvableId>)>,
    virtual_names: HashMap<String, (NameId, Vec<SolvableId>)>,
    priority: Vec<u8>,
}

fn virtual_label(name: &str) -> String {
    format!("{name} (virtual)")
}

impl<'a> Provider<'a> {
    fn new(universe: &'a [Package], request: &'a Request, priority: Vec<u8>) -> Self {
        let pool = Pool::new();
        let mut real: HashMap<String, (NameId, Vec<SolvableId>)> = HashMap::new();
        let mut virtual_names: HashMap<String, (NameId, Vec<SolvableId>)> = HashMap::new();
        for (index, package) in universe.iter().enumerate() {
            let name = pool.intern_package_name(package.name.clone());
            let solvable = pool.intern_solvable(
                name,
                Record::Real {
                    index,
                    version: package.version.clone(),
                },
            );
            real.entry(package.name.clone())
                .or_insert_with(|| (name, Vec::new()))
                .1
                .push(solvable);
        }
        for (index, package) in universe.iter().enumerate() {
            for provided in &package.provides {
                let name = pool.intern_package_name(virtual_label(&provided.name));
                let record = Record::Provided {
                    provider: index,
                    provider_name: package.name.clone(),
                    provider_version: package.version.clone(),
                    version: provided.constraint.as_ref().map(|c| c.version.clone()),
                };
                let solvable = pool.intern_solvable(name, record);
                virtual_names
                    .entry(provided.name.clone())
                    .or_insert_with(|| (name, Vec::new()))
                    .1
                    .push(solvable);
            }
        }
        Provider {
            pool,
            universe,
            request,
            real,
            virtual_names,
            priority,
        }
    }

    fn excluded(&self, name: &str) -> bool {
        self.request.exclude.contains_key(name)
    }

    /// The version sets that satisfy one alternative.
    fn sets_for(&self, dependency: &Dependency) -> Vec<VersionSetId> {
        let mut sets = Vec::new();
        let set = Set::Matching(dependency.constraint.clone());
        if let Some((name, _)) = self.virtual_names.get(&dependency.name) {
            sets.push(self.pool.intern_version_set(*name, set.clone()));
        }
        // A name nobody has still gets a version set, so that the solver can
        // explain that nothing satisfies it.
        if self.real.contains_key(&dependency.name) || sets.is_empty() {
            let name = self.pool.intern_package_name(dependency.name.clone());
            sets.insert(0, self.pool.intern_version_set(name, set));
        }
        sets
    }

    fn requirement(&self, group: &Alternatives) -> Option<ConditionalRequirement> {
        if group
            .iter()
            .any(|dependency| self.excluded(&dependency.name))
        {
            return None;
        }
        let sets: Vec<VersionSetId> = group
            .iter()
            .flat_map(|dependency| self.sets_for(dependency))
            .collect();
        Some(match sets.as_slice() {
            [single] => (*single).into(),
            _ => self
                .pool
                .intern_version_set_union(sets[0], sets[1..].iter().copied())
                .into(),
        })
    }

    fn record(&self, solvable: SolvableId) -> &Record {
        &self.pool.resolve_solvable(solvable).record
    }

    fn matches(&self, set: &Set, record: &Record) -> bool {
        match (set, record) {
            (Set::Matching(None), _) => true,
            (Set::Matching(Some(constraint)), Record::Real { version, .. }) => {
                constraint.matches(version)
            }
            (Set::Matching(Some(constraint)), Record::Provided { version, .. }) => {
                version.as_ref().is_some_and(|v| constraint.matches(v))
            }
            (Set::Exactly(index), Record::Real { index: other, .. }) => index == other,
            (Set::Exactly(_), Record::Provided { .. }) => false,
            (Set::Allowed { conflict, .. }, Record::Real { version, .. }) => {
                conflict.as_ref().is_some_and(|c| !c.matches(version))
            }
            (
                Set::Allowed { conflict, own },
                Record::Provided {
                    provider_name,
                    version,
                    ..
                },
            ) => {
                provider_name == own
                    || conflict
                        .as_ref()
                        .is_some_and(|c| version.as_ref().is_some_and(|v| !c.matches(v)))
            }
        }
    }
}

impl Interner for Provider<'_> {
    type NameId = NameId;
    type SolvableId = SolvableId;

    fn display_solvable(&self, solvable: SolvableId) -> impl fmt::Display + '_ {
        let solvable = self.pool.resolve_solvable(solvable);
        format!(
            "{} {}",
            self.pool.resolve_package_name(solvable.name),
            solvable.record
        )
    }

    fn display_name(&self, name: NameId) -> impl fmt::Display + '_ {
        self.pool.resolve_package_name(name).clone()
    }

    fn display_version_set(&self, version_set: VersionSetId) -> impl fmt::Display + '_ {
        self.pool.resolve_version_set(version_set).to_string()
    }

    fn display_string(&self, string_id: StringId) -> impl fmt::Display + '_ {
        self.pool.resolve_string(string_id).to_owned()
    }

    fn version_set_name(&self, version_set: VersionSetId) -> NameId {
        self.pool.resolve_version_set_package_name(version_set)
    }

    fn solvable_name(&self, solvable: SolvableId) -> NameId {
        self.pool.resolve_solvable(solvable).name
    }

    fn version_sets_in_union(
        &self,
        version_set_union: VersionSetUnionId,
    ) -> impl Iterator<Item = VersionSetId> {
        self.pool.resolve_version_set_union(version_set_union)
    }

    fn resolve_condition(&self, condition: ConditionId) -> Condition {
        self.pool.resolve_condition(condition).clone()
    }
}

impl DependencyProvider for Provider<'_> {
    async fn filter_candidates(
        &self,
        candidates: &[SolvableId],
        version_set: VersionSetId,
        inverse: bool,
    ) -> Vec<SolvableId> {
        let set = self.pool.resolve_version_set(version_set);
        candidates
            .iter()
            .copied()
            .filter(|&solvable| self.matches(set, self.record(solvable)) != inverse)
            .collect()
    }

    async fn get_candidates(&self, name: NameId) -> Option<Candidates> {
        let label = self.pool.resolve_package_name(name);
        if let Some((_, solvables)) = self.real.get(label) {
            let locked = self.request.prefer.get(label).and_then(|version| {
                solvables.iter().copied().find(
                    |&s| matches!(self.record(s), Record::Real { version: v, .. } if v == version),
                )
            });
            return Some(Candidates {
                candidates: solvables.clone(),
                favored: locked,
                ..Candidates::default()
            });
        }
        if let Some(real_name) = label.strip_suffix(" (virtual)") {
            if let Some((_, solvables)) = self.virtual_names.get(real_name) {
                return Some(Candidates {
                    candidates: solvables.clone(),
                    allow_multiple: true,
                    ..Candidates::default()
                });
            }
        }
        Some(Candidates::default())
    }

    async fn sort_candidates(&self, _solver: &SolverCache<Self>, solvables: &mut [SolvableId]) {
        // Newest version first; among providers of a virtual package, the
        // most important (Priority) first, then by name, so the choice is
        // stable.
        solvables.sort_by(|&a, &b| match (self.record(a), self.record(b)) {
            (Record::Real { version: va, .. }, Record::Real { version: vb, .. }) => vb.cmp(va),
            (
                Record::Provided {
                    provider: pa,
                    provider_name: na,
                    provider_version: va,
                    ..
                },
                Record::Provided {
                    provider: pb,
                    provider_name: nb,
                    provider_version: vb,
                    ..
                },
            ) => self.priority[*pa]
                .cmp(&self.priority[*pb])
                .then_with(|| na.cmp(nb))
                .then_with(|| vb.cmp(va)),
            (Record::Real { .. }, _) => std::cmp::Ordering::Less,
            (_, Record::Real { .. }) => std::cmp::Ordering::Greater,
        });
    }

    async fn get_dependencies(&self, solvable: SolvableId) -> Dependencies {
        let mut dependencies = KnownDependencies::default();
        match self.record(solvable) {
            Record::Provided {
                provider,
                provider_name,
                ..
            } => {
                let name = self.real[provider_name].0;
                dependencies.requirements.push(
                    self.pool
                        .intern_version_set(name, Set::Exactly(*provider))
                        .into(),
                );
            }
            Record::Real { index, .. } => {
                let package = &self.universe[*index];
                for group in package.pre_depends.iter().chain(&package.depends) {
                    if let Some(requirement) = self.requirement(group) {
                        dependencies.requirements.push(requirement);
                    }
                }
                for dependency in package.conflicts.iter().chain(&package.breaks).flatten() {
                    if dependency.name != package.name {
                        if let Some((name, _)) = self.real.get(&dependency.name) {
                            let set = Set::Allowed {
                                conflict: dependency.constraint.clone(),
                                own: package.name.clone(),
                            };
                            dependencies
                                .constrains
                                .push(self.pool.intern_version_set(*name, set));
                        }
                    }
                    if let Some((name, _)) = self.virtual_names.get(&dependency.name) {
                        let set = Set::Allowed {
                            conflict: dependency.constraint.clone(),
                            own: package.name.clone(),
                        };
                        dependencies
                            .constrains
                            .push(self.pool.intern_version_set(*name, set));
                    }
                }
            }
        }
        Dependencies::Known(dependencies)
    }
}

/// Debian's `Priority` ranks, most important first; unknown last.
pub fn priority_rank(priority: Option<&str>) -> u8 {
    match priority {
        Some("required") => 0,
        Some("important") => 1,
        Some("standard") => 2,
        Some("optional") => 3,
        Some("extra") => 4,
        _ => 5,
    }
}

/// Solves `request` over `universe` (the packages of one architecture and
/// `all`). Deterministic: the same inputs give the same solution.
pub fn solve(universe: &[Package], request: &Request) -> Result<Solution, SolveError> {
    let priority: Vec<u8> = universe
        .iter()
        .map(|p| priority_rank(p.priority.as_deref()))
        .collect();
    let provider = Provider::new(universe, request, priority);
    for name in &request.packages {
        if !provider.real.contains_key(name) && !provider.virtual_names.contains_key(name) {
            let suggestion = closest(name, provider.real.keys());
            return Err(SolveError::UnknownPackage {
                name: name.clone(),
                suggestion,
            });
        }
    }
    let requirements: Vec<ConditionalRequirement> = request
        .packages
        .iter()
        .filter_map(|name| {
            provider.requirement(&vec![Dependency {
                name: name.clone(),
                arch: None,
                constraint: None,
            }])
        })
        .collect();
    let mut solver = Solver::new(provider);
    let solvables = match solver.solve(Problem::new().requirements(requirements)) {
        Ok(solvables) => solvables,
        Err(UnsolvableOrCancelled::Unsolvable(conflict)) => {
            return Err(SolveError::Unsatisfiable {
                explanation: conflict.display_user_friendly(&solver).to_string(),
            })
        }
        Err(UnsolvableOrCancelled::Cancelled(_)) => unreachable!("the provider never cancels"),
    };
    let provider = solver.provider();
    let mut packages: Vec<usize> = solvables
        .into_iter()
        .filter_map(|s| match provider.record(s) {
            Record::Real { index, .. } => Some(*index),
            Record::Provided { .. } => None,
        })
        .collect();
    packages.sort_by(|&a, &b| universe[a].name.cmp(&universe[b].name));
    packages.dedup();

    let mut exclusions: BTreeMap<String, AppliedExclusion> = BTreeMap::new();
    for &index in &packages {
        let package = &universe[index];
        for group in package.pre_depends.iter().chain(&package.depends) {
            for dependency in group
                .iter()
                .filter(|d| request.exclude.contains_key(&d.name))
            {
                exclusions
                    .entry(dependency.name.clone())
                    .or_insert_with(|| AppliedExclusion {
                        reason: request.exclude[&dependency.name].clone(),
                        required_by: BTreeSet::new(),
                    })
                    .required_by
                    .insert(package.name.clone());
            }
        }
    }
    Ok(Solution {
        packages,
        exclusions,
    })
}

fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a String>) -> Option<String> {
    candidates
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score > 0.9)
        .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, c)| c.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::parse_packages;

    fn universe(text: &str) -> Vec<Package> {
        let mut paragraphs = String::new();
        for block in text.split("\n\n") {
            let name = block
                .lines()
                .next()
                .unwrap()
                .trim_start_matches("Package: ");
            paragraphs.push_str(block);
            paragraphs.push_str(&format!(
                "\nArchitecture: amd64\nFilename: pool/{name}.deb\nSize: 10\nSHA256: {}\n\n",
                "0".repeat(64)
            ));
        }
        parse_packages("test", &paragraphs).unwrap()
    }

    fn names(universe: &[Package], solution: &Solution) -> Vec<String> {
        solution
            .packages
            .iter()
            .map(|&i| format!("{}={}", universe[i].name, universe[i].version))
            .collect()
    }

    fn request(packages: &[&str]) -> Request {
        Request {
            packages: packages.iter().map(|s| s.to_string()).collect(),
            ..Request::default()
        }
    }

    #[test]
    fn closure_with_versions_takes_the_newest_that_fits() {
        let u = universe("Package: app\nVersion: 1\nDepends: lib (>= 2), lib (<< 4)\n\nPackage: lib\nVersion: 1\n\nPackage: lib\nVersion: 3\n\nPackage: lib\nVersion: 4\n\nPackage: unrelated\nVersion: 1\nEssential: yes");
        let s = solve(&u, &request(&["app"])).unwrap();
        assert_eq!(names(&u, &s), ["app=1", "lib=3"]);
    }

    #[test]
    fn alternatives_and_virtual_packages() {
        let u = universe("Package: app\nVersion: 1\nDepends: missing | awk, mail-transport-agent\n\nPackage: mawk\nVersion: 1.3\nProvides: awk\nPriority: required\n\nPackage: gawk\nVersion: 5\nProvides: awk\nPriority: optional\n\nPackage: exim\nVersion: 4\nProvides: mail-transport-agent\nConflicts: mail-transport-agent");
        let s = solve(&u, &request(&["app"])).unwrap();
        assert_eq!(names(&u, &s), ["app=1", "exim=4", "mawk=1.3"]);
    }

    #[test]
    fn versioned_provides_satisfy_versioned_dependencies() {
        let u = universe("Package: app\nVersion: 1\nDepends: virt (>= 2)\n\nPackage: old\nVersion: 1\nProvides: virt (= 1)\n\nPackage: new\nVersion: 1\nProvides: virt (= 2)");
        let s = solve(&u, &request(&["app"])).unwrap();
        assert_eq!(names(&u, &s), ["app=1", "new=1"]);
    }

    #[test]
    fn conflicts_and_breaks_are_honoured() {
        let u = universe("Package: app\nVersion: 1\nDepends: a, b\n\nPackage: a\nVersion: 1\nBreaks: b (<< 2)\n\nPackage: b\nVersion: 1\n\nPackage: b\nVersion: 2");
        let s = solve(&u, &request(&["app"])).unwrap();
        assert_eq!(names(&u, &s), ["a=1", "app=1", "b=2"]);

        let u = universe("Package: app\nVersion: 1\nDepends: a, b\n\nPackage: a\nVersion: 1\nConflicts: b\n\nPackage: b\nVersion: 1");
        let error = solve(&u, &request(&["app"])).unwrap_err().to_string();
        assert!(error.contains("cannot satisfy"), "{error}");
        assert!(error.contains("b"), "{error}");
    }

    #[test]
    fn unsatisfiable_requests_explain_the_constraint_and_the_versions() {
        let u = universe("Package: app\nVersion: 1\nDepends: lib (>= 5)\n\nPackage: lib\nVersion: 1\n\nPackage: lib\nVersion: 2");
        let error = solve(&u, &request(&["app"])).unwrap_err().to_string();
        assert!(error.contains("lib (>= 5)"), "{error}");
        assert!(error.contains("app"), "{error}");
    }

    #[test]
    fn exclusions_drop_dependencies_and_are_recorded() {
        let u = universe("Package: runit\nVersion: 2\nDepends: libc6, sysuser-helper\n\nPackage: libc6\nVersion: 2.41\n\nPackage: sysuser-helper\nVersion: 1\nDepends: perl-base\n\nPackage: perl-base\nVersion: 5");
        let mut r = request(&["runit"]);
        r.exclude.insert(
            "sysuser-helper".into(),
            "only maintainer scripts use it".into(),
        );
        let s = solve(&u, &r).unwrap();
        assert_eq!(names(&u, &s), ["libc6=2.41", "runit=2"]);
        let applied = &s.exclusions["sysuser-helper"];
        assert_eq!(applied.required_by.iter().collect::<Vec<_>>(), ["runit"]);
    }

    #[test]
    fn preferred_versions_are_kept() {
        let u = universe("Package: lib\nVersion: 1\n\nPackage: lib\nVersion: 2");
        let mut r = request(&["lib"]);
        r.prefer.insert("lib".into(), Version::parse("1").unwrap());
        assert_eq!(names(&u, &solve(&u, &r).unwrap()), ["lib=1"]);
    }

    #[test]
    fn unknown_packages_get_a_suggestion() {
        let u = universe("Package: busybox-static\nVersion: 1");
        let error = solve(&u, &request(&["busybox-statc"]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("did you mean `busybox-static`"), "{error}");
    }
}
