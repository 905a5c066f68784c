//! What `benches/hot_path.rs`, `benches/registry.rs` and `examples/bench.rs` share: the singletons
//! they measure, the baselines measured next to them, the multi-threaded runner, the criterion
//! settings and the static-data figures. Each includes this file with `#[path = ...] mod support;`
//! (a folder with a `mod.rs`, so cargo does not take it for a bench target of its own).
//!
//! What declares a `#[singleton]` is a macro, expanded only where it is invoked: a `#[singleton]`
//! registers itself from a static constructor whether or not anything uses it, so items here would
//! add `Hot` to `registry`'s 1,000 registrations and the 1,000 to `hot_path`'s global core.

// Not every includer uses every item (`registry` only the criterion settings, the static-data
// figures and the 1,000 singletons, `hot_path` neither these singletons nor the memory figures, the
// example no criterion settings), and an item, macro or macro re-export (`pub(crate) use`, below)
// that one of them leaves unused would warn there.
#![allow(dead_code, unused_macros)]

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Barrier, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use criterion::Criterion;
use singleton_kit::__private::{inventory, Descriptor, Registration};
use singleton_kit::{RateLimit, SingletonCore};

// ---------------------------------------------------------------------------------------------
// What is measured
// ---------------------------------------------------------------------------------------------

/// Declares `mod many`: one `#[singleton]` unit struct per identifier `R000`..`R999`, for
/// `registered()` over 1,000 registrations. Each one's registry name is its own in snake_case
/// (`R042` -> `r042`), so all of them are distinct.
macro_rules! thousand_singletons {
    () => { $crate::support::thousand_singletons! { @stamp
        R000 R001 R002 R003 R004 R005 R006 R007 R008 R009 R010 R011 R012 R013 R014 R015 R016 R017 R018 R019
        R020 R021 R022 R023 R024 R025 R026 R027 R028 R029 R030 R031 R032 R033 R034 R035 R036 R037 R038 R039
        R040 R041 R042 R043 R044 R045 R046 R047 R048 R049 R050 R051 R052 R053 R054 R055 R056 R057 R058 R059
        R060 R061 R062 R063 R064 R065 R066 R067 R068 R069 R070 R071 R072 R073 R074 R075 R076 R077 R078 R079
        R080 R081 R082 R083 R084 R085 R086 R087 R088 R089 R090 R091 R092 R093 R094 R095 R096 R097 R098 R099
        R100 R101 R102 R103 R104 R105 R106 R107 R108 R109 R110 R111 R112 R113 R114 R115 R116 R117 R118 R119
        R120 R121 R122 R123 R124 R125 R126 R127 R128 R129 R130 R131 R132 R133 R134 R135 R136 R137 R138 R139
        R140 R141 R142 R143 R144 R145 R146 R147 R148 R149 R150 R151 R152 R153 R154 R155 R156 R157 R158 R159
        R160 R161 R162 R163 R164 R165 R166 R167 R168 R169 R170 R171 R172 R173 R174 R175 R176 R177 R178 R179
        R180 R181 R182 R183 R184 R185 R186 R187 R188 R189 R190 R191 R192 R193 R194 R195 R196 R197 R198 R199
        R200 R201 R202 R203 R204 R205 R206 R207 R208 R209 R210 R211 R212 R213 R214 R215 R216 R217 R218 R219
        R220 R221 R222 R223 R224 R225 R226 R227 R228 R229 R230 R231 R232 R233 R234 R235 R236 R237 R238 R239
        R240 R241 R242 R243 R244 R245 R246 R247 R248 R249 R250 R251 R252 R253 R254 R255 R256 R257 R258 R259
        R260 R261 R262 R263 R264 R265 R266 R267 R268 R269 R270 R271 R272 R273 R274 R275 R276 R277 R278 R279
        R280 R281 R282 R283 R284 R285 R286 R287 R288 R289 R290 R291 R292 R293 R294 R295 R296 R297 R298 R299
        R300 R301 R302 R303 R304 R305 R306 R307 R308 R309 R310 R311 R312 R313 R314 R315 R316 R317 R318 R319
        R320 R321 R322 R323 R324 R325 R326 R327 R328 R329 R330 R331 R332 R333 R334 R335 R336 R337 R338 R339
        R340 R341 R342 R343 R344 R345 R346 R347 R348 R349 R350 R351 R352 R353 R354 R355 R356 R357 R358 R359
        R360 R361 R362 R363 R364 R365 R366 R367 R368 R369 R370 R371 R372 R373 R374 R375 R376 R377 R378 R379
        R380 R381 R382 R383 R384 R385 R386 R387 R388 R389 R390 R391 R392 R393 R394 R395 R396 R397 R398 R399
        R400 R401 R402 R403 R404 R405 R406 R407 R408 R409 R410 R411 R412 R413 R414 R415 R416 R417 R418 R419
        R420 R421 R422 R423 R424 R425 R426 R427 R428 R429 R430 R431 R432 R433 R434 R435 R436 R437 R438 R439
        R440 R441 R442 R443 R444 R445 R446 R447 R448 R449 R450 R451 R452 R453 R454 R455 R456 R457 R458 R459
        R460 R461 R462 R463 R464 R465 R466 R467 R468 R469 R470 R471 R472 R473 R474 R475 R476 R477 R478 R479
        R480 R481 R482 R483 R484 R485 R486 R487 R488 R489 R490 R491 R492 R493 R494 R495 R496 R497 R498 R499
        R500 R501 R502 R503 R504 R505 R506 R507 R508 R509 R510 R511 R512 R513 R514 R515 R516 R517 R518 R519
        R520 R521 R522 R523 R524 R525 R526 R527 R528 R529 R530 R531 R532 R533 R534 R535 R536 R537 R538 R539
        R540 R541 R542 R543 R544 R545 R546 R547 R548 R549 R550 R551 R552 R553 R554 R555 R556 R557 R558 R559
        R560 R561 R562 R563 R564 R565 R566 R567 R568 R569 R570 R571 R572 R573 R574 R575 R576 R577 R578 R579
        R580 R581 R582 R583 R584 R585 R586 R587 R588 R589 R590 R591 R592 R593 R594 R595 R596 R597 R598 R599
        R600 R601 R602 R603 R604 R605 R606 R607 R608 R609 R610 R611 R612 R613 R614 R615 R616 R617 R618 R619
        R620 R621 R622 R623 R624 R625 R626 R627 R628 R629 R630 R631 R632 R633 R634 R635 R636 R637 R638 R639
        R640 R641 R642 R643 R644 R645 R646 R647 R648 R649 R650 R651 R652 R653 R654 R655 R656 R657 R658 R659
        R660 R661 R662 R663 R664 R665 R666 R667 R668 R669 R670 R671 R672 R673 R674 R675 R676 R677 R678 R679
        R680 R681 R682 R683 R684 R685 R686 R687 R688 R689 R690 R691 R692 R693 R694 R695 R696 R697 R698 R699
        R700 R701 R702 R703 R704 R705 R706 R707 R708 R709 R710 R711 R712 R713 R714 R715 R716 R717 R718 R719
        R720 R721 R722 R723 R724 R725 R726 R727 R728 R729 R730 R731 R732 R733 R734 R735 R736 R737 R738 R739
        R740 R741 R742 R743 R744 R745 R746 R747 R748 R749 R750 R751 R752 R753 R754 R755 R756 R757 R758 R759
        R760 R761 R762 R763 R764 R765 R766 R767 R768 R769 R770 R771 R772 R773 R774 R775 R776 R777 R778 R779
        R780 R781 R782 R783 R784 R785 R786 R787 R788 R789 R790 R791 R792 R793 R794 R795 R796 R797 R798 R799
        R800 R801 R802 R803 R804 R805 R806 R807 R808 R809 R810 R811 R812 R813 R814 R815 R816 R817 R818 R819
        R820 R821 R822 R823 R824 R825 R826 R827 R828 R829 R830 R831 R832 R833 R834 R835 R836 R837 R838 R839
        R840 R841 R842 R843 R844 R845 R846 R847 R848 R849 R850 R851 R852 R853 R854 R855 R856 R857 R858 R859
        R860 R861 R862 R863 R864 R865 R866 R867 R868 R869 R870 R871 R872 R873 R874 R875 R876 R877 R878 R879
        R880 R881 R882 R883 R884 R885 R886 R887 R888 R889 R890 R891 R892 R893 R894 R895 R896 R897 R898 R899
        R900 R901 R902 R903 R904 R905 R906 R907 R908 R909 R910 R911 R912 R913 R914 R915 R916 R917 R918 R919
        R920 R921 R922 R923 R924 R925 R926 R927 R928 R929 R930 R931 R932 R933 R934 R935 R936 R937 R938 R939
        R940 R941 R942 R943 R944 R945 R946 R947 R948 R949 R950 R951 R952 R953 R954 R955 R956 R957 R958 R959
        R960 R961 R962 R963 R964 R965 R966 R967 R968 R969 R970 R971 R972 R973 R974 R975 R976 R977 R978 R979
        R980 R981 R982 R983 R984 R985 R986 R987 R988 R989 R990 R991 R992 R993 R994 R995 R996 R997 R998 R999
    } };
    (@stamp $($ty:ident)*) => {
        #[allow(dead_code)]
        mod many {
            $(
                #[::singleton_kit::singleton]
                #[derive(Default)]
                pub struct $ty;
            )*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use thousand_singletons;

/// Declares the singleton under test, `Hot`, the baselines built on it, and `prepare_baselines()`.
/// `$map_names` are the names, with a `u64` each, that the `RwLock<HashMap>` baseline holds next
/// to `hot` (a name it already holds keeps its value).
macro_rules! hot_and_baselines {
    (map_names: $map_names:expr) => {
        /// The singleton under test.
        #[::singleton_kit::singleton]
        #[derive(Default)]
        pub struct Hot {
            value: u64,
        }

        static LAZY: ::std::sync::LazyLock<Hot> = ::std::sync::LazyLock::new(Hot::default);
        static SHARED_COUNTER: ::std::sync::atomic::AtomicU64 = ::std::sync::atomic::AtomicU64::new(0);
        static ARC: ::std::sync::LazyLock<::std::sync::Arc<Hot>> =
            ::std::sync::LazyLock::new(|| ::std::sync::Arc::new(Hot::default()));
        static SWAP: ::std::sync::LazyLock<::arc_swap::ArcSwap<Hot>> =
            ::std::sync::LazyLock::new(|| ::arc_swap::ArcSwap::from_pointee(Hot::default()));
        static MAP: ::std::sync::LazyLock<::std::sync::RwLock<$crate::support::AnyMap>> =
            ::std::sync::LazyLock::new(|| {
                $crate::support::any_map(Hot::SINGLETON_NAME, Hot::default(), $map_names)
            });

        ::singleton_registry::define_registry!(baseline_registry);

        /// Registers `Hot` with singleton-registry and creates every baseline and `Hot` itself, so
        /// that no case times a first use.
        fn prepare_baselines() {
            baseline_registry::register(Hot::default());
            ::std::sync::LazyLock::force(&LAZY);
            ::std::sync::LazyLock::force(&ARC);
            ::std::sync::LazyLock::force(&SWAP);
            ::std::sync::LazyLock::force(&MAP);
            drop(Hot::instance());
        }
    };
}
#[allow(unused_imports)]
pub(crate) use hot_and_baselines;

// ---------------------------------------------------------------------------------------------
// Baselines that need no `Hot`
// ---------------------------------------------------------------------------------------------

/// The name-keyed baseline: values of any type by name.
pub type AnyMap = HashMap<String, Arc<dyn Any + Send + Sync>>;

/// An `AnyMap` holding `value` under `name`, and each of `others` (`or_insert`: `name` keeps
/// `value`), behind a `RwLock`.
pub fn any_map<T: Any + Send + Sync>(
    name: &str,
    value: T,
    others: impl IntoIterator<Item = (String, u64)>,
) -> RwLock<AnyMap> {
    let mut map: AnyMap = HashMap::new();
    map.insert(name.to_owned(), Arc::new(value));
    for (other, v) in others {
        map.entry(other).or_insert_with(|| Arc::new(v));
    }
    RwLock::new(map)
}

/// The seed design's limiter: a deque of admission times under a mutex.
pub struct SlidingWindow {
    max_ops: usize,
    window: Duration,
    times: VecDeque<Instant>,
}

impl SlidingWindow {
    pub fn new(limit: RateLimit) -> Mutex<Self> {
        Mutex::new(Self {
            max_ops: limit.max_ops().map_or(usize::MAX, |m| m as usize),
            window: limit.window(),
            times: VecDeque::new(),
        })
    }
}

pub fn sliding_window_check(w: &Mutex<SlidingWindow>) -> bool {
    let mut w = w.lock().unwrap_or_else(PoisonError::into_inner);
    let now = Instant::now();
    while let Some(&oldest) = w.times.front() {
        if now.duration_since(oldest) >= w.window {
            w.times.pop_front();
        } else {
            break;
        }
    }
    if w.times.len() < w.max_ops {
        w.times.push_back(now);
        true
    } else {
        false
    }
}

/// A limit whose every check is admitted at benchmark speed (a million checks take far more than a
/// millisecond plus the clock's tick), so the measured path is the steady state of an exact window
/// that is full and slides: read the oldest time, compare, replace it.
pub fn sliding_limit() -> RateLimit {
    RateLimit::new(1_000_000, Duration::from_millis(1))
}

/// The limiter cases' subjects: a core with no limit and one with an exact sliding window, each
/// holding `probe`, and the `Mutex<VecDeque<Instant>>` baseline with the same limit.
pub fn limiter_subjects() -> (SingletonCore, SingletonCore, Mutex<SlidingWindow>) {
    let unlimited = SingletonCore::with_rate_limit(RateLimit::unlimited());
    let limited = SingletonCore::with_rate_limit(sliding_limit());
    unlimited.set("probe", 0_u8).expect("unlimited");
    limited.set("probe", 0_u8).expect("first operation");
    (unlimited, limited, SlidingWindow::new(sliding_limit()))
}

// ---------------------------------------------------------------------------------------------
// Timing
// ---------------------------------------------------------------------------------------------

/// The benches' criterion settings.
pub fn criterion_config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

/// How long the calling thread has been on a CPU, where the platform says.
#[cfg(target_os = "linux")]
fn thread_cpu_time() -> Option<Duration> {
    use std::ffi::{c_int, c_long};
    #[repr(C)]
    struct Timespec {
        tv_sec: c_long,
        tv_nsec: c_long,
    }
    extern "C" {
        fn clock_gettime(clock: c_int, tp: *mut Timespec) -> c_int;
    }
    const CLOCK_THREAD_CPUTIME_ID: c_int = 3;
    let mut ts = Timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid `struct timespec` to write to.
    let ok = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0;
    ok.then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu_time() -> Option<Duration> {
    None
}

/// A run is clean when every thread was on a CPU at least this share of its time, and the
/// threads overlapped by that much (on a busy machine they may otherwise take turns on one core,
/// or run one after the other).
pub const CLEAN_SHARE: f64 = 0.9;
/// How often a run is tried until it is clean.
pub const ATTEMPTS: usize = 4;

/// One timed run on some threads.
#[derive(Clone, Copy)]
pub struct Run {
    /// The slowest thread's time.
    pub wall: Duration,
    /// `true` when the threads ran at the same time, each on a CPU of its own, for nearly all of
    /// the run: each was on a CPU at least `CLEAN_SHARE` of its time (other load on the machine
    /// did not take turns with it), and the threads' spans overlap by that much (the scheduler
    /// did not run them one after the other).
    pub clean: bool,
}

/// Runs `op` `iters` times on each of `threads` threads released together (a `Barrier`).
pub fn on_threads(threads: usize, iters: u64, op: impl Fn() + Sync) -> Run {
    let barrier = Barrier::new(threads);
    let spans: Vec<(Instant, Instant, f64)> = std::thread::scope(|s| {
        let running: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let cpu = thread_cpu_time();
                    let start = Instant::now();
                    for _ in 0..iters {
                        op();
                    }
                    let end = Instant::now();
                    let wall = (end - start).as_secs_f64();
                    let share = match (cpu, thread_cpu_time()) {
                        (Some(a), Some(b)) => b.saturating_sub(a).as_secs_f64() / wall.max(1e-9),
                        _ => 1.0,
                    };
                    (start, end, share)
                })
            })
            .collect();
        running.into_iter().map(|t| t.join().expect("benchmark thread")).collect()
    });
    let wall = spans.iter().map(|&(start, end, _)| end - start).max().unwrap_or_default();
    let first_end = spans.iter().map(|s| s.1).min().expect("a thread");
    let last_start = spans.iter().map(|s| s.0).max().expect("a thread");
    let overlap =
        first_end.saturating_duration_since(last_start).as_secs_f64() / wall.as_secs_f64().max(1e-9);
    let share = spans.iter().map(|s| s.2).fold(1.0, f64::min);
    Run { wall, clean: share >= CLEAN_SHARE && overlap >= CLEAN_SHARE }
}

// ---------------------------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------------------------

/// The static data one `#[singleton]` adds to the binary, in bytes: its descriptor, its
/// `inventory` registration and list node, and the constructor's pointer in `.init_array`.
/// `Display` shows the parts: `Descriptor 104 + Registration 8 + ...`.
pub struct StaticData {
    pub descriptor: usize,
    pub registration: usize,
    pub node: usize,
    pub ctor: usize,
}

impl StaticData {
    pub fn of_a_singleton() -> Self {
        Self {
            descriptor: std::mem::size_of::<Descriptor>(),
            registration: std::mem::size_of::<Registration>(),
            node: std::mem::size_of::<inventory::Node>(),
            ctor: std::mem::size_of::<fn()>(),
        }
    }

    pub fn total(&self) -> usize {
        self.descriptor + self.registration + self.node + self.ctor
    }
}

impl fmt::Display for StaticData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { descriptor, registration, node, ctor } = self;
        write!(
            f,
            "Descriptor {descriptor} + Registration {registration} + inventory::Node {node} \
             + .init_array entry {ctor}"
        )
    }
}
