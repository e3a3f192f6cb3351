//! A fixed-length array stored in chunks that are shared copy-on-write and allocated on first
//! write: the container of the page frames ([`crate::mm::page::Memory`]).
//!
//! Two users pull it two ways. The explorer clones a kernel per step and writes a frame or two
//! in it: after [`Chunks::share`] a clone copies one pointer per chunk, the first write to a
//! shared chunk copies that chunk only, and the state hash reads a fingerprint cached per
//! shared chunk ([`Chunks::fingerprint`]). A 512 GiB guest's hosts have frames that are never
//! used (the source's headroom, the destination's free memory): every chunk starts as the one
//! shared chunk of the fill value, so a never-written chunk costs a pointer, not its memory.
//!
//! Reads are two loads (the chunk, then the element) with no atomic operation; a write to a
//! chunk this array owns is a match and a store. Only a write to a shared chunk, and `share`,
//! allocate. A clone copies the chunks it owns (as a `Vec` clone would) and shares the shared
//! ones.

use crate::sim::fingerprint;
use std::cell::Cell;
use std::hash::Hash;
use std::ops::{Index, IndexMut};
use std::sync::Arc;

/// One chunk: owned (written in place), or shared with other arrays and with the fill chunk
/// (copied by the first write), with its fingerprint once known (0 = not computed).
#[derive(Clone, Debug)]
enum Chunk<T> {
    Owned(Box<[T]>),
    Shared(Arc<[T]>, Cell<u64>),
}

impl<T> Chunk<T> {
    #[inline(always)]
    fn items(&self) -> &[T] {
        match self {
            Chunk::Owned(b) => b,
            Chunk::Shared(a, _) => a,
        }
    }
}

/// `len` elements in chunks of `1 << shift` (the last one shorter when `len` is not a
/// multiple).
#[derive(Clone, Debug)]
pub struct Chunks<T: Copy> {
    chunks: Vec<Chunk<T>>,
    shift: u32,
    mask: usize,
    len: usize,
    /// The shared chunk of the fill value every full chunk starts as.
    fill: Arc<[T]>,
}

impl<T: Copy + Hash + PartialEq> Chunks<T> {
    /// `len` copies of `fill` in chunks of `1 << shift` elements; nothing but the chunk
    /// pointers and one chunk of `fill` is allocated.
    pub fn new(len: usize, shift: u32, fill: T) -> Chunks<T> {
        let size = 1usize << shift;
        let fill_chunk: Arc<[T]> = vec![fill; size.min(len.max(1))].into();
        let full = len >> shift;
        let mut chunks: Vec<Chunk<T>> = Vec::with_capacity(len.div_ceil(size));
        chunks.extend((0..full).map(|_| Chunk::Shared(fill_chunk.clone(), Cell::new(0))));
        let rest = len & (size - 1);
        if rest > 0 {
            chunks.push(Chunk::Owned(vec![fill; rest].into_boxed_slice()));
        }
        Chunks { chunks, shift, mask: size - 1, len, fill: fill_chunk }
    }

    /// The chunk size (log2) for an array of `len`: chunks of 8 elements for the explorer's
    /// small kernels (a step copies what it writes, not the whole array), growing with the
    /// array to 4096 (a pointer per 4096 elements; a write to a never-written chunk copies one
    /// 4096th of a large array, or less).
    pub fn shift_for(len: usize) -> u32 {
        let bits = usize::BITS - len.max(1).leading_zeros();
        bits.saturating_sub(8).clamp(3, 12)
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i >> self.shift).and_then(|c| c.items().get(i & self.mask))
    }

    #[inline]
    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        if i >= self.len {
            return None;
        }
        Some(&mut self[i])
    }

    /// The elements in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + '_ {
        self.chunks.iter().flat_map(|c| c.items().iter())
    }

    /// Make chunk `c` owned: a copy of it, if it is shared.
    #[cold]
    #[inline(never)]
    fn own(&mut self, c: usize) {
        let chunk = &mut self.chunks[c];
        if let Chunk::Shared(a, _) = chunk {
            *chunk = Chunk::Owned(a.to_vec().into_boxed_slice());
        }
    }

    /// Share every owned chunk (and compute its fingerprint), so that clones of this array
    /// copy pointers only until they write. The explorer calls it on a state before it clones
    /// it once per step.
    pub fn share(&mut self) {
        for c in &mut self.chunks {
            if let Chunk::Owned(b) = c {
                let fp = chunk_fingerprint(b);
                *c = Chunk::Shared(Arc::from(&**b), Cell::new(fp));
            }
        }
    }

    /// A fingerprint of the contents (the same for equal contents, however they are stored):
    /// per chunk, cached while the chunk is shared.
    pub fn fingerprint(&self) -> u64 {
        let mut h = fingerprint::mix(fingerprint::SEED, self.len as u64);
        for c in &self.chunks {
            let fp = match c {
                Chunk::Owned(b) => chunk_fingerprint(b),
                Chunk::Shared(a, cache) => {
                    let mut fp = cache.get();
                    if fp == 0 {
                        fp = chunk_fingerprint(a);
                        cache.set(fp);
                    }
                    fp
                }
            };
            h = fingerprint::mix(h, fp);
        }
        h
    }

    /// Bytes of heap the elements take: the chunks written at least once (the never-written
    /// ones share one chunk, counted once), and the chunk pointers.
    pub fn heap_bytes(&self) -> usize {
        let size = std::mem::size_of::<T>() << self.shift;
        let written = self.chunks.iter().filter(|c| !matches!(c, Chunk::Shared(a, _) if Arc::ptr_eq(a, &self.fill)));
        written.count() * size + size + self.chunks.capacity() * std::mem::size_of::<Chunk<T>>()
    }

    /// Chunks never written (still the fill chunk).
    pub fn untouched_chunks(&self) -> usize {
        self.chunks.iter().filter(|c| matches!(c, Chunk::Shared(a, _) if Arc::ptr_eq(a, &self.fill))).count()
    }
}

/// The fingerprint of one chunk's elements (never 0, the "not computed" mark).
fn chunk_fingerprint<T: Hash>(items: &[T]) -> u64 {
    let mut h = fingerprint::WordHasher::default();
    items.hash(&mut h);
    std::hash::Hasher::finish(&h) | 1
}

impl<T: Copy> Index<usize> for Chunks<T> {
    type Output = T;
    #[inline(always)]
    fn index(&self, i: usize) -> &T {
        &self.chunks[i >> self.shift].items()[i & self.mask]
    }
}

impl<T: Copy + Hash + PartialEq> IndexMut<usize> for Chunks<T> {
    #[inline(always)]
    fn index_mut(&mut self, i: usize) -> &mut T {
        let (c, o) = (i >> self.shift, i & self.mask);
        if let Chunk::Shared(..) = self.chunks[c] {
            self.own(c);
        }
        match &mut self.chunks[c] {
            Chunk::Owned(b) => &mut b[o],
            Chunk::Shared(..) => unreachable!("chunk {c} was made owned"),
        }
    }
}

impl<T: Copy + PartialEq> PartialEq for Chunks<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len
            && self.chunks.len() == other.chunks.len()
            && self.chunks.iter().zip(&other.chunks).all(|(a, b)| match (a, b) {
                (Chunk::Shared(x, _), Chunk::Shared(y, _)) if Arc::ptr_eq(x, y) => true,
                _ => a.items() == b.items(),
            })
    }
}

impl<T: Copy + Eq> Eq for Chunks<T> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes through a clone are invisible to the original whichever of them owns or shares a
    /// chunk; equality and the fingerprint follow the contents, not how they are stored.
    #[test]
    fn clones_share_until_written_and_compare_by_contents() {
        for len in [2usize, 7, 8, 64, 100, 5000] {
            let shift = Chunks::<u32>::shift_for(len);
            let mut a = Chunks::new(len, shift, 9u32);
            let fresh = a.fingerprint();
            assert_eq!(a.iter().count(), len);
            a[len - 1] = 1;
            let mut b = a.clone();
            b.share();
            let c = b.clone();
            b[0] = 2;
            assert_eq!((a[0], b[0], c[0]), (9, 2, 9), "len {len}");
            assert_eq!(c, a);
            assert_eq!(c.fingerprint(), a.fingerprint());
            assert_ne!(b.fingerprint(), a.fingerprint());
            b[0] = 9;
            assert_eq!(b, a, "equal contents compare equal, owned or shared");
            assert_eq!(b.fingerprint(), a.fingerprint());
            a[len - 1] = 9;
            assert_eq!(a.fingerprint(), fresh);
            assert_eq!((a.get(len), c.get(len - 1)), (None, Some(&1)));
            assert!(b.get_mut(len).is_none());
        }
    }

    /// A large array costs what was written: the never-written chunks share one.
    #[test]
    fn never_written_chunks_cost_no_memory() {
        let len = 1 << 24;
        let mut a = Chunks::new(len, Chunks::<u64>::shift_for(len), 0u64);
        assert_eq!(a.untouched_chunks(), len >> 12);
        let before = a.heap_bytes();
        assert!(before < len / 8, "{before} bytes for an untouched array of {len} words");
        a[12345] = 1;
        assert_eq!(a.heap_bytes(), before + (8 << 12));
        assert_eq!(a.iter().filter(|&&x| x == 1).count(), 1);
    }
}
