//! Op families that live in one folder each: the builder methods with their shape and
//! dtype rules, the op value implementing [`KernelOp`](crate::kernel::KernelOp) (its
//! gradient, CPU reference, WGSL lowering and loop bound), and the family's shaders under
//! `shaders/<family>/`. Adding a family is its folders plus its name in the list below;
//! no backend and no central `match` learns about it.

use crate::kernel::Family;

// Numeric helpers of the CPU references: first, for their macros.
#[macro_use]
#[doc(hidden)]
pub mod num;
#[doc(hidden)]
pub mod strided;

// Families whose ops are still variants of `Op`, reached by the backends' matches; each
// moves to `families!` below as its ops become `KernelOp` values.

/// Declares each family's module and lists it in [`FAMILIES`].
macro_rules! families {
    ($($family:ident),* $(,)?) => {
        $(pub mod $family;)*

        /// Every registered family.
        pub const FAMILIES: &[Family] = &[$(Family {
            name: stringify!($family),
            shaders: $family::SHADERS,
        }),*];
    };
}

families![
    elementwise,
    index,
    layout,
    matmul,
    moe,
    ot,
    physics,
    reduce,
    scan,
    select
];
