//! A model-based property test of the name-keyed operations.
//!
//! proptest draws random sequences of operations (`get` and `get_or_create` of two value types,
//! a `get_or_try_create` whose factory fails, `set` of two value types, `get` and `set` of a
//! `#[singleton]` type, `has`, `exists`, `delete`, `clear`, `reset_all`, `stats`, `reset`, and
//! `Tick(n)`, which moves a [`ManualClock`]) over a small pool of names (valid ones, non-ASCII and
//! 256-byte ones among them, invalid ones, and the `#[singleton]` type's own name), and runs each
//! sequence against an isolated core and against a plain reference model: a `HashMap` from name
//! to (value, access count), the list of times the limiter admitted an operation, and the refusal
//! count. Every result (the `Ok`/`Err` variant and its fields, every `bool`, count and returned
//! value) and the final `stats()` must match the model; every handle handed out must still show
//! its value at the end, and after the core is dropped.
//!
//! The model is written from the SPEC, not from the implementation: it decides validity from a
//! hand-written table of the pool's names, and the limit as "an operation at `now` is admitted
//! when fewer than `max_ops` admitted operations lie in `(now - window, now]`" over the whole
//! history, where the core keeps a ring of the last `max_ops` admissions.
//!
//! Two configurations: no limit, and a tiny limit (3 per 10 ticks of 1 ms) on the manual clock.
//! The default run is 256 cases each (a few seconds); `heavy_*` runs 100 000 and is `#[ignore]`d
//! (`.ci/run` runs it with `--ignored` in release).
//!
//! No failure file is written (`failure_persistence: None`): a failing case is printed, shrunk,
//! with the step that differs.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use singleton_kit::{singleton, Instance, ManualClock, RateLimit, SingletonCore, SingletonError, Stats};

/// A `#[singleton]` type: every core knows its name, which only this type may hold, and `get`
/// creates it with `Default`. Only isolated cores are used here, so its global instance is never
/// made.
#[singleton(name = "model_reg")]
#[derive(Default)]
struct ModelReg(u32);

/// The tiny limit: `MAX_OPS` per `WINDOW_TICKS` ticks of one millisecond.
const MAX_OPS: usize = 3;
const WINDOW_TICKS: u64 = 10;
const TICK: Duration = Duration::from_millis(1);

/// The pool of names, each with whether the SPEC calls it valid.
fn pool() -> Vec<(String, bool)> {
    vec![
        ("a".into(), true),
        ("b".into(), true),
        ("café".into(), true),
        ("x".repeat(256), true), // the longest valid name
        ("cache manager".into(), true),
        ("*".into(), true),         // an ordinary name, not "all singletons"
        ("model_reg".into(), true), // the `#[singleton]` type's name
        (String::new(), false),
        ("  ".into(), false),
        ("y".repeat(257), false),
        ("a\0b".into(), false),
        ("a\nb".into(), false),
        (" padded ".into(), false),
        ("b ".into(), false),         // would print as "b"
        ("a\u{200B}".into(), false),  // zero-width space: would print as "a"
        ("a\u{202E}b".into(), false), // right-to-left override
    ]
}
const VALID: std::ops::Range<usize> = 0..7;
const INVALID: std::ops::Range<usize> = 7..16;
/// The names a `#[singleton]` type owns, and its type name.
fn registered(name: &str) -> Option<&'static str> {
    (name == "model_reg").then(std::any::type_name::<ModelReg>)
}

#[derive(Clone, Debug)]
enum Op {
    GetU32(usize),
    GetStr(usize),
    /// `get::<ModelReg>`: creates it under its own name.
    GetReg(usize),
    GetOrCreateU32(usize, u32),
    GetOrCreateStr(usize, String),
    /// `get_or_try_create::<u32>` with a factory that fails.
    GetOrTryCreateFails(usize),
    SetU32(usize, u32),
    SetStr(usize, String),
    SetReg(usize, u32),
    Has(usize),
    Exists(usize),
    Delete(usize),
    Clear,
    ResetAll,
    Stats,
    Reset,
    Tick(u64),
}

fn name_index() -> impl Strategy<Value = usize> {
    prop_oneof![4 => VALID, 1 => INVALID]
}

fn text() -> impl Strategy<Value = String> {
    "[a-zé]{0,4}"
}

/// `tick_weight`: how often time moves, against the 38 of the other operations. With the tiny
/// limit, time must move often enough that operations are admitted as well as refused.
fn op(tick_weight: u32) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => name_index().prop_map(Op::GetU32),
        3 => name_index().prop_map(Op::GetStr),
        2 => name_index().prop_map(Op::GetReg),
        3 => (name_index(), any::<u32>()).prop_map(|(n, v)| Op::GetOrCreateU32(n, v)),
        2 => (name_index(), text()).prop_map(|(n, v)| Op::GetOrCreateStr(n, v)),
        1 => name_index().prop_map(Op::GetOrTryCreateFails),
        3 => (name_index(), any::<u32>()).prop_map(|(n, v)| Op::SetU32(n, v)),
        3 => (name_index(), text()).prop_map(|(n, v)| Op::SetStr(n, v)),
        1 => (name_index(), any::<u32>()).prop_map(|(n, v)| Op::SetReg(n, v)),
        2 => name_index().prop_map(Op::Has),
        2 => name_index().prop_map(Op::Exists),
        2 => name_index().prop_map(Op::Delete),
        1 => Just(Op::Clear),
        1 => Just(Op::ResetAll),
        2 => Just(Op::Stats),
        1 => Just(Op::Reset),
        tick_weight => (0..=12_u64).prop_map(Op::Tick),
    ]
}

fn ops(tick_weight: u32) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(tick_weight), 0..=60)
}

// -------------------------------------------------------------------------------------------------
// Results, normalized so that the core's and the model's can be compared
// -------------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum Val {
    U32(u32),
    Str(String),
    Reg(u32),
}

impl Val {
    fn type_name(&self) -> &'static str {
        match self {
            Val::U32(_) => std::any::type_name::<u32>(),
            Val::Str(_) => std::any::type_name::<String>(),
            Val::Reg(_) => std::any::type_name::<ModelReg>(),
        }
    }

    fn size(&self) -> u64 {
        match self {
            Val::U32(_) => std::mem::size_of::<u32>() as u64,
            Val::Str(_) => std::mem::size_of::<String>() as u64,
            Val::Reg(_) => std::mem::size_of::<ModelReg>() as u64,
        }
    }
}

#[derive(Debug, PartialEq)]
enum Fail {
    InvalidName,
    RateLimited {
        operation: &'static str,
        /// `None` for the operations on all singletons.
        name: Option<String>,
        retry_after: Duration,
    },
    TypeMismatch {
        name: String,
        expected: &'static str,
        found: &'static str,
    },
    Factory {
        name: String,
        source: String,
    },
    /// Anything else: never expected here.
    Other(String),
}

#[derive(Debug, PartialEq)]
enum Out {
    Unit,
    Bool(bool),
    Count(usize),
    Value(Option<Val>),
    Stats(View),
    Err(Fail),
}

/// What `stats()` says that the model can know.
#[derive(Debug, PartialEq)]
struct View {
    total: usize,
    names: Vec<String>,
    types: BTreeMap<String, String>,
    access_counts: BTreeMap<String, u64>,
    memory_bytes: u64,
    rate_limited_count: u64,
}

impl View {
    fn of(s: &Stats) -> Self {
        View {
            total: s.total_singletons,
            names: s.singleton_names.clone(),
            types: s.singleton_types.clone(),
            access_counts: s.access_counts.clone(),
            memory_bytes: s.estimated_memory_bytes,
            rate_limited_count: s.rate_limited_count,
        }
    }
}

/// The core's error, normalized. The name an `InvalidName` carries is checked here: it is the
/// given name, cut to 64 bytes when longer.
fn fail(err: SingletonError, given: &str) -> Fail {
    match err {
        SingletonError::InvalidName { name, .. } => {
            let shown = &given[..given.len().min(64)];
            if name.starts_with(shown) {
                Fail::InvalidName
            } else {
                Fail::Other(format!("InvalidName names {name:?}, not {given:?}"))
            }
        }
        SingletonError::RateLimited { operation, name, retry_after } => {
            Fail::RateLimited { operation, name, retry_after }
        }
        SingletonError::TypeMismatch { name, expected, found } => {
            Fail::TypeMismatch { name, expected, found }
        }
        SingletonError::Factory { name, source } => Fail::Factory { name, source: source.to_string() },
        other => Fail::Other(format!("{other:?}")),
    }
}

/// A handle the test keeps to the end of the case, with the value it must still show.
enum Held {
    U32(Instance<u32>, u32),
    Str(Instance<String>, String),
    Reg(Instance<ModelReg>, u32),
}

impl Held {
    fn check(&self) -> Result<(), TestCaseError> {
        match self {
            Held::U32(h, v) => prop_assert_eq!(&**h, v),
            Held::Str(h, v) => prop_assert_eq!(&**h, v),
            Held::Reg(h, v) => prop_assert_eq!(&h.0, v),
        }
        Ok(())
    }
}

fn got_u32(r: singleton_kit::Result<Option<Instance<u32>>>, name: &str, held: &mut Vec<Held>) -> Out {
    match r {
        Ok(Some(h)) => {
            let v = *h;
            held.push(Held::U32(h, v));
            Out::Value(Some(Val::U32(v)))
        }
        Ok(None) => Out::Value(None),
        Err(e) => Out::Err(fail(e, name)),
    }
}

fn got_str(r: singleton_kit::Result<Option<Instance<String>>>, name: &str, held: &mut Vec<Held>) -> Out {
    match r {
        Ok(Some(h)) => {
            let v = (*h).clone();
            held.push(Held::Str(h, v.clone()));
            Out::Value(Some(Val::Str(v)))
        }
        Ok(None) => Out::Value(None),
        Err(e) => Out::Err(fail(e, name)),
    }
}

fn got_reg(r: singleton_kit::Result<Option<Instance<ModelReg>>>, name: &str, held: &mut Vec<Held>) -> Out {
    match r {
        Ok(Some(h)) => {
            let v = h.0;
            held.push(Held::Reg(h, v));
            Out::Value(Some(Val::Reg(v)))
        }
        Ok(None) => Out::Value(None),
        Err(e) => Out::Err(fail(e, name)),
    }
}

fn unit(r: singleton_kit::Result<()>, name: &str) -> Out {
    match r {
        Ok(()) => Out::Unit,
        Err(e) => Out::Err(fail(e, name)),
    }
}

const FACTORY_ERROR: &str = "model: the factory fails";

// -------------------------------------------------------------------------------------------------
// The reference model
// -------------------------------------------------------------------------------------------------

struct Model {
    /// `(max_ops, window in ticks)`, or no limit.
    limit: Option<(usize, u64)>,
    now: u64,
    /// When each admitted operation was admitted (since the core was made or last reset).
    admitted: Vec<u64>,
    refused: u64,
    store: HashMap<String, (Val, u64)>,
}

impl Model {
    fn new(limit: Option<(usize, u64)>) -> Self {
        Model { limit, now: 0, admitted: Vec::new(), refused: 0, store: HashMap::new() }
    }

    /// The name check (for the operations that take a name), then the sliding window.
    fn admit(&mut self, operation: &'static str, name: Option<&str>, valid: bool) -> Result<(), Fail> {
        if !valid {
            return Err(Fail::InvalidName);
        }
        let Some((max, window)) = self.limit else { return Ok(()) };
        let now = self.now;
        let inside: Vec<u64> = self.admitted.iter().copied().filter(|&t| t + window > now).collect();
        if inside.len() < max {
            self.admitted.push(now);
            return Ok(());
        }
        self.refused += 1;
        // A slot frees when enough of the window's admissions have left it for fewer than `max`
        // to remain: when the `max`-th newest leaves.
        let frees_at = inside[inside.len() - max] + window;
        let retry_after = TICK * u32::try_from(frees_at - now).unwrap();
        Err(Fail::RateLimited { operation, name: name.map(str::to_owned), retry_after })
    }

    fn get(&mut self, name: &str, valid: bool, want: &'static str) -> Out {
        if let Err(f) = self.admit("get", Some(name), valid) {
            return Out::Err(f);
        }
        match self.store.get_mut(name) {
            // A `#[singleton]` name with no instance: its factory makes one, if asked for its type.
            None => match registered(name) {
                None => Out::Value(None),
                Some(reg) if reg != want => {
                    Out::Err(Fail::TypeMismatch { name: name.to_owned(), expected: want, found: reg })
                }
                Some(_) => {
                    self.store.insert(name.to_owned(), (Val::Reg(0), 1));
                    Out::Value(Some(Val::Reg(0)))
                }
            },
            Some((v, _)) if v.type_name() != want => {
                Out::Err(Fail::TypeMismatch { name: name.to_owned(), expected: want, found: v.type_name() })
            }
            Some((v, count)) => {
                *count += 1;
                Out::Value(Some(v.clone()))
            }
        }
    }

    /// `get_or_create` (`make` is `Some(value)`) or a `get_or_try_create` whose factory fails
    /// (`None`), of a value of type `want`.
    fn get_or_create(&mut self, name: &str, valid: bool, want: &'static str, make: Option<Val>) -> Out {
        if let Err(f) = self.admit("get", Some(name), valid) {
            return Out::Err(f);
        }
        match (self.store.get_mut(name), make) {
            (Some((v, _)), _) if v.type_name() != want => {
                Out::Err(Fail::TypeMismatch { name: name.to_owned(), expected: want, found: v.type_name() })
            }
            (Some((v, count)), _) => {
                *count += 1;
                Out::Value(Some(v.clone()))
            }
            (None, _) if registered(name).is_some_and(|reg| reg != want) => Out::Err(Fail::TypeMismatch {
                name: name.to_owned(),
                expected: want,
                found: registered(name).unwrap(),
            }),
            (None, Some(v)) => {
                self.store.insert(name.to_owned(), (v.clone(), 1));
                Out::Value(Some(v))
            }
            (None, None) => {
                Out::Err(Fail::Factory { name: name.to_owned(), source: FACTORY_ERROR.to_owned() })
            }
        }
    }

    fn set(&mut self, name: &str, valid: bool, v: Val) -> Out {
        if let Err(f) = self.admit("set", Some(name), valid) {
            return Out::Err(f);
        }
        if let Some(reg) = registered(name).filter(|reg| *reg != v.type_name()) {
            return Out::Err(Fail::TypeMismatch {
                name: name.to_owned(),
                expected: v.type_name(),
                found: reg,
            });
        }
        self.store.insert(name.to_owned(), (v, 0));
        Out::Unit
    }

    fn has(&mut self, operation: &'static str, name: &str, valid: bool) -> Out {
        Out::Bool(self.admit(operation, Some(name), valid).is_ok() && self.store.contains_key(name))
    }

    fn delete(&mut self, name: &str, valid: bool) -> Out {
        Out::Bool(self.admit("delete", Some(name), valid).is_ok() && self.store.remove(name).is_some())
    }

    fn clear(&mut self, operation: &'static str) -> Out {
        if self.admit(operation, None, true).is_err() {
            return Out::Count(0);
        }
        let n = self.store.len();
        self.store.clear();
        Out::Count(n)
    }

    fn view(&self) -> View {
        let mut names: Vec<String> = self.store.keys().cloned().collect();
        names.sort();
        View {
            total: self.store.len(),
            names,
            types: self.store.iter().map(|(k, (v, _))| (k.clone(), v.type_name().to_owned())).collect(),
            access_counts: self.store.iter().map(|(k, (_, c))| (k.clone(), *c)).collect(),
            memory_bytes: self.store.values().map(|(v, _)| v.size()).sum(),
            rate_limited_count: self.refused,
        }
    }

    fn stats(&mut self) -> Out {
        match self.admit("get_stats", None, true) {
            Ok(()) => Out::Stats(self.view()),
            Err(f) => Out::Err(f),
        }
    }

    fn reset(&mut self) -> Out {
        if self.admit("reset", None, true).is_err() {
            return Out::Bool(false);
        }
        // The reset's own slot goes too.
        self.admitted.clear();
        self.refused = 0;
        Out::Bool(true)
    }
}

// -------------------------------------------------------------------------------------------------
// One case
// -------------------------------------------------------------------------------------------------

fn run(limited: bool, ops: &[Op]) -> Result<(), TestCaseError> {
    let clock = ManualClock::new();
    let limit = if limited {
        RateLimit::new(MAX_OPS as u32, TICK * WINDOW_TICKS as u32)
    } else {
        RateLimit::unlimited()
    };
    let core = SingletonCore::with_clock(limit, clock.clone());
    let mut model = Model::new(limited.then_some((MAX_OPS, WINDOW_TICKS)));
    let names = pool();
    let mut held: Vec<Held> = Vec::new();
    let (u32_t, str_t) = (std::any::type_name::<u32>(), std::any::type_name::<String>());

    for (step, op) in ops.iter().enumerate() {
        let (actual, expected) = match op {
            Op::GetU32(i) => {
                let (name, valid) = (&names[*i].0, names[*i].1);
                (got_u32(core.get::<u32>(name), name, &mut held), model.get(name, valid, u32_t))
            }
            Op::GetStr(i) => {
                let (name, valid) = (&names[*i].0, names[*i].1);
                (got_str(core.get::<String>(name), name, &mut held), model.get(name, valid, str_t))
            }
            Op::GetReg(i) => {
                let (name, valid) = (&names[*i].0, names[*i].1);
                let reg_t = std::any::type_name::<ModelReg>();
                (got_reg(core.get::<ModelReg>(name), name, &mut held), model.get(name, valid, reg_t))
            }
            Op::GetOrCreateU32(i, v) => {
                let (name, valid) = (&names[*i].0, names[*i].1);
                let v = *v;
                let actual = got_u32(core.get_or_create(name, || v).map(Some), name, &mut held);
                (actual, model.get_or_create(name, valid, u32_t, Some(Val::U32(v))))
            }
            Op::GetOrCreateStr(i, v) => {
                let (name, valid) = (&names[*i].0, names[*i].1);
                let actual = got_str(core.get_or_create(name, || v.clone()).map(Some), name, &mut held);
                (actual, model.get_or_create(name, valid, str_t, Some(Val::Str(v.clone()))))
            }
            Op::GetOrTryCreateFails(i) => {
                let (name, valid) = (&names[*i].0, names[*i].1);
                let r = core.get_or_try_create::<u32, _, _>(name, || Err(FACTORY_ERROR));
                (got_u32(r.map(Some), name, &mut held), model.get_or_create(name, valid, u32_t, None))
            }
            Op::SetU32(i, v) => {
                let (name, valid) = (&names[*i].0, names[*i].1);
                (unit(core.set(name, *v), name), model.set(name, valid, Val::U32(*v)))
            }
            Op::SetStr(i, v) => {
                let (name, valid) = (&names[*i].0, names[*i].1);
                (unit(core.set(name, v.clone()), name), model.set(name, valid, Val::Str(v.clone())))
            }
            Op::SetReg(i, v) => {
                let (name, valid) = (&names[*i].0, names[*i].1);
                (unit(core.set(name, ModelReg(*v)), name), model.set(name, valid, Val::Reg(*v)))
            }
            Op::Has(i) => {
                let (name, valid) = (&names[*i].0, names[*i].1);
                (Out::Bool(core.has(name)), model.has("has", name, valid))
            }
            Op::Exists(i) => {
                let (name, valid) = (&names[*i].0, names[*i].1);
                (Out::Bool(core.exists(name)), model.has("exists", name, valid))
            }
            Op::Delete(i) => {
                let (name, valid) = (&names[*i].0, names[*i].1);
                (Out::Bool(core.delete(name)), model.delete(name, valid))
            }
            Op::Clear => (Out::Count(core.clear()), model.clear("clear")),
            Op::ResetAll => (Out::Count(core.reset_all()), model.clear("reset_all")),
            Op::Stats => {
                let actual = match core.stats() {
                    Ok(s) => Out::Stats(View::of(&s)),
                    Err(e) => Out::Err(fail(e, "")),
                };
                (actual, model.stats())
            }
            Op::Reset => (Out::Bool(core.reset()), model.reset()),
            Op::Tick(n) => {
                clock.advance(TICK * *n as u32);
                model.now += n;
                continue;
            }
        };
        prop_assert_eq!(actual, expected, "step {} ({:?}) of {:?}", step, op, ops);
    }

    // The final state: one window later, so that the final `stats()` is admitted.
    clock.advance(TICK * WINDOW_TICKS as u32);
    model.now += WINDOW_TICKS;
    let actual = View::of(&core.stats().map_err(|e| TestCaseError::fail(format!("final stats: {e}")))?);
    let Out::Stats(expected) = model.stats() else { unreachable!("admitted one window later") };
    prop_assert_eq!(actual, expected, "final stats after {:?}", ops);

    // Every handle handed out shows its value still, before and after the core is gone.
    for h in &held {
        h.check()?;
    }
    drop(core);
    for h in &held {
        h.check()?;
    }
    Ok(())
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn the_core_matches_the_model_with_no_limit(ops in ops(2)) {
        run(false, &ops)?;
    }

    #[test]
    fn the_core_matches_the_model_with_a_tiny_limit_on_a_manual_clock(ops in ops(12)) {
        run(true, &ops)?;
    }
}

proptest! {
    #![proptest_config(config(100_000))]

    #[test]
    #[ignore = "heavy: 100 000 cases; `.ci/run` runs it with `--ignored` in release"]
    fn heavy_the_core_matches_the_model_with_no_limit(ops in ops(2)) {
        run(false, &ops)?;
    }

    #[test]
    #[ignore = "heavy: 100 000 cases; `.ci/run` runs it with `--ignored` in release"]
    fn heavy_the_core_matches_the_model_with_a_tiny_limit_on_a_manual_clock(ops in ops(12)) {
        run(true, &ops)?;
    }
}

/// The model itself, on a sequence worked out by hand: it is the reference, so it is checked
/// against the SPEC's words once, independently of the core.
#[test]
fn the_model_follows_the_spec_on_a_hand_worked_sequence() {
    let mut m = Model::new(Some((3, 10)));
    let u = std::any::type_name::<u32>();
    assert_eq!(m.set("a", true, Val::U32(1)), Out::Unit); // t0, slot 1
    assert_eq!(m.get("a", true, u), Out::Value(Some(Val::U32(1)))); // slot 2, count 1
    assert_eq!(m.get("", false, u), Out::Err(Fail::InvalidName)); // no slot
    m.now = 4;
    assert_eq!(m.has("has", "a", true), Out::Bool(true)); // slot 3 at t4
    let refused = Fail::RateLimited { operation: "get", name: Some("a".into()), retry_after: TICK * 6 };
    assert_eq!(m.get("a", true, u), Out::Err(refused)); // t4: the t0 slot frees at t10
    m.now = 10;
    assert_eq!(m.delete("a", true), Out::Bool(true)); // both t0 slots have left the window
    assert_eq!(m.has("exists", "a", true), Out::Bool(false)); // admitted (slots at t4, t10, t10)
    assert_eq!(m.clear("clear"), Out::Count(0)); // refused: the t4 slot frees at t14
    m.now = 14;
    let Out::Stats(v) = m.stats() else { panic!("admitted at t14") };
    assert_eq!((v.total, v.rate_limited_count), (0, 2));
    assert_eq!(m.reset(), Out::Bool(false)); // refused: slots at t10, t10, t14
    m.now = 20;
    assert_eq!(m.reset(), Out::Bool(true)); // the t10 slots have left
    assert!(m.admitted.is_empty() && m.refused == 0, "reset forgets its own slot too");
}
