//! Product tree and remainder tree (Bernstein; Heninger et al., USENIX Security 2012, §3.6 of
//! the compromise-signals research), spread over the available cores level by level.

use std::panic;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use super::nat::Nat;

/// `f(0), f(1), ..., f(len - 1)` on up to `threads` scoped threads. Workers take the next
/// index from a shared counter, so a level with a few large nodes still keeps every core busy
/// until it runs out of nodes.
pub(crate) fn par_map<U, F>(len: usize, threads: usize, f: F) -> Vec<U>
where
    U: Send,
    F: Fn(usize) -> U + Sync,
{
    let workers = threads.min(len);
    if workers <= 1 {
        return (0..len).map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let done = Mutex::new(Vec::with_capacity(len));
    thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= len {
                            break;
                        }
                        mine.push((i, f(i)));
                    }
                    // A poisoned lock means another worker panicked; that panic is re-raised
                    // below, so the partial results here no longer matter.
                    if let Ok(mut all) = done.lock() {
                        all.extend(mine);
                    }
                })
            })
            .collect();
        for handle in handles {
            if let Err(payload) = handle.join() {
                panic::resume_unwind(payload);
            }
        }
    });
    let mut all = done
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    all.sort_unstable_by_key(|&(i, _)| i);
    all.into_iter().map(|(_, u)| u).collect()
}

/// The levels of the product tree: `levels[0]` is `leaves`, each next level multiplies
/// adjacent pairs (an odd last node moves up unchanged), up to the first level with at most
/// `top` nodes (1 for the root; the scaled remainder tree needs only the root's two children,
/// and the root is the single largest multiplication). Empty input gives no levels.
pub(crate) fn product_tree<N: Nat>(leaves: Vec<N>, top: usize, threads: usize) -> Vec<Vec<N>> {
    let mut levels = Vec::new();
    if leaves.is_empty() {
        return levels;
    }
    let mut current = leaves;
    while current.len() > top.max(1) {
        let next = next_level(&current, threads);
        levels.push(current);
        current = next;
    }
    levels.push(current);
    levels
}

/// The product of `leaves` (one for none), keeping only one level in memory at a time.
pub(crate) fn product<N: Nat>(leaves: Vec<N>, threads: usize) -> N {
    let mut current = leaves;
    while current.len() > 1 {
        current = next_level(&current, threads);
    }
    current.pop().unwrap_or_else(N::one)
}

fn next_level<N: Nat>(level: &[N], threads: usize) -> Vec<N> {
    par_map(level.len().div_ceil(2), threads, |j| {
        match level.get(2 * j + 1) {
            Some(right) => level[2 * j].mul(right),
            None => level[2 * j].clone(),
        }
    })
}

/// Extra bits of precision carried by the scaled remainder tree, beyond what the sizes need;
/// they absorb the truncation error of every level (one bit per level would do).
const GUARD_BITS: u64 = 64;

/// For each leaf `n_i` of the product tree, `gcd(n_i, P / n_i)`, where `P` is the root: the
/// part of `n_i` it shares with the product of all the other leaves.
///
/// This is Bernstein's *scaled* remainder tree ("Scaled remainder trees", 2004) over the
/// squares of the nodes. Instead of `R = R_parent mod v²` at every node, which costs a long
/// division, each node `v` carries the fraction `y_v = frac(P / v²)` in fixed point, and a
/// child gets it with one multiplication and a truncation: `P / v_l² = (P / v²) · v_r²` for a
/// node `v = v_l · v_r`, so `y_l = frac(y_v · v_r²)`. At a leaf, `y_n · n = (P / n) mod n`,
/// recovered by rounding. Only the root's two children need a division, to start the walk.
///
/// Precision: a node `v` keeps `2·bits(v) - min_leaf_bits + GUARD_BITS` fraction bits, enough
/// that its error, multiplied by at most `(v / n)²` on the way down, stays far below `1/(2n)`
/// at every leaf `n` under it. Every truncation rounds down, and the values are only ever
/// used modulo 1, so an error never compounds through a wrap-around. Levels are dropped as
/// the walk passes them, so memory falls as it goes.
pub(crate) fn shared_parts<N: Nat>(mut levels: Vec<Vec<N>>, threads: usize) -> Vec<N> {
    let Some(leaves) = levels.first() else {
        return Vec::new();
    };
    if leaves.len() < 2 {
        // Nothing to share with: gcd(n, 1) = 1.
        return vec![N::one(); leaves.len()];
    }
    let min_bits = leaves.iter().map(N::bits).min().unwrap_or(0);
    let precision = |v: &N| (2 * v.bits() + GUARD_BITS).saturating_sub(min_bits).max(1);

    // With two or more leaves the root has exactly two children; start there (dropping the
    // root if it was built), with y_v = frac(P / v²) = frac(sibling / v).
    if levels.last().is_some_and(|top| top.len() == 1) {
        levels.pop();
    }
    let Some(mut current) = levels.pop() else {
        return Vec::new();
    };
    let mut ys: Vec<N> = par_map(current.len(), threads, |j| {
        let v = &current[j];
        let sibling = current.get(j ^ 1).map_or_else(N::one, |s| s.rem(v));
        sibling.shl(precision(v)).div_floor(v)
    });
    while let Some(level) = levels.pop() {
        let parents = ys;
        let parent_level = current;
        ys = par_map(level.len(), threads, |j| match level.get(j ^ 1) {
            // The odd last node moved up alone: its parent is itself.
            None => parents[j / 2].clone(),
            Some(sibling) => {
                let keep = precision(&parent_level[j / 2]);
                let drop = keep - precision(&level[j]);
                parents[j / 2]
                    .mul(&sibling.square())
                    .low_bits(keep)
                    .shr(drop)
            }
        });
        current = level;
    }
    par_map(current.len(), threads, |i| {
        let n = &current[i];
        let bits = precision(n);
        // z = round(y · n), which is (P / n) mod n, or n itself when it is really 0.
        let mut z = ys[i].mul(n).add(&N::one().shl(bits - 1)).shr(bits);
        if z >= *n {
            z = z.sub(n);
        }
        z.gcd(n)
    })
}

/// The textbook remainder tree, `R = R_parent mod node²` at every node: slower, kept as the
/// reference the scaled tree is tested against.
#[cfg(test)]
pub(crate) fn shared_parts_classic<N: Nat>(mut levels: Vec<Vec<N>>, threads: usize) -> Vec<N> {
    if levels.first().is_none_or(|leaves| leaves.len() < 2) {
        return levels
            .first()
            .map_or_else(Vec::new, |leaves| vec![N::one(); leaves.len()]);
    }
    // The root: P mod P² = P.
    let mut rems = levels.pop().unwrap_or_default();
    while let Some(level) = levels.pop() {
        let at_leaves = levels.is_empty();
        let parents = rems;
        rems = par_map(level.len(), threads, |j| {
            let node = &level[j];
            let r = parents[j / 2].rem(&node.square());
            if at_leaves {
                r.div_exact(node).gcd(node)
            } else {
                r
            }
        });
    }
    rems
}
