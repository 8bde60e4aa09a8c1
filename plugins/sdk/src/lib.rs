//! Guest SDK for Canopy policy components.
//!
//! A policy is one function of the hook's name and its input document, that
//! returns the output document (`docs/POLICIES.md` describes both):
//!
//! ```ignore
//! use canopy_policy::serde_json::{Value, json};
//!
//! fn evaluate(hook: &str, input: &Value) -> Result<Value, String> {
//!     Ok(json!({"decision": "allow"}))
//! }
//!
//! canopy_policy::export!(evaluate);
//! ```
//!
//! Built for `wasm32-unknown-unknown` as a `cdylib` and turned into a component
//! by `plugins/componentize`, it exports the world of `plugins/wit/policy.wit`:
//!
//! ```wit
//! export evaluate: func(hook: string, input: string) -> result<string, string>;
//! ```
//!
//! The canonical ABI is written out here by hand (no bindings generator): the
//! core module exports `evaluate` (`(i32, i32, i32, i32) -> i32`, a pointer to a
//! 12-byte return area: the `result` discriminant as a byte at 0, the string's
//! pointer at 4 and its length at 8), `cabi_post_evaluate` (frees the returned
//! string) and `cabi_realloc` (the host allocates the argument strings with
//! it). The module imports nothing: the host links no function at all.
//!
//! An input that is not JSON is an `Err`; an `Err` fails closed on the host.
//! [`rhai`] has helpers that mirror Rhai's semantics, for ports of Rhai
//! policies that must answer exactly as the script does.

pub use serde_json;

pub mod rhai;

/// Exports `fn(&str, &serde_json::Value) -> Result<serde_json::Value, String>`
/// as the component's `evaluate`: the input text is parsed (not JSON: `Err`)
/// and the returned document serialized.
#[macro_export]
macro_rules! export {
    ($f:path) => {
        $crate::export_raw!(|hook: &str,
                             input: &str|
         -> ::core::result::Result<
            ::std::string::String,
            ::std::string::String,
        > { $crate::__abi::json(hook, input, $f) });
    };
}

/// Exports `fn(&str, &str) -> Result<String, String>`, on the texts as they
/// are: nothing is parsed nor checked (tests use it to return malformed
/// documents).
#[macro_export]
macro_rules! export_raw {
    ($f:expr) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            #[unsafe(export_name = "evaluate")]
            unsafe extern "C" fn __canopy_evaluate(
                hook_ptr: *mut u8,
                hook_len: usize,
                input_ptr: *mut u8,
                input_len: usize,
            ) -> *mut u8 {
                unsafe { $crate::__abi::evaluate(hook_ptr, hook_len, input_ptr, input_len, $f) }
            }

            #[unsafe(export_name = "cabi_post_evaluate")]
            unsafe extern "C" fn __canopy_post_evaluate(ret: *mut u8) {
                unsafe { $crate::__abi::post_return(ret) }
            }

            #[unsafe(export_name = "cabi_realloc")]
            unsafe extern "C" fn __canopy_realloc(
                old_ptr: *mut u8,
                old_len: usize,
                align: usize,
                new_len: usize,
            ) -> *mut u8 {
                unsafe { $crate::__abi::realloc(old_ptr, old_len, align, new_len) }
            }
        };
    };
}

#[doc(hidden)]
pub mod __abi {
    use serde_json::Value;
    use std::alloc::{Layout, alloc, dealloc, handle_alloc_error, realloc as grow};

    /// Parses the input, runs the policy, serializes its document.
    pub fn json(
        hook: &str,
        input: &str,
        f: impl FnOnce(&str, &Value) -> Result<Value, String>,
    ) -> Result<String, String> {
        let input: Value =
            serde_json::from_str(input).map_err(|e| format!("the input is not JSON: {e}"))?;
        let output = f(hook, &input)?;
        serde_json::to_string(&output).map_err(|e| format!("the output is not JSON: {e}"))
    }

    /// The return area of `evaluate`: `result` discriminant, string pointer,
    /// string length.
    #[repr(C, align(4))]
    struct RetArea([u8; 12]);
    static mut RET_AREA: RetArea = RetArea([0; 12]);

    /// Takes ownership of a string the host allocated with `cabi_realloc`
    /// (alignment 1).
    unsafe fn take(ptr: *mut u8, len: usize) -> Result<String, String> {
        let bytes = if len == 0 {
            Vec::new()
        } else {
            unsafe { Vec::from_raw_parts(ptr, len, len) }
        };
        String::from_utf8(bytes).map_err(|_| "an argument is not UTF-8".to_string())
    }

    /// # Safety
    /// Called by the canonical ABI only, with strings from `realloc`.
    pub unsafe fn evaluate(
        hook_ptr: *mut u8,
        hook_len: usize,
        input_ptr: *mut u8,
        input_len: usize,
        f: impl FnOnce(&str, &str) -> Result<String, String>,
    ) -> *mut u8 {
        let hook = unsafe { take(hook_ptr, hook_len) };
        let input = unsafe { take(input_ptr, input_len) };
        let result = match (hook, input) {
            (Ok(hook), Ok(input)) => f(&hook, &input),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        let (tag, text) = match result {
            Ok(text) => (0u8, text),
            Err(text) => (1u8, text),
        };
        let text = text.into_boxed_str();
        let len = text.len();
        let ptr = Box::into_raw(text) as *mut u8;
        let area = (&raw mut RET_AREA) as *mut u8;
        unsafe {
            area.write(tag);
            area.add(4).cast::<u32>().write(ptr as usize as u32);
            area.add(8).cast::<u32>().write(len as u32);
        }
        area
    }

    /// # Safety
    /// Called by the canonical ABI only, with the pointer `evaluate` returned.
    pub unsafe fn post_return(area: *mut u8) {
        unsafe {
            let ptr = area.add(4).cast::<u32>().read() as usize as *mut u8;
            let len = area.add(8).cast::<u32>().read() as usize;
            drop(Box::from_raw(
                core::ptr::slice_from_raw_parts_mut(ptr, len) as *mut str
            ));
        }
    }

    /// `cabi_realloc`.
    ///
    /// # Safety
    /// Called by the canonical ABI only.
    pub unsafe fn realloc(
        old_ptr: *mut u8,
        old_len: usize,
        align: usize,
        new_len: usize,
    ) -> *mut u8 {
        unsafe {
            if new_len == 0 {
                if old_len != 0 {
                    dealloc(old_ptr, Layout::from_size_align_unchecked(old_len, align));
                }
                return align as *mut u8;
            }
            let layout = Layout::from_size_align_unchecked(new_len, align);
            let ptr = if old_len == 0 {
                alloc(layout)
            } else {
                grow(
                    old_ptr,
                    Layout::from_size_align_unchecked(old_len, align),
                    new_len,
                )
            };
            if ptr.is_null() {
                handle_alloc_error(layout);
            }
            ptr
        }
    }
}
