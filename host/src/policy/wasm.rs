//! The Wasm runtime: a policy is a component of the world in
//! `plugins/wit/policy.wit`, exporting
//! `evaluate: func(hook: string, input: string) -> result<string, string>`.
//!
//! - One engine for every component, with the pooling allocator sized below.
//! - Each component is compiled once per content hash: kept in memory, and
//!   serialized to a local cache directory so a restart does not recompile
//!   (never in the database: deserializing is trusted code loading).
//! - Sandbox: the linker defines nothing, so a component importing anything
//!   (WASI or any host function) is refused when it is loaded; linear memory
//!   is capped; every call runs on a fuel budget and an epoch deadline.
//! - Warm instances: an instance is reused only by the policy version that
//!   made it (which serves one tree, or the platform), and dropped after any
//!   trap or limit hit, so no state crosses trees and no broken guest is
//!   called twice. BENCHMARKS.md has the figures behind this choice.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, RwLock};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, InstancePre, Linker, TypedFunc, types::ComponentItem};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder, Trap,
};

use super::wasm_cache::{Rejected, WasmCache};
use super::{Budget, Fault, Hook, Policy};

/// Largest component accepted.
pub const COMPONENT_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Linear memory one instance may grow to.
pub const MEMORY_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Instruction budget of one evaluation (wasm operators, roughly), scaled by
/// its [`Budget`].
pub const FUEL_PER_EVALUATION: u64 = 200_000_000;
/// Native stack a guest may use (deep recursion traps here).
const WASM_STACK_BYTES_MAX: usize = 512 * 1024;
/// The epoch ticks this often; deadlines are rounded up to ticks.
const EPOCH_TICK: Duration = Duration::from_millis(2);
/// Instances that can exist at once (the pool's size).
const POOL_INSTANCES: u32 = 512;
/// Idle warm instances kept per policy version and in all.
const WARM_PER_POLICY: usize = 4;
const WARM_TOTAL: usize = 256;

type Evaluate = TypedFunc<(String, String), (Result<String, String>,)>;

struct Guest {
    limits: StoreLimits,
}

struct Runtime {
    engine: Engine,
    linker: Linker<Guest>,
    /// Compiled components by content hash.
    compiled: Mutex<HashMap<String, Component>>,
    warm_total: AtomicUsize,
}

static CACHE: RwLock<Option<Arc<WasmCache>>> = RwLock::new(None);

/// Sets the private directory where compiled components are kept between
/// restarts (`None`: memory only), for the components loaded from now on.
/// Refused if the directory cannot be made private (see [`WasmCache`]).
pub fn set_cache_dir(dir: Option<PathBuf>) -> Result<(), String> {
    let cache = dir.map(|d| WasmCache::open(&d).map(Arc::new)).transpose()?;
    match CACHE.write() {
        Ok(mut c) => *c = cache,
        Err(p) => *p.into_inner() = cache,
    }
    Ok(())
}

fn cache() -> Option<Arc<WasmCache>> {
    CACHE
        .read()
        .map(|c| c.clone())
        .unwrap_or_else(|p| p.into_inner().clone())
}

static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(POOL_INSTANCES)
        .total_core_instances(POOL_INSTANCES * 2)
        .total_memories(POOL_INSTANCES)
        .total_tables(POOL_INSTANCES)
        .max_core_instances_per_component(8)
        .max_memories_per_component(2)
        .max_tables_per_component(4)
        .max_memory_size(MEMORY_BYTES_MAX);
    let mut config = Config::new();
    config
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(WASM_STACK_BYTES_MAX)
        // Reserve only what a memory may grow to: 512 slots of 4 GiB each
        // would claim 2 TiB of address space per host.
        .memory_reservation(MEMORY_BYTES_MAX as u64)
        .memory_guard_size(64 * 1024)
        .memory_reservation_for_growth(0)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let engine = Engine::new(&config).expect("the Wasm engine configuration is valid");
    let ticker = engine.weak();
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            while let Some(engine) = ticker.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("the epoch thread starts");
    Runtime {
        linker: Linker::new(&engine),
        engine,
        compiled: Mutex::new(HashMap::new()),
        warm_total: AtomicUsize::new(0),
    }
});

/// An instance ready to be called, owned by one policy version.
struct Warm {
    store: Store<Guest>,
    evaluate: Evaluate,
}

pub struct WasmPolicy {
    id: String,
    version: i64,
    pre: InstancePre<Guest>,
    warm: Mutex<Vec<Warm>>,
    /// Keep warm instances (the default) or make a fresh one per call.
    reuse: bool,
}

impl std::fmt::Debug for WasmPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmPolicy")
            .field("id", &self.id)
            .field("version", &self.version)
            .finish()
    }
}

impl WasmPolicy {
    /// Loads a component: compiles it (or takes it from the cache), checks
    /// that it imports nothing and exports `evaluate` with the right type.
    pub fn load(id: &str, version: i64, bytes: &[u8]) -> Result<WasmPolicy, String> {
        if bytes.len() > COMPONENT_BYTES_MAX {
            return Err(format!(
                "the component is {} bytes; the limit is {COMPONENT_BYTES_MAX}",
                bytes.len()
            ));
        }
        if let Some(what) = not_a_component(bytes) {
            return Err(what);
        }
        let component = compile(&RUNTIME, bytes, cache().as_deref())?;
        WasmPolicy::from_component(id, version, &component)
    }

    /// A policy over an already compiled component, after the same checks.
    fn from_component(id: &str, version: i64, component: &Component) -> Result<WasmPolicy, String> {
        let rt = &*RUNTIME;
        let ty = component.component_type();
        if let Some((name, _)) = ty.imports(&rt.engine).next() {
            return Err(format!(
                "the component imports `{name}`; a policy may import nothing (no WASI, no host functions)"
            ));
        }
        match ty.get_export(&rt.engine, "evaluate").map(|e| e.ty) {
            Some(ComponentItem::ComponentFunc(_)) => {}
            _ => {
                return Err("the component must export `evaluate: func(hook: string, input: string) -> result<string, string>` (world canopy:policy/policy in plugins/wit)".into());
            }
        }
        let pre = rt
            .linker
            .instantiate_pre(component)
            .map_err(|e| format!("the component cannot be instantiated: {e}"))?;
        let policy = WasmPolicy {
            id: id.to_string(),
            version,
            pre,
            warm: Mutex::new(Vec::new()),
            reuse: true,
        };
        // One instance now: checks the export's type and warms the policy.
        let warm = policy.instantiate().map_err(|f| f.0)?;
        policy.put_back(warm);
        Ok(policy)
    }

    /// A fresh instance for every evaluation instead of warm ones (for
    /// measuring the difference).
    pub fn fresh_instances(mut self) -> WasmPolicy {
        self.reuse = false;
        if let Ok(idle) = self.warm.get_mut() {
            RUNTIME.warm_total.fetch_sub(idle.len(), Ordering::Relaxed);
            idle.clear();
        }
        self
    }

    fn instantiate(&self) -> Result<Warm, Fault> {
        let rt = &*RUNTIME;
        let limits = StoreLimitsBuilder::new()
            .memory_size(MEMORY_BYTES_MAX)
            .instances(16)
            .tables(8)
            .memories(2)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(&rt.engine, Guest { limits });
        store.limiter(|g| &mut g.limits);
        // Start-up code runs under the same limits as a call.
        store
            .set_fuel(FUEL_PER_EVALUATION)
            .map_err(|e| Fault(e.to_string()))?;
        store.set_epoch_deadline(ticks(super::EVALUATION_DEADLINE));
        let instance = self.pre.instantiate(&mut store).map_err(|e| {
            Fault(format!(
                "instantiation failed: {}",
                describe(&e, FUEL_PER_EVALUATION)
            ))
        })?;
        let evaluate = instance
            .get_typed_func::<(String, String), (Result<String, String>,)>(&mut store, "evaluate")
            .map_err(|e| {
                Fault(format!(
                    "`evaluate` must be `func(hook: string, input: string) -> result<string, string>`: {e}"
                ))
            })?;
        Ok(Warm { store, evaluate })
    }

    fn take(&self) -> Result<Warm, Fault> {
        let idle = self.warm.lock().ok().and_then(|mut w| w.pop());
        match idle {
            Some(warm) => {
                RUNTIME.warm_total.fetch_sub(1, Ordering::Relaxed);
                Ok(warm)
            }
            None => self.instantiate(),
        }
    }

    fn put_back(&self, warm: Warm) {
        if !self.reuse || RUNTIME.warm_total.load(Ordering::Relaxed) >= WARM_TOTAL {
            return;
        }
        if let Ok(mut idle) = self.warm.lock()
            && idle.len() < WARM_PER_POLICY
        {
            idle.push(warm);
            RUNTIME.warm_total.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for WasmPolicy {
    fn drop(&mut self) {
        if let Ok(idle) = self.warm.get_mut() {
            RUNTIME.warm_total.fetch_sub(idle.len(), Ordering::Relaxed);
        }
    }
}

impl Policy for WasmPolicy {
    fn id(&self) -> &str {
        &self.id
    }

    fn version(&self) -> i64 {
        self.version
    }

    fn evaluate(&self, hook: Hook, input: &Value, budget: Budget) -> Result<Value, Fault> {
        let input = serde_json::to_string(input).map_err(|e| Fault(e.to_string()))?;
        let mut warm = self.take()?;
        let fuel = budget.instructions(FUEL_PER_EVALUATION);
        warm.store
            .set_fuel(fuel)
            .map_err(|e| Fault(e.to_string()))?;
        warm.store.set_epoch_deadline(ticks(budget.deadline));
        let result = warm
            .evaluate
            .call(&mut warm.store, (hook.name().to_string(), input));
        // A trap or limit hit discards the instance (dropping `warm`).
        let output = match result {
            Ok((Ok(output),)) => {
                self.put_back(warm);
                output
            }
            Ok((Err(message),)) => {
                self.put_back(warm);
                return Err(Fault(format!("returned an error: {}", clip(&message))));
            }
            Err(e) => return Err(Fault(describe(&e, fuel))),
        };
        if output.len() > hook.output_bytes_max() {
            return Err(Fault(format!(
                "output is {} bytes; the limit is {}",
                output.len(),
                hook.output_bytes_max()
            )));
        }
        serde_json::from_str(&output)
            .map_err(|e| Fault(format!("output is not a JSON document: {e}")))
    }
}

/// The compiled component for `bytes`: from memory, from the disk cache
/// when its entry authenticates as this host's compilation of these bytes,
/// or compiled now (and then cached).
fn compile(rt: &Runtime, bytes: &[u8], cache: Option<&WasmCache>) -> Result<Component, String> {
    let hash = hex::encode(Sha256::digest(bytes));
    if let Some(c) = rt.compiled.lock().ok().and_then(|m| m.get(&hash).cloned()) {
        return Ok(c);
    }
    let engine = engine_hash(rt);
    let from_disk = cache.and_then(|cache| match cache.read(&hash, &engine) {
        Ok(serialized) => {
            // SAFETY: the bytes carry this host's HMAC over the upload's
            // content hash, the engine's compatibility hash and the bytes
            // themselves, under a key kept in this host's private cache
            // directory: they are what this host serialized from compiling
            // exactly this component with this engine configuration.
            match unsafe { Component::deserialize(&rt.engine, serialized) } {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(%hash, error = %e, "cached component does not load; recompiling");
                    None
                }
            }
        }
        Err(Rejected::Missing) => None,
        Err(why) => {
            tracing::warn!(%hash, dir = %cache.dir().display(), reason = ?why, "cached component is not authenticated by this host; ignored, recompiling");
            None
        }
    });
    let component = match from_disk {
        Some(c) => c,
        None => {
            let c = Component::from_binary(&rt.engine, bytes)
                .map_err(|e| format!("not a valid component: {}", chain(&e)))?;
            if let Some(cache) = cache {
                store_in_cache(&c, cache, &hash, &engine);
            }
            c
        }
    };
    if let Ok(mut m) = rt.compiled.lock() {
        m.insert(hash, component.clone());
    }
    Ok(component)
}

/// The engine configuration's compatibility hash, as a cache key part: a
/// file from another configuration is never loaded.
fn engine_hash(rt: &Runtime) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    rt.engine.precompile_compatibility_hash().hash(&mut h);
    format!("{:016x}", h.finish())
}

fn store_in_cache(component: &Component, cache: &WasmCache, hash: &str, engine: &str) {
    let written = component
        .serialize()
        .map_err(std::io::Error::other)
        .and_then(|bytes| cache.write(hash, engine, &bytes));
    if let Err(e) = written {
        tracing::warn!(dir = %cache.dir().display(), error = %e, "compiled component not cached");
    }
}

fn ticks(deadline: Duration) -> u64 {
    (deadline.as_micros() / EPOCH_TICK.as_micros()).max(1) as u64 + 1
}

/// A trap or error in words a policy author can act on.
fn describe(e: &wasmtime::Error, fuel: u64) -> String {
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => format!("ran out of fuel (its budget is {fuel} instructions)"),
        Some(Trap::Interrupt) => "ran past its deadline".into(),
        Some(Trap::StackOverflow) => "overflowed its stack (recursion too deep)".into(),
        Some(Trap::UnreachableCodeReached) => {
            "trapped: reached `unreachable` (a panic or abort in the guest)".into()
        }
        Some(Trap::MemoryOutOfBounds) => "trapped: memory access out of bounds".into(),
        Some(Trap::AllocationTooLarge) => format!(
            "tried to grow its memory past the {} MiB limit",
            MEMORY_BYTES_MAX / (1024 * 1024)
        ),
        Some(trap) => format!("trapped: {trap}"),
        None => clip(&chain(e)),
    }
}

/// Why `bytes` cannot be a component, when their header says so: the
/// parser's own message would be a dump of the header bytes.
fn not_a_component(bytes: &[u8]) -> Option<String> {
    if !bytes.starts_with(b"\0asm") {
        return Some(
            "not WebAssembly: a component starts with the bytes `\\0asm` (was a Rhai script or base64 text sent as the component?)".into(),
        );
    }
    match bytes.get(4..8) {
        Some([1, 0, 0, 0]) => Some(
            "this is a core WebAssembly module, not a component: run `canopy policy componentize MODULE.wasm -o COMPONENT.wasm` and upload COMPONENT.wasm (plugins/README.md)".into(),
        ),
        _ => None,
    }
}

fn chain(e: &wasmtime::Error) -> String {
    one_line(&format!("{e:#}"))
}

/// A message on one line: parser errors print byte arrays and backtraces
/// over many lines, which would not read as one reason in a problem
/// document or a log line. Line breaks and the indentation after them
/// become one space, and `[0x0, 0x61]` stays compact.
pub fn one_line(message: &str) -> String {
    if !message.contains('\n') {
        return message.to_string();
    }
    let joined = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    joined
        .replace("[ ", "[")
        .replace(", ]", "]")
        .replace("{ ", "{")
        .replace(", }", "}")
}

fn clip(message: &str) -> String {
    const MAX: usize = 1000;
    let message = one_line(message);
    if message.len() <= MAX {
        return message;
    }
    let mut end = MAX;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HOSTILE: &[u8] = include_bytes!("../../../tests/fixtures/hostile.wasm");
    const DEADLINE: Budget = Budget::with_deadline(Duration::from_secs(1));

    fn idle(policy: &WasmPolicy) -> usize {
        policy.warm.lock().unwrap().len()
    }

    #[test]
    fn warm_instances_are_reused_and_dropped_after_a_trap() {
        let policy = WasmPolicy::load("hostile", 1, HOSTILE).unwrap();
        let calm = json!({"target": {"name": "calm"}});
        let out = policy.evaluate(Hook::Authorize, &calm, DEADLINE).unwrap();
        assert_eq!(out, json!({"decision": "allow"}));
        assert_eq!(idle(&policy), 1, "the instance went back to the pool");

        let fault = policy
            .evaluate(
                Hook::Authorize,
                &json!({"target": {"name": "hostile:trap"}}),
                DEADLINE,
            )
            .unwrap_err();
        assert!(fault.0.contains("trapped"), "{fault}");
        assert_eq!(idle(&policy), 0, "a trapped instance is never reused");
        // The next call gets a fresh instance and succeeds.
        policy.evaluate(Hook::Authorize, &calm, DEADLINE).unwrap();
        assert_eq!(idle(&policy), 1);
    }

    #[test]
    fn limits_fail_closed_with_a_reason() {
        let policy = WasmPolicy::load("hostile", 1, HOSTILE).unwrap();
        for (marker, expected) in [
            ("hostile:loop", "fuel"),
            ("hostile:recursion", "stack"),
            ("hostile:malformed", "not a JSON document"),
        ] {
            let fault = policy
                .evaluate(
                    Hook::Authorize,
                    &json!({"target": {"name": marker}}),
                    DEADLINE,
                )
                .unwrap_err();
            // Debug and release builds may trip different limits first
            // for the loop; the recursion and malformed output are exact.
            if marker != "hostile:loop" {
                assert!(fault.0.contains(expected), "{marker}: {fault}");
            }
        }
        let fault = policy
            .evaluate(
                Hook::Authorize,
                &json!({"target": {"name": "hostile:loop"}}),
                Budget::with_deadline(Duration::from_millis(20)),
            )
            .unwrap_err();
        assert!(
            fault.0.contains("fuel") || fault.0.contains("deadline"),
            "{fault}"
        );
    }

    const OTHER: &[u8] = include_bytes!("../../../policies/authorize.wasm");

    /// Compiles `bytes` as after a restart: nothing in memory.
    fn compile_afresh(cache: &WasmCache, bytes: &[u8]) -> Component {
        let rt = &*RUNTIME;
        rt.compiled
            .lock()
            .unwrap()
            .remove(&hex::encode(Sha256::digest(bytes)));
        compile(rt, bytes, Some(cache)).unwrap()
    }

    /// The hostile component traps on its marker; any other component's
    /// code answers with a document.
    fn runs_as_hostile(component: &Component) -> bool {
        let policy = WasmPolicy::from_component("hostile", 1, component).unwrap();
        let trap = json!({"target": {"name": "hostile:trap"}});
        matches!(policy.evaluate(Hook::Authorize, &trap, DEADLINE), Err(f) if f.0.contains("trapped"))
    }

    fn cache_in(name: &str) -> (PathBuf, WasmCache, String, PathBuf) {
        let dir = super::super::wasm_cache::tests::tempfile_dir(name);
        let cache = WasmCache::open(&dir).unwrap();
        let hash = hex::encode(Sha256::digest(HOSTILE));
        let file = cache.path(&hash, &engine_hash(&RUNTIME));
        (dir, cache, hash, file)
    }

    #[test]
    fn a_compiled_component_is_cached_on_disk_and_loaded_from_there() {
        let (dir, cache, hash, file) = cache_in("roundtrip");
        compile_afresh(&cache, HOSTILE);
        assert!(file.exists(), "serialized to {}", file.display());
        let started = std::time::Instant::now();
        let component = compile_afresh(&cache, HOSTILE);
        let loaded_in = started.elapsed();
        assert!(runs_as_hostile(&component));
        assert!(cache.read(&hash, &engine_hash(&RUNTIME)).is_ok());
        // Garbage is not trusted: it is recompiled.
        std::fs::write(&file, b"garbage").unwrap();
        assert!(runs_as_hostile(&compile_afresh(&cache, HOSTILE)));
        let _ = std::fs::remove_dir_all(&dir);
        eprintln!("loaded from the disk cache in {loaded_in:?}");
    }

    #[test]
    fn an_entry_copied_from_another_component_is_recompiled_never_run() {
        let (dir, cache, hash, file) = cache_in("copied");
        let engine = engine_hash(&RUNTIME);
        compile_afresh(&cache, HOSTILE);
        compile_afresh(&cache, OTHER);
        let other = cache.path(&hex::encode(Sha256::digest(OTHER)), &engine);
        std::fs::copy(&other, &file).unwrap();
        assert_eq!(cache.read(&hash, &engine), Err(Rejected::BadTag));
        let component = compile_afresh(&cache, HOSTILE);
        assert!(
            runs_as_hostile(&component),
            "the other component's code ran"
        );
        assert!(
            cache.read(&hash, &engine).is_ok(),
            "the entry was rewritten"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_tampered_entry_is_recompiled_never_run() {
        let (dir, cache, hash, file) = cache_in("tampered");
        let engine = engine_hash(&RUNTIME);
        compile_afresh(&cache, HOSTILE);
        let mut bytes = std::fs::read(&file).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        std::fs::write(&file, &bytes).unwrap();
        assert_eq!(cache.read(&hash, &engine), Err(Rejected::BadTag));
        assert!(runs_as_hostile(&compile_afresh(&cache, HOSTILE)));
        assert!(
            cache.read(&hash, &engine).is_ok(),
            "the entry was rewritten"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_entry_without_a_tag_is_recompiled_never_run() {
        let (dir, cache, hash, file) = cache_in("untagged");
        let engine = engine_hash(&RUNTIME);
        // A genuine compiled artifact of another component, as wasmtime
        // wrote it, but without this host's tag.
        let other = Component::from_binary(&RUNTIME.engine, OTHER).unwrap();
        std::fs::write(&file, other.serialize().unwrap()).unwrap();
        assert_eq!(cache.read(&hash, &engine), Err(Rejected::Untagged));
        assert!(runs_as_hostile(&compile_afresh(&cache, HOSTILE)));
        assert!(
            cache.read(&hash, &engine).is_ok(),
            "the entry was rewritten"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn components_that_import_or_lack_evaluate_are_refused() {
        let empty = WasmPolicy::load("empty", 1, b"\0asm\x0d\0\x01\0").unwrap_err();
        assert!(empty.contains("must export `evaluate"), "{empty}");
        let junk = WasmPolicy::load("junk", 1, b"\0asm junk").unwrap_err();
        assert!(junk.contains("not a valid component"), "{junk}");
        let too_big = WasmPolicy::load("big", 1, &vec![0; COMPONENT_BYTES_MAX + 1]).unwrap_err();
        assert!(too_big.contains("limit"), "{too_big}");
    }

    #[test]
    fn a_core_module_or_other_bytes_are_named_in_one_line() {
        let core = WasmPolicy::load("core", 1, b"\0asm\x01\0\0\0").unwrap_err();
        assert!(
            core.contains("core WebAssembly module, not a component"),
            "{core}"
        );
        assert!(core.contains("canopy policy componentize"), "{core}");
        let text = WasmPolicy::load("text", 1, b"fn evaluate(hook, input) {}").unwrap_err();
        assert!(text.starts_with("not WebAssembly"), "{text}");
        let dump = "bad magic number - expected=[\n    0x0,\n    0x61,\n] actual=[\n    0x7b,\n]";
        assert_eq!(
            one_line(dump),
            "bad magic number - expected=[0x0, 0x61] actual=[0x7b]"
        );
        let version = WasmPolicy::load("v", 1, b"\0asm\x0e\0\x01\0").unwrap_err();
        assert!(!version.contains('\n'), "{version}");
    }
}
