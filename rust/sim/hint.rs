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
