//! A lookup hint kept beside model state: the last answer of a search (the VMA of the last
//! lookup, the page table of the last walk), which its owner validates or invalidates before
//! trusting it. It is a memo, not state: a clone copies it, but equality and the state hash
//! ignore it, so two kernels in the same state compare equal whatever they looked up last.

use std::cell::Cell;
use std::hash::{Hash, Hasher};

#[derive(Clone, Debug, Default)]
pub struct Hint<T: Copy>(Cell<T>);

impl<T: Copy> Hint<T> {
    #[inline]
    pub fn get(&self) -> T {
        self.0.get()
    }

    #[inline]
    pub fn set(&self, v: T) {
        self.0.set(v)
    }
}

impl<T: Copy> PartialEq for Hint<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<T: Copy> Eq for Hint<T> {}

impl<T: Copy> Hash for Hint<T> {
    fn hash<H: Hasher>(&self, _: &mut H) {}
}

/// A value computed from model state and kept beside it until its owner clears it (at every
/// write to what it was computed from), shared by the clones made meanwhile. Like [`Hint`] it
/// is a memo, not state: equality and the state hash ignore it.
pub struct Memo<T: ?Sized>(Cell<Option<std::sync::Arc<T>>>);

impl<T: ?Sized> Memo<T> {
    #[inline]
    pub fn get(&self) -> Option<std::sync::Arc<T>> {
        let v = self.0.take();
        self.0.set(v.clone());
        v
    }

    #[inline]
    pub fn set(&self, v: Option<std::sync::Arc<T>>) {
        self.0.set(v);
    }
}

impl<T: ?Sized> Default for Memo<T> {
    fn default() -> Self {
        Memo(Cell::new(None))
    }
}

impl<T: ?Sized> Clone for Memo<T> {
    fn clone(&self) -> Self {
        Memo(Cell::new(self.get()))
    }
}

impl<T: ?Sized> std::fmt::Debug for Memo<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Memo")
    }
}

impl<T: ?Sized> PartialEq for Memo<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<T: ?Sized> Eq for Memo<T> {}

impl<T: ?Sized> Hash for Memo<T> {
    fn hash<H: Hasher>(&self, _: &mut H) {}
}
