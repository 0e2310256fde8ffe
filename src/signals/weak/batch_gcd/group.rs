//! From the per-modulus shared parts to groups of moduli that share one factor.

use std::collections::HashMap;

use super::nat::Nat;

/// The shared factors among `moduli` (distinct, each > 1) and which moduli each divides.
///
/// `parts[i]` is `gcd(n_i, product of the others)`. A part equal to `n_i` (both primes of `n_i`
/// are shared, with one or several others) is split by pairwise gcds with the other affected
/// moduli. The parts are then refined into a coprime base, so that two moduli sharing different
/// primes with a third end up in different groups. Returns `(factor, member positions)` pairs,
/// members ascending; every factor divides at least two of `moduli`.
pub(crate) fn shared_factors<N: Nat>(moduli: &[N], parts: &[N]) -> Vec<(N, Vec<usize>)> {
    let affected: Vec<usize> = (0..moduli.len()).filter(|&i| !parts[i].is_one()).collect();
    if affected.is_empty() {
        return Vec::new();
    }

    // What each affected modulus shares, as one or more candidate factors.
    let candidates: Vec<(usize, Vec<N>)> = affected
        .iter()
        .map(|&i| {
            if parts[i] != moduli[i] {
                return (i, vec![parts[i].clone()]);
            }
            let mut found: Vec<N> = Vec::new();
            for &j in &affected {
                if j == i {
                    continue;
                }
                let g = moduli[i].gcd(&moduli[j]);
                if !g.is_one() && !found.contains(&g) {
                    found.push(g);
                }
            }
            (i, found)
        })
        .collect();

    let mut distinct: Vec<N> = Vec::new();
    for (_, found) in &candidates {
        for c in found {
            if !distinct.contains(c) {
                distinct.push(c.clone());
            }
        }
    }
    let base = coprime_base(distinct.clone());

    // Which base factors divide each distinct candidate. A candidate that is itself in the
    // base is divided by no other base factor (the base is pairwise coprime).
    let position: HashMap<Vec<u8>, usize> = base
        .iter()
        .enumerate()
        .map(|(k, f)| (f.to_be_bytes(), k))
        .collect();
    let divisors: HashMap<Vec<u8>, Vec<usize>> = distinct
        .iter()
        .map(|c| {
            let key = c.to_be_bytes();
            let ks = match position.get(&key) {
                Some(&k) => vec![k],
                None => (0..base.len())
                    .filter(|&k| c.rem(&base[k]).is_zero())
                    .collect(),
            };
            (key, ks)
        })
        .collect();

    let mut members: Vec<Vec<usize>> = vec![Vec::new(); base.len()];
    for (i, found) in &candidates {
        for c in found {
            for &k in divisors
                .get(&c.to_be_bytes())
                .map_or(&[][..], Vec::as_slice)
            {
                if members[k].last() != Some(i) {
                    members[k].push(*i);
                }
            }
        }
    }
    base.into_iter()
        .zip(members)
        .filter(|(_, m)| m.len() >= 2)
        .collect()
}

/// A pairwise coprime set whose products generate the same factors as `items` (each > 1):
/// repeatedly replaces two elements `a`, `b` with `g = gcd(a, b) > 1` by `g`, `a/g`, `b/g`.
/// The product of everything held falls with every split, so this ends.
fn coprime_base<N: Nat>(mut work: Vec<N>) -> Vec<N> {
    let mut base: Vec<N> = Vec::new();
    while let Some(x) = work.pop() {
        if x.is_one() || base.contains(&x) {
            continue;
        }
        let hit = base.iter().enumerate().find_map(|(k, b)| {
            let g = x.gcd(b);
            (!g.is_one()).then_some((k, g))
        });
        match hit {
            None => base.push(x),
            Some((k, g)) => {
                let b = base.swap_remove(k);
                for part in [x.div_exact(&g), b.div_exact(&g), g] {
                    if !part.is_one() {
                        work.push(part);
                    }
                }
            }
        }
    }
    base
}

#[cfg(test)]
mod tests {
    use super::super::nat::Backend;
    use super::*;

    fn n(v: u64) -> Backend {
        Backend::from_be_bytes(&v.to_be_bytes())
    }

    fn values(v: &[Backend]) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = v.iter().map(Nat::to_be_bytes).collect();
        out.sort();
        out
    }

    #[test]
    fn coprime_base_splits_overlapping_factors() {
        // 6 = 2·3, 15 = 3·5, 35 = 5·7, 4 = 2²  ->  {2, 3, 5, 7}
        let base = coprime_base(vec![n(6), n(15), n(35), n(4)]);
        assert_eq!(values(&base), values(&[n(2), n(3), n(5), n(7)]));
    }

    #[test]
    fn both_factors_shared_are_split_into_two_groups() {
        // 77 = 7·11 shares 7 with 21 and 11 with 33; 10 shares nothing.
        let moduli = [n(21), n(77), n(33), n(10)];
        let parts = [n(7), n(77), n(11), n(1)];
        let mut groups: Vec<(u64, Vec<usize>)> = shared_factors(&moduli, &parts)
            .into_iter()
            .map(|(f, m)| {
                (
                    f.to_be_bytes()
                        .iter()
                        .fold(0, |a, &b| a << 8 | u64::from(b)),
                    m,
                )
            })
            .collect();
        groups.sort();
        assert_eq!(groups, vec![(7, vec![0, 1]), (11, vec![1, 2])]);
    }
}
