//! What a program does with its singletons at startup: warm the eager ones, check the names,
//! print the table.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use crate::lifecycle::join::join_all;
use crate::manager;
use crate::registry::registration::{registered, Registered};
use crate::surface::stats::Row;
use crate::SingletonError;

/// Creates every `#[singleton(eager)]` type that has no instance yet, in name order, and reports
/// each one's outcome and time. A failure does not stop the others.
///
/// An `async` eager singleton cannot be made here: it is listed as skipped, with
/// [`SingletonError::NeedsAwait`], which does not make `init_eager` fail. Use
/// [`init_eager_async`] where there are async ones.
///
/// # Errors
///
/// [`EagerError`] when any eager singleton failed; it carries the whole report.
///
/// ```
/// use singleton_kit::singleton;
///
/// #[singleton(eager, factory = || Warm(1))]
/// struct Warm(u8);
///
/// let report = singleton_kit::init_eager().expect("eager singletons");
/// let warm = report.outcomes().iter().find(|o| o.name() == "warm").unwrap();
/// assert!(warm.result().is_ok());
/// println!("{report}");
/// ```
pub fn init_eager() -> Result<EagerReport, EagerError> {
    let started = Instant::now();
    let outcomes: Vec<EagerOutcome> = registered()
        .into_iter()
        .filter(Registered::is_eager)
        .map(|registered| EagerOutcome { registered, result: registered.create() })
        .collect();
    EagerReport { outcomes, wall: started.elapsed() }.into_result()
}

/// Creates every `#[singleton(eager)]` type that has no instance yet, sync and async, and reports
/// each one's outcome and time, in name order, with the wall time of the whole.
///
/// Every factory runs on the calling task (no runtime is needed to spawn anything): each sync one
/// to completion when its turn comes, in name order, and the async ones **concurrently**, so
/// independent ones overlap: three that each wait 200 ms take about 200 ms together, not 600. A
/// failure does not stop the others.
///
/// # Errors
///
/// [`EagerError`] when any eager singleton failed; it carries the whole report.
///
/// ```
/// use std::time::Duration;
/// use singleton_kit::singleton;
///
/// #[singleton(name = "doc_eager_async", factory = Client::connect, async, eager)]
/// struct Client;
///
/// impl Client {
///     async fn connect() -> Client {
///         Client
///     }
/// }
///
/// # futures::executor::block_on(async {
/// let report = singleton_kit::init_eager_async().await.expect("eager singletons");
/// let client = report.outcomes().iter().find(|o| o.name() == "doc_eager_async").unwrap();
/// assert!(client.registered().is_async() && client.result().is_ok());
/// assert!(report.wall_time() >= Duration::ZERO);
/// println!("{report}");
/// # });
/// ```
///
/// # Cancel safety
///
/// Dropping the future stops waiting; a creation it was driving is driven on by the next caller
/// of that singleton, so no factory runs twice.
pub async fn init_eager_async() -> Result<EagerReport, EagerError> {
    let started = Instant::now();
    let eager: Vec<Registered> = registered().into_iter().filter(Registered::is_eager).collect();
    // A sync one's factory runs within its future's first poll.
    let creations = eager
        .iter()
        .map(|&registered| {
            Box::pin(async move { registered.create_async().await })
                as std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>>
        })
        .collect();
    let outcomes = eager
        .into_iter()
        .zip(join_all(creations).await)
        .map(|(registered, result)| EagerOutcome { registered, result })
        .collect();
    EagerReport { outcomes, wall: started.elapsed() }.into_result()
}

/// What [`init_eager`] did, one line per eager singleton.
///
/// ```
/// use singleton_kit::singleton;
///
/// #[singleton(name = "doc_eager_report", eager, factory = || Templates(vec!["index", "error"]))]
/// struct Templates(Vec<&'static str>);
///
/// let report = singleton_kit::init_eager().expect("eager singletons");
/// assert_eq!(report.outcomes().len(), 1);
/// let sum = report.outcomes().iter().filter_map(|o| o.result().ok().flatten()).sum();
/// assert_eq!(report.factories_time(), sum);
/// assert!(report.total() >= sum); // one after another: the wall time holds every factory's
/// assert_eq!(report.total(), report.wall_time());
/// assert!(report.to_string().contains("doc_eager_report"));
/// ```
#[derive(Debug)]
pub struct EagerReport {
    outcomes: Vec<EagerOutcome>,
    wall: Duration,
}

impl EagerReport {
    /// One outcome per eager singleton, in name order.
    pub fn outcomes(&self) -> &[EagerOutcome] {
        &self.outcomes
    }

    /// The total wall time: how long the whole initialisation took, start to end (what a cold
    /// start pays). The same as [`wall_time`](Self::wall_time).
    pub fn total(&self) -> Duration {
        self.wall
    }

    /// How long the whole initialisation took, start to end.
    pub fn wall_time(&self) -> Duration {
        self.wall
    }

    /// The sum of each factory's time. With async factories running concurrently it exceeds the
    /// [`wall_time`](Self::wall_time).
    pub fn factories_time(&self) -> Duration {
        self.outcomes.iter().filter_map(|o| o.result.as_ref().ok().copied().flatten()).sum()
    }

    fn into_result(self) -> Result<EagerReport, EagerError> {
        if self.outcomes.iter().any(EagerOutcome::is_failure) {
            Err(EagerError { report: self })
        } else {
            Ok(self)
        }
    }
}

/// One eager singleton's outcome.
///
/// ```
/// use singleton_kit::singleton;
///
/// #[singleton(name = "doc_eager_outcome", eager, factory = || Metrics(0))]
/// struct Metrics(u64);
///
/// let first = singleton_kit::init_eager().expect("eager singletons");
/// let outcome = first.outcomes().iter().find(|o| o.name() == "doc_eager_outcome").unwrap();
/// assert!(matches!(outcome.result(), Ok(Some(_)))); // created now, in that time
/// assert!(outcome.registered().is_created());
/// let again = singleton_kit::init_eager().expect("eager singletons");
/// assert!(matches!(again.outcomes()[0].result(), Ok(None))); // already created
/// ```
#[derive(Debug)]
pub struct EagerOutcome {
    registered: Registered,
    result: Result<Option<Duration>, SingletonError>,
}

impl EagerOutcome {
    /// The singleton's name.
    pub fn name(&self) -> &'static str {
        self.registered.name()
    }

    /// The singleton.
    pub fn registered(&self) -> Registered {
        self.registered
    }

    /// `Ok(Some(time))` when it was created now (the time its factory ran), `Ok(None)` when it
    /// already existed, or the factory's error (`NeedsAwait` for an async one that the sync
    /// [`init_eager`] skipped).
    pub fn result(&self) -> Result<Option<Duration>, &SingletonError> {
        self.result.as_ref().copied()
    }

    /// `true` for an async singleton that the sync [`init_eager`] could not create: it is left
    /// for [`init_eager_async`] or its first `.await`, and is not a failure.
    pub fn is_skipped(&self) -> bool {
        matches!(self.result, Err(SingletonError::NeedsAwait { .. }))
    }

    fn is_failure(&self) -> bool {
        self.result.is_err() && !self.is_skipped()
    }
}

impl fmt::Display for EagerReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "eager singletons: {} in {} (factories {})",
            self.outcomes.len(),
            ms(self.wall),
            ms(self.factories_time())
        )?;
        for o in &self.outcomes {
            let kind = if o.registered.is_async() { " (async)" } else { "" };
            let name = format!("{}{kind}", o.name());
            match &o.result {
                Err(SingletonError::NeedsAwait { .. }) => {
                    writeln!(f, "  {name:<28} skipped: async, use init_eager_async")?;
                }
                Ok(Some(took)) => writeln!(f, "  {name:<28} created in {}", ms(*took))?,
                Ok(None) => writeln!(f, "  {name:<28} already created")?,
                Err(err) => writeln!(f, "  {name:<28} FAILED: {err}")?,
            }
        }
        Ok(())
    }
}

/// Some eager singletons could not be created; the report says which and why.
///
/// ```
/// use singleton_kit::singleton;
///
/// #[singleton(name = "doc_eager_error", eager, try_factory = || "none".parse::<u16>().map(Port))]
/// struct Port(u16);
///
/// let err = singleton_kit::init_eager().unwrap_err();
/// let failed: Vec<_> = err.failures().map(|o| o.name()).collect();
/// assert_eq!(failed, ["doc_eager_error"]);
/// assert_eq!(err.report().outcomes().len(), 1);
/// assert!(err.to_string().starts_with("1 eager singleton(s) failed"));
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{} eager singleton(s) failed to initialise:\n{report}", self.failures().count())]
pub struct EagerError {
    report: EagerReport,
}

impl EagerError {
    /// The whole report, successes included.
    pub fn report(&self) -> &EagerReport {
        &self.report
    }

    /// The outcomes that failed (not those [skipped](EagerOutcome::is_skipped)).
    pub fn failures(&self) -> impl Iterator<Item = &EagerOutcome> {
        self.report.outcomes.iter().filter(|o| o.is_failure())
    }
}

/// Checks the registrations: every name must belong to one type.
///
/// # Errors
///
/// [`ValidationError`] listing each name claimed by two or more types, with where each is
/// declared. (The name-keyed operations refuse such a name with `DuplicateName`; each type's own
/// `instance()` keeps working.)
///
/// ```
/// singleton_kit::validate().expect("singleton names are unique");
/// ```
pub fn validate() -> Result<(), ValidationError> {
    let mut by_name: BTreeMap<&'static str, Vec<Registered>> = BTreeMap::new();
    for r in registered() {
        by_name.entry(r.name()).or_default().push(r);
    }
    let duplicates: Vec<Vec<Registered>> = by_name.into_values().filter(|claims| claims.len() > 1).collect();
    if duplicates.is_empty() {
        Ok(())
    } else {
        Err(ValidationError { duplicates })
    }
}

/// Names claimed by more than one `#[singleton]` type.
///
/// ```
/// use singleton_kit::singleton;
///
/// #[singleton(name = "doc_shared", factory = || First)]
/// struct First;
/// #[singleton(name = "doc_shared", factory = || Second)]
/// struct Second;
///
/// let err = singleton_kit::validate().unwrap_err();
/// assert_eq!(err.duplicates()[0].len(), 2);
/// assert!(err.to_string().contains("singleton name `doc_shared` is claimed by"));
/// ```
#[derive(Debug, thiserror::Error)]
pub struct ValidationError {
    duplicates: Vec<Vec<Registered>>,
}

impl ValidationError {
    /// Each ambiguous name's claims, one group per name.
    pub fn duplicates(&self) -> &[Vec<Registered>] {
        &self.duplicates
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, claims) in self.duplicates.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "singleton name `{}` is claimed by ", claims[0].name())?;
            for (j, r) in claims.iter().enumerate() {
                if j > 0 {
                    f.write_str(" and ")?;
                }
                write!(f, "`{}` ({}:{})", r.type_name(), r.file(), r.line())?;
            }
            f.write_str(": give one of them `#[singleton(name = \"...\")]`")?;
        }
        Ok(())
    }
}

/// The startup table of every singleton of the global core: each registered `#[singleton]` type,
/// then each live entry made at run time (`set`, `get_or_create`), with name, type, kind, state,
/// accesses, creation time, init time, size and dependencies. Print it with `{}`.
///
/// ```
/// print!("{}", singleton_kit::report());
/// ```
pub fn report() -> Report {
    Report { rows: registered(), runtime: manager().runtime_entries() }
}

/// A snapshot of [`registered()`] and the global core's run-time entries, for printing: see
/// [`report`].
///
/// ```
/// use singleton_kit::{manager, singleton};
///
/// #[singleton(name = "doc_report", factory = || Cache(Vec::new()))]
/// struct Cache(Vec<u64>);
///
/// let _ = Cache::instance();
/// manager().set("doc_report_flag", true)?;
/// let report = singleton_kit::report();
/// assert!(report.singletons().iter().any(|r| r.name() == "doc_report" && r.is_created()));
/// assert!(report.runtime_names().contains(&"doc_report_flag"));
/// let table = report.to_string();
/// assert!(table.lines().nth(1).unwrap().starts_with("NAME"));
/// assert!(table.lines().any(|l| l.starts_with("doc_report ") && l.contains("created")));
/// assert!(table.lines().any(|l| l.starts_with("doc_report_flag") && l.contains("set")));
/// # Ok::<(), singleton_kit::SingletonError>(())
/// ```
#[derive(Debug)]
pub struct Report {
    rows: Vec<Registered>,
    runtime: Vec<(Row, Vec<String>)>,
}

impl Report {
    /// The registered singletons in the report.
    pub fn singletons(&self) -> &[Registered] {
        &self.rows
    }

    /// The names of the live entries made at run time (by `set` or `get_or_create`), sorted.
    pub fn runtime_names(&self) -> Vec<&str> {
        self.runtime.iter().map(|(row, _)| row.name.as_str()).collect()
    }
}

const COLUMNS: usize = 9;

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header =
            ["NAME", "TYPE", "KIND", "STATE", "ACCESSES", "CREATED AT (UTC)", "INIT", "SIZE", "DEPENDS ON"];
        let registered = self.rows.iter().map(|r| {
            let created = r.created_at();
            [
                r.name().to_owned(),
                short_type(r.type_name()).to_owned(),
                if r.is_async() { "async" } else { "sync" }.to_owned(),
                match (created.is_some(), r.is_eager()) {
                    (true, _) => "created".to_owned(),
                    (false, true) => "pending (eager)".to_owned(),
                    (false, false) => "pending".to_owned(),
                },
                r.access_count().to_string(),
                created.map_or_else(|| "-".to_owned(), clock_time),
                r.init_duration().map_or_else(|| "-".to_owned(), ms),
                format!("{} B", r.size_of()),
                deps(&r.dependencies()),
            ]
        });
        // Entries made at run time: by `set` (no factory time) or by `get_or_create`.
        let runtime = self.runtime.iter().map(|(row, dependencies)| {
            [
                row.name.clone(),
                short_type(row.type_name).to_owned(),
                if row.init_duration.is_some() { "get_or_create" } else { "set" }.to_owned(),
                "created".to_owned(),
                row.accesses.to_string(),
                clock_time(row.created_at),
                row.init_duration.map_or_else(|| "-".to_owned(), ms),
                format!("{} B", row.size),
                deps(dependencies),
            ]
        });
        let rows: Vec<[String; COLUMNS]> = registered.chain(runtime).collect();
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        writeln!(f, "singletons: {} registered, {} made at run time", self.rows.len(), self.runtime.len())?;
        let line = |f: &mut fmt::Formatter<'_>, cells: &[&str]| -> fmt::Result {
            let mut text = String::new();
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                let pad = w - cell.chars().count();
                if i > 0 {
                    text.push_str("  ");
                }
                // Numbers right-aligned, words left-aligned.
                if matches!(i, 4 | 6 | 7) {
                    text.extend(std::iter::repeat_n(' ', pad));
                    text.push_str(cell);
                } else {
                    text.push_str(cell);
                    text.extend(std::iter::repeat_n(' ', pad));
                }
            }
            writeln!(f, "{}", text.trim_end())
        };
        line(f, &header)?;
        for row in &rows {
            line(f, &row.each_ref().map(String::as_str))?;
        }
        Ok(())
    }
}

fn deps(names: &[String]) -> String {
    if names.is_empty() {
        "-".to_owned()
    } else {
        names.join(", ")
    }
}

/// `my_crate::config::Config` → `Config` (generic arguments kept whole).
pub(crate) fn short_type(full: &str) -> &str {
    let head = full.split('<').next().unwrap_or(full);
    let start = head.rfind("::").map_or(0, |i| i + 2);
    &full[start..]
}

/// A clock time as a person reads it: RFC 3339 in UTC, to the millisecond
/// (`2026-12-03T07:22:00.123Z`).
fn clock_time(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

#[cfg(test)]
mod tests {
    use super::short_type;

    #[test]
    fn short_type_names() {
        assert_eq!(short_type("a::b::Config"), "Config");
        assert_eq!(short_type("Config"), "Config");
        assert_eq!(short_type("a::Wrap<b::C>"), "Wrap<b::C>");
    }
}
