//! `Clone` for a struct field by field, with a `clone_from` that reuses the storage of every
//! field (`#[derive(Clone)]` leaves `clone_from` as `*self = source.clone()`: every vector of
//! the destination freed, every vector of the source allocated again). The explorer clones a
//! whole kernel per step into a state it keeps per depth of its search ([`crate::explore`]),
//! so the vectors' capacity is allocated once per depth instead of once per step.

/// Implement `Clone` for struct `$t` with fields `$f`: `clone` clones each field (a struct
/// literal, so a field missing from the list is a compile error), `clone_from` calls each
/// field's `clone_from` (a `Vec` of `Copy` items copies into its capacity; a `Vec` of structs
/// calls their `clone_from` item by item), or the function given as `field = function`
/// (such as [`clone_if_changed`] for a map whose `clone_from` would allocate it again).
macro_rules! clone_fields {
    (@from $dst:expr, $src:expr) => {
        Clone::clone_from($dst, $src)
    };
    (@from $dst:expr, $src:expr, $g:path) => {
        $g($dst, $src)
    };
    ($t:ident { $($f:ident $(= $g:path)?),* $(,)? }) => {
        impl Clone for $t {
            fn clone(&self) -> Self {
                $t { $($f: Clone::clone(&self.$f)),* }
            }

            fn clone_from(&mut self, source: &Self) {
                $($crate::sim::clone_fields::clone_fields!(@from &mut self.$f, &source.$f $(, $g)?);)*
            }
        }
    };
}

pub(crate) use clone_fields;

/// `dst.clone_from(src)` unless they are equal already: for the maps and sets of the kernel
/// (`BTreeMap::clone_from` builds the tree again), which a step rarely changes, so the state
/// cloned over holds the same ones.
#[inline]
pub(crate) fn clone_if_changed<T: Clone + PartialEq>(dst: &mut T, src: &T) {
    if dst != src {
        dst.clone_from(src);
    }
}
