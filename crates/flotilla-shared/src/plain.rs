//! [`Plain`]: the types whose bytes can live in shared memory.

/// A type that can live in shared memory: plain bytes, meaningful in every process.
///
/// [`Value`](crate::Value), [`Array`](crate::Array), [`RawValue`](crate::RawValue) and
/// [`RawArray`](crate::RawArray) hold `T: Plain`. It is implemented for the integer and
/// floating-point primitives and for arrays of `Plain` types; for a struct of your own,
/// `#[derive(Plain)]` checks the rules below at compile time and implements it:
///
/// ```
/// use flotilla::shared::{Plain, Value};
///
/// #[repr(C)]
/// #[derive(Clone, Copy, Debug, PartialEq, Plain)]
/// struct Point {
///     x: f64,
///     y: f64,
///     hits: [u32; 2],
/// }
///
/// let p = Value::new(Point { x: 1.0, y: 2.0, hits: [0, 0] })?;
/// p.get_lock().unwrap().hits[1] += 1;
/// assert_eq!(p.load()?, Point { x: 1.0, y: 2.0, hits: [0, 1] });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// The derive refuses a struct that is not `#[repr(C)]` or `#[repr(transparent)]` (Rust may
/// reorder fields differently in another build), that has padding (its bytes would be
/// undefined), that is generic, or that has a field that is not `Plain`, such as a reference or
/// a raw pointer (an address in one process means nothing in another), a `bool` or a `char`
/// (not every bit pattern is one):
///
/// ```compile_fail,E0080
/// #[repr(C)]
/// #[derive(Clone, Copy, flotilla::shared::Plain)]
/// struct Padded {
///     tag: u8, // seven bytes of padding follow
///     value: u64,
/// }
/// ```
///
/// ```compile_fail,E0277
/// #[repr(C)]
/// #[derive(Clone, Copy, flotilla::shared::Plain)]
/// struct Pointer {
///     target: *const u64,
/// }
/// ```
///
/// ```compile_fail
/// #[derive(Clone, Copy, flotilla::shared::Plain)]
/// struct NoRepr {
///     value: u64,
/// }
/// ```
///
/// and neither a `bool` (a byte with 254 invalid values) nor a pointer is `Plain` by itself:
///
/// ```compile_fail,E0277
/// let flag = flotilla::shared::Value::new(true)?;
/// # Ok::<(), flotilla::Error>(())
/// ```
///
/// ```compile_fail,E0277
/// let x = 0u64;
/// let p = flotilla::shared::Value::new(&raw const x)?;
/// # Ok::<(), flotilla::Error>(())
/// ```
///
/// Why flotilla's own trait rather than `bytemuck::Pod`: a bound on another crate's trait
/// would make you depend on that crate in a matching version to use your own types, and
/// `Pod` admits raw pointers, which are meaningless in another process's memory.
///
/// # Safety
///
/// Implement it by hand (`unsafe impl Plain for T {}`) only for a type that, like the derive
/// checks,
///
/// - has no padding and no uninitialised bytes, and any bit pattern of its size is a valid
///   value (all zeros included);
/// - holds no references, pointers or handles (no addresses, file descriptors or anything else
///   that means something in one process only), and no interior mutability;
/// - has a layout fixed by its definition (`#[repr(C)]`, `#[repr(transparent)]` or a
///   primitive), so that every build of the same code agrees on it.
pub unsafe trait Plain: Copy + Send + Sync + 'static {}

/// Implements [`Plain`] for primitives that meet its contract.
macro_rules! plain {
    ($($t:ty),*) => {
        $(
            // SAFETY: integers and floats have no padding, every bit pattern is a value of
            // them, and they hold no addresses.
            unsafe impl Plain for $t {}
        )*
    };
}

plain!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64
);

// SAFETY: an array has no padding between its elements (its size is `N * size_of::<T>()`), so
// it meets the contract when its element does.
unsafe impl<T: Plain, const N: usize> Plain for [T; N] {}

/// The bytes of `value`.
pub(crate) fn bytes_of<T: Plain>(value: &T) -> &[u8] {
    // SAFETY: `value` is a valid reference to `size_of::<T>()` bytes, all initialised since a
    // `Plain` type has no padding; the slice borrows `value`, so it outlives nothing.
    unsafe { std::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()) }
}

/// The bytes of `value`, to write through.
pub(crate) fn bytes_of_mut<T: Plain>(value: &mut T) -> &mut [u8] {
    // SAFETY: as in `bytes_of`, and any bytes written make a valid `T` (`Plain`); the slice
    // borrows `value` mutably, so nothing else sees it meanwhile.
    unsafe { std::slice::from_raw_parts_mut((value as *mut T).cast::<u8>(), size_of::<T>()) }
}

/// A `T` of zero bytes.
pub(crate) fn zeroed<T: Plain>() -> T {
    // SAFETY: every bit pattern, all zeros included, is a valid `T` (`Plain`).
    unsafe { std::mem::zeroed() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip() {
        let mut x = zeroed::<[u32; 2]>();
        assert_eq!(x, [0, 0]);
        bytes_of_mut(&mut x).copy_from_slice(bytes_of(&[7u32, 9]));
        assert_eq!(x, [7, 9]);
        assert_eq!(bytes_of(&1.5f64).len(), 8);
    }
}
