//! Running network-bound work on several threads at once. Fetches wait on the server, not
//! the CPU, so this uses its own threads rather than the CPU-sized rayon pool.

use crate::Result;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Maps `f` over `items` on `workers` threads, keeping the order of results; stops at the
/// first error and returns it.
pub fn map<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let error = Mutex::new(None);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    match f(item) {
                        Ok(r) => results.lock()[i] = Some(r),
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            error.lock().get_or_insert(e);
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = error.into_inner() {
        return Err(e);
    }
    Ok(results.into_inner().into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_reports_an_error() {
        let items: Vec<u32> = (0..100).collect();
        assert_eq!(map(&items, 7, |i| Ok(i * 2)).unwrap()[99], 198);
        let err = map(&items, 3, |&i| {
            if i == 42 {
                Err(crate::Error::NoSuchPath(format!("{i}")))
            } else {
                Ok(i)
            }
        });
        assert!(matches!(err, Err(crate::Error::NoSuchPath(p)) if p == "42"));
    }
}
