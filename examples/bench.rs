//! The benchmarks of `benches/` as one plain table, without criterion: medians of interleaved
//! repetitions, in ns per operation, and the ratios the performance targets are stated in.
//!
//! Run with `cargo run --release --example bench` (about 10 s on 2 cores, at most about 45 s on
//! a busy machine). Every figure is the median of `REPS` repetitions; the cases take turns within
//! each repetition, so a burst of noise from the rest of the machine hits all of them alike.
//!
//! A 2-thread figure is the time each of two threads, released together, takes per operation
//! while the other does the same (the slower thread's): perfect scaling keeps it equal to the
//! 1-thread figure, and a cache line written by both threads makes it grow. On a busy machine the
//! two threads may take turns on one core, which hides that growth; so a repetition counts only
//! when both threads held a CPU for 90% of a span they shared (it is tried up to 4 times), and
//! the table says how many did ("clean").
//!
//! The memory figures count heap bytes with a counting global allocator (switched on only around
//! what it measures).

use std::alloc::{GlobalAlloc, Layout, System};
use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, LazyLock, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use singleton_kit::__private::{inventory, Descriptor, Registration};
use singleton_kit::{manager, registered, singleton, Instance, RateLimit, SingletonCore};

/// Repetitions of every timed case; the table shows their median.
const REPS: usize = 21;
/// About how long one repetition of one case runs.
const TARGET: Duration = Duration::from_millis(12);

// ---------------------------------------------------------------------------------------------
// What is measured
// ---------------------------------------------------------------------------------------------

/// The singleton under test.
#[singleton]
#[derive(Default)]
pub struct Hot {
    value: u64,
}

/// Stamps out one `#[singleton]` unit struct per identifier, for `registered()` over 1,000
/// registrations; each one's name is its own in snake_case (`R042` -> `r042`).
macro_rules! stamp {
    ($($ty:ident)*) => {
        $(
            #[singleton]
            #[derive(Default)]
            pub struct $ty;
        )*
    };
}

#[allow(dead_code)]
mod many {
    use super::singleton;

    stamp! {
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
    }
}

// ---------------------------------------------------------------------------------------------
// Baselines
// ---------------------------------------------------------------------------------------------

static LAZY: LazyLock<Hot> = LazyLock::new(Hot::default);
static SHARED_COUNTER: AtomicU64 = AtomicU64::new(0);
static ARC: LazyLock<Arc<Hot>> = LazyLock::new(|| Arc::new(Hot::default()));
static SWAP: LazyLock<ArcSwap<Hot>> = LazyLock::new(|| ArcSwap::from_pointee(Hot::default()));
type AnyMap = HashMap<String, Arc<dyn Any + Send + Sync>>;
/// Holds `hot` and as many other names as the global core (the 1,000 stamped singletons).
static MAP: LazyLock<RwLock<AnyMap>> = LazyLock::new(|| {
    let mut map: AnyMap = HashMap::new();
    map.insert(Hot::SINGLETON_NAME.to_owned(), Arc::new(Hot::default()));
    for r in registered() {
        map.entry(r.name().to_owned()).or_insert_with(|| Arc::new(0_u64));
    }
    RwLock::new(map)
});

singleton_registry::define_registry!(baseline_registry);

/// The seed design's limiter: a deque of admission times under a mutex.
struct SlidingWindow {
    max_ops: usize,
    window: Duration,
    times: VecDeque<Instant>,
}

impl SlidingWindow {
    fn new(limit: RateLimit) -> Mutex<Self> {
        Mutex::new(Self {
            max_ops: limit.max_ops().map_or(usize::MAX, |m| m as usize),
            window: limit.window(),
            times: VecDeque::new(),
        })
    }
}

fn sliding_window_check(w: &Mutex<SlidingWindow>) -> bool {
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
/// millisecond plus the clock's tick): the measured path is the steady state of a full, sliding, exact window.
fn sliding_limit() -> RateLimit {
    RateLimit::new(1_000_000, Duration::from_millis(1))
}

// ---------------------------------------------------------------------------------------------
// Heap accounting, for the memory figures (counts only while `COUNTING` is on)
// ---------------------------------------------------------------------------------------------

struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

fn count(delta: isize) {
    if COUNTING.load(Ordering::Relaxed) {
        LIVE_BYTES.fetch_add(delta, Ordering::Relaxed);
    }
}

// SAFETY: forwards every call to `System` unchanged; only counts sizes.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Heap bytes still allocated after `f` (and kept alive by what it returns), net.
fn heap_kept_by<R>(f: impl FnOnce() -> R) -> (isize, R) {
    LIVE_BYTES.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let r = f();
    COUNTING.store(false, Ordering::SeqCst);
    (LIVE_BYTES.load(Ordering::SeqCst), r)
}

// ---------------------------------------------------------------------------------------------
// Timing
// ---------------------------------------------------------------------------------------------

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

/// One timed run on some threads.
#[derive(Clone, Copy)]
struct Run {
    /// The slowest thread's time.
    wall: Duration,
    /// `true` when the threads ran at the same time, each on a CPU of its own, for nearly all of
    /// the run: each was on a CPU at least `CLEAN_SHARE` of its time (other load on the machine
    /// did not take turns with it), and the threads' spans overlap by that much (the scheduler
    /// did not run them one after the other).
    clean: bool,
}

/// Runs `op` `iters` times on each of `threads` threads released together.
fn on_threads(threads: usize, iters: u64, op: impl Fn() + Sync) -> Run {
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

/// A repetition is clean when every thread was on a CPU at least this share of its time, and the
/// threads overlapped by that much.
const CLEAN_SHARE: f64 = 0.9;
/// How often a repetition is tried until it is clean.
const ATTEMPTS: usize = 4;
/// No more retries after this long, to keep the run under a minute on a busy machine.
const RETRY_BUDGET: Duration = Duration::from_secs(30);

/// One timed case: `run(n)` does `n` operations (on each thread).
struct Case<'a> {
    group: &'static str,
    name: &'static str,
    threads: usize,
    run: Box<dyn Fn(u64) -> Run + Sync + 'a>,
    iters: u64,
    /// ns per operation, and whether the repetition was clean.
    samples: Vec<(f64, bool)>,
}

impl Case<'_> {
    /// Finds an `n` that runs about `TARGET`.
    fn calibrate(&mut self) {
        let mut n = 1_000;
        loop {
            let t = (self.run)(n).wall;
            if t >= Duration::from_millis(2) || n >= 1 << 34 {
                let per_op = t.as_secs_f64() / n as f64;
                self.iters = ((TARGET.as_secs_f64() / per_op) as u64).max(1);
                return;
            }
            n *= 4;
        }
    }

    fn sample(&mut self, started: Instant) {
        let mut run = (self.run)(self.iters);
        for _ in 1..ATTEMPTS {
            if run.clean || started.elapsed() > RETRY_BUDGET {
                break;
            }
            run = (self.run)(self.iters);
        }
        let ns = run.wall.as_secs_f64() * 1e9 / self.iters as f64;
        self.samples.push((ns, run.clean));
    }

    /// The clean repetitions, or all of them when fewer than a third were clean.
    fn kept(&self) -> Vec<f64> {
        let clean: Vec<f64> = self.samples.iter().filter(|s| s.1).map(|s| s.0).collect();
        if clean.len() * 3 >= self.samples.len() {
            clean
        } else {
            self.samples.iter().map(|s| s.0).collect()
        }
    }

    fn clean(&self) -> usize {
        self.samples.iter().filter(|s| s.1).count()
    }
}

fn median(samples: &[f64]) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let mid = s.len() / 2;
    if s.len() % 2 == 1 {
        s[mid]
    } else {
        (s[mid - 1] + s[mid]) / 2.0
    }
}

/// Median time of one call of `f`, in ns: repetitions of batches of about 5 ms.
fn time_call<R>(mut f: impl FnMut() -> R) -> f64 {
    let start = Instant::now();
    black_box(f());
    let once = start.elapsed().as_secs_f64().max(1e-9);
    let batch = ((0.005 / once) as usize).max(1);
    let samples: Vec<f64> = (0..REPS * 3)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..batch {
                black_box(f());
            }
            start.elapsed().as_secs_f64() * 1e9 / batch as f64
        })
        .collect();
    median(&samples)
}

/// Builds a case of `op` on `threads` threads.
macro_rules! case {
    ($cases:ident, $group:literal, $name:literal, $threads:expr, $op:expr) => {
        $cases.push(Case {
            group: $group,
            name: $name,
            threads: $threads,
            run: Box::new(move |n| {
                on_threads($threads, n, || {
                    black_box($op);
                })
            }),
            iters: 0,
            samples: Vec::new(),
        })
    };
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

fn rustc_version() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(|| "rustc (unknown version)".to_owned(), |s| s.trim().to_owned())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned())
}

/// "met" or "MISSED", and by how much, for a ratio that must stay at or below `max`.
fn at_most(ratio: f64, max: f64) -> String {
    if ratio <= max {
        format!("met ({ratio:.2} <= {max})")
    } else {
        format!("MISSED ({ratio:.2} > {max}: {:.1}x over)", ratio / max)
    }
}

/// The same for a ratio that must reach at least `min`.
fn at_least(ratio: f64, min: f64) -> String {
    if ratio >= min {
        format!("met ({ratio:.1} >= {min})")
    } else {
        format!("MISSED ({ratio:.1} < {min}: {:.1}x short)", min / ratio)
    }
}

fn print_memory() {
    let descriptor = std::mem::size_of::<Descriptor>();
    let registration = std::mem::size_of::<Registration>();
    let node = std::mem::size_of::<inventory::Node>();
    let ctor = std::mem::size_of::<fn()>();
    let registrations = registered().len();

    // Heap a core spends on the registrations it knows (an entry and two map slots each).
    let (core_heap, core) = heap_kept_by(|| SingletonCore::with_rate_limit(RateLimit::unlimited()));
    // Heap per live instance stored with `set`, beyond the 8-byte value itself.
    let (set_heap, ()) = heap_kept_by(|| {
        for i in 0..1000_u64 {
            core.set(&format!("mem_{i:04}"), i).expect("unlimited");
        }
    });
    let (map_heap, map) = heap_kept_by(|| {
        let mut map: AnyMap = HashMap::new();
        for i in 0..1000_u64 {
            map.insert(format!("mem_{i:04}"), Arc::new(i));
        }
        map
    });
    drop(map);
    drop(core);

    println!("memory");
    let line = |label: &str, bytes: isize, note: String| {
        println!("{}", format!("  {label:<44} {bytes:>6} B  {note}").trim_end());
    };
    line(
        "static data per registered singleton",
        (descriptor + registration + node + ctor) as isize,
        format!(
            "(Descriptor {descriptor} + Registration {registration} + inventory::Node {node} \
             + .init_array entry {ctor}; code not counted)"
        ),
    );
    line(
        "heap per registration, per core",
        core_heap / registrations as isize,
        format!("({registrations} registrations: entry + map slots, in SingletonCore::new())"),
    );
    line(
        "heap per live instance (set, 8 B value)",
        set_heap / 1000,
        "(node: 8 stripes x 128 B + metadata; entry; name; boxed value; map slot)".to_owned(),
    );
    line(
        "same in RwLock<HashMap<String, Arc<dyn Any>>>",
        map_heap / 1000,
        "(String + Arc + map slot)".to_owned(),
    );
    line("handle: Instance<T>", std::mem::size_of::<Instance<Hot>>() as isize, String::new());
    line("handle: Arc<T>", std::mem::size_of::<Arc<Hot>>() as isize, String::new());
}

fn main() {
    let wall = Instant::now();
    let threads = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("singleton-kit bench: medians of {REPS} interleaved repetitions, ns per operation");
    let load = std::fs::read_to_string("/proc/loadavg")
        .map_or_else(|_| "?".to_owned(), |l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    println!(
        "machine: {} | nproc {threads} | load average {load} | {} | {}",
        cpu_model(),
        rustc_version(),
        std::env::consts::OS
    );
    if cfg!(debug_assertions) {
        println!("WARNING: a debug build; run `cargo run --release --example bench`");
    }
    println!();

    // First, while no node has been recycled into the pool yet.
    print_memory();
    println!();

    manager().set_rate_limit(RateLimit::unlimited());
    baseline_registry::register(Hot::default());
    LazyLock::force(&LAZY);
    LazyLock::force(&ARC);
    LazyLock::force(&SWAP);
    LazyLock::force(&MAP);
    drop(Hot::instance());

    let unlimited = SingletonCore::with_rate_limit(RateLimit::unlimited());
    let limited = SingletonCore::with_rate_limit(sliding_limit());
    unlimited.set("probe", 0_u8).expect("unlimited");
    limited.set("probe", 0_u8).expect("first operation");
    let window = SlidingWindow::new(sliding_limit());
    let name = Hot::SINGLETON_NAME;
    let (unlimited, limited, window) = (&unlimited, &limited, &window);

    let mut cases: Vec<Case<'_>> = Vec::new();
    for t in [1, 2] {
        case!(cases, "typed", "T::instance()", t, Hot::instance().value);
        case!(cases, "typed", "LazyLock deref", t, black_box(&LAZY).value);
        case!(cases, "typed", "LazyLock + shared AtomicU64", t, {
            black_box(&SHARED_COUNTER).fetch_add(1, Ordering::Relaxed);
            black_box(&LAZY).value
        });
        case!(cases, "typed", "Arc clone of a global", t, Arc::clone(black_box(&*ARC)).value);
        case!(cases, "typed", "arc-swap load (guard)", t, black_box(&*SWAP).load().value);
        case!(cases, "typed", "arc-swap load_full", t, black_box(&*SWAP).load_full().value);
        case!(
            cases,
            "typed",
            "singleton-registry get::<T>()",
            t,
            baseline_registry::get::<Hot>().expect("registered").value
        );
        case!(cases, "by name", "manager().get::<T>(name)", t, {
            manager().get::<Hot>(black_box(name)).expect("unlimited").expect("registered").value
        });
        case!(cases, "by name", "RwLock<HashMap> + downcast", t, {
            let map = MAP.read().unwrap_or_else(PoisonError::into_inner);
            let any = map.get(black_box(name)).cloned();
            drop(map);
            any.expect("inserted").downcast::<Hot>().expect("a Hot").value
        });
        case!(cases, "limiter", "has(), unlimited core", t, unlimited.has(black_box("probe")));
        case!(cases, "limiter", "has(), exact sliding window", t, limited.has(black_box("probe")));
        case!(cases, "limiter", "Mutex<VecDeque<Instant>> check", t, sliding_window_check(black_box(window)));
    }

    for c in &mut cases {
        c.calibrate();
    }
    let started = Instant::now();
    for _ in 0..REPS {
        for c in &mut cases {
            c.sample(started);
        }
    }

    let case = |name: &str, threads: usize| -> &Case<'_> {
        cases.iter().find(|c| c.name == name && c.threads == threads).expect("a case")
    };
    let ns = |name: &str, threads: usize| median(&case(name, threads).kept());
    let best =
        |name: &str, threads: usize| case(name, threads).kept().into_iter().fold(f64::INFINITY, f64::min);

    println!(
        "{:<9} {:<32} {:>9} {:>9} {:>7} {:>11} {:>11}",
        "group", "case", "1 thread", "2 threads", "2T/1T", "2T/1T best", "clean 1T/2T"
    );
    let mut seen = Vec::new();
    for c in &cases {
        if seen.contains(&c.name) {
            continue;
        }
        seen.push(c.name);
        let (one, two) = (ns(c.name, 1), ns(c.name, 2));
        println!(
            "{:<9} {:<32} {:>9.2} {:>9.2} {:>7.2} {:>11.2} {:>11}",
            c.group,
            c.name,
            one,
            two,
            two / one,
            best(c.name, 2) / best(c.name, 1),
            format!("{}/{}", case(c.name, 1).clean(), case(c.name, 2).clean())
        );
    }
    let limiter = |t| ns("has(), exact sliding window", t) - ns("has(), unlimited core", t);
    println!(
        "{:<9} {:<32} {:>9.2} {:>9.2} {:>7.2}",
        "limiter",
        "= limiter check (difference)",
        limiter(1),
        limiter(2),
        limiter(2) / limiter(1)
    );

    // The listings, over 1,000 registrations and 1,000 live instances.
    let registrations = registered().len();
    let registered_ns = time_call(registered);
    let stats_core = SingletonCore::with_rate_limit(RateLimit::unlimited());
    for i in 0..1000_u64 {
        stats_core.set(&format!("live_{i:04}"), i).expect("unlimited");
    }
    let stats_ns = time_call(|| stats_core.stats().expect("unlimited"));
    println!();
    println!(
        "{:<42} {:>9.1} us",
        format!("registered() over {registrations} registrations"),
        registered_ns / 1e3
    );
    println!("{:<42} {:>9.1} us", "stats() with 1,000 live singletons", stats_ns / 1e3);

    let instance = |t| ns("T::instance()", t);
    let lazy = |t| ns("LazyLock deref", t);
    let registry = |t| ns("singleton-registry get::<T>()", t);
    let get = |t| ns("manager().get::<T>(name)", t);
    let rwlock = |t| ns("RwLock<HashMap> + downcast", t);
    let deque = |t| ns("Mutex<VecDeque<Instant>> check", t);
    println!();
    println!("{:<40} {:>8} {:>9}  target", "ratio", "1 thread", "2 threads");
    let row = |label: &str, one: Option<f64>, two: f64, verdict: String| {
        let one = one.map_or_else(String::new, |r| format!("{r:.2}"));
        println!("{label:<40} {one:>8} {two:>9.2}  {verdict}");
    };
    row(
        "instance() / LazyLock deref",
        Some(instance(1) / lazy(1)),
        instance(2) / lazy(2),
        format!("<= 5 (1 thread): {}", at_most(instance(1) / lazy(1), 5.0)),
    );
    row(
        "instance() 2 threads / 1 thread",
        None,
        instance(2) / instance(1),
        format!("<= 1.5: {}", at_most(instance(2) / instance(1), 1.5)),
    );
    row(
        "singleton-registry get / instance()",
        Some(registry(1) / instance(1)),
        registry(2) / instance(2),
        format!(
            ">= 10: 1T {}; 2T {}",
            at_least(registry(1) / instance(1), 10.0),
            at_least(registry(2) / instance(2), 10.0)
        ),
    );
    row(
        "get(name) / RwLock<HashMap> + downcast",
        Some(get(1) / rwlock(1)),
        get(2) / rwlock(2),
        format!("<= 0.5: 1T {}; 2T {}", at_most(get(1) / rwlock(1), 0.5), at_most(get(2) / rwlock(2), 0.5)),
    );
    row(
        "limiter check / Mutex<VecDeque> check",
        Some(limiter(1) / deque(1)),
        limiter(2) / deque(2),
        format!(
            "<= 0.5: 1T {}; 2T {}",
            at_most(limiter(1) / deque(1), 0.5),
            at_most(limiter(2) / deque(2), 0.5)
        ),
    );
    println!(
        "{:<40} {:>8} {:>9}  <= 1 ms: {}",
        "registered(), 1,000 registrations (us)",
        format!("{:.1}", registered_ns / 1e3),
        "",
        if registered_ns <= 1e6 { "met" } else { "MISSED" }
    );

    println!();
    println!(
        "noise: a repetition is clean when its threads ran at the same time, each on a CPU >= {:.0}% \
         of its time (tried up to {ATTEMPTS} times); medians are of the clean ones (of all, when under \
         a third are clean). LazyLock deref 2T/1T = {:.2}.",
        CLEAN_SHARE * 100.0,
        lazy(2) / lazy(1)
    );
    let stats = limited.stats().expect("admitted");
    println!(
        "limiter: {} refusals in the run (1,000,000 per 1 ms window: the exact check admits every call)",
        stats.rate_limited_count
    );
    println!("total time {:.1} s", wall.elapsed().as_secs_f64());
}
