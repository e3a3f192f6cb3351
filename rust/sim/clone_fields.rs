//! `Clone` for a struct field by field, with a `clone_from` that reuses the storage of every
//! field (`#[derive(Clone)]` leaves `clone_from` as `*self = source.clone()`: every vector of
//! the destination freed, every vector of the source allocated again). The explorer clones a
//! whole kernel per step into a state it keeps per depth of its search ([`crate::explore`]),
//! so the vectors' capacity is allocated once per depth instead of once per step.

/// Implement `Clone` for struct `$t` with fields `$f`: `clone` clones each field (a struct
/// literal, so a field missing from the list is a compile error), `clone_from` calls each
/// field's `clone_from` (a `Vec` of `Copy` items copies into its capacity; a `Vec` of structs
/// calls their `clone_from` item by item).
macro_rules! clone_fields {
    ($t:ident { $($f:ident),* $(,)? }) => {
        impl Clone for $t {
            fn clone(&self) -> Self {
                $t { $($f: Clone::clone(&self.$f)),* }
            }

            fn clone_from(&mut self, source: &Self) {
                $(Clone::clone_from(&mut self.$f, &source.$f);)*
            }
        }
    };
}

pub(crate) use clone_fields;
