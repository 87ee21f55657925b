//! Races that can prove they happened: calls released together, each timed, so a test of a
//! guard against concurrent calls can fail when its calls never overlapped (and so proved
//! nothing about the guard).

use std::{future::Future, pin::Pin, sync::Arc, time::Instant};

use tokio::sync::Barrier;

/// What [`race`] gives back: each call's result, in the order of the calls, and the most calls
/// that were in flight at one time.
#[derive(Debug)]
pub struct Raced<T> {
    pub results: Vec<T>,
    pub most_at_once: usize,
}

impl<T> Raced<T> {
    /// Whether at least two calls were in flight at one time.
    pub fn overlapped(&self) -> bool {
        self.most_at_once >= 2
    }
}

/// Runs `calls` at once: each a task of its own, all released together by a barrier once every
/// one is spawned. (Give each call a connection of its own, or they queue on one.)
pub async fn race<T, Call>(calls: Vec<Call>) -> Raced<T>
where
    Call: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let start = Arc::new(Barrier::new(calls.len()));
    let tasks: Vec<_> = calls
        .into_iter()
        .map(|call| {
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                let began = Instant::now();
                let result = call.await;
                (began, Instant::now(), result)
            })
        })
        .collect();
    let mut timed = Vec::with_capacity(tasks.len());
    for task in tasks {
        timed.push(task.await.expect("a racing call ran to its end"));
    }
    let spans: Vec<_> = timed
        .iter()
        .map(|(began, ended, _)| (*began, *ended))
        .collect();
    Raced {
        most_at_once: most_at_once(&spans),
        results: timed.into_iter().map(|(_, _, result)| result).collect(),
    }
}

/// Runs two different calls at once, as [`race`] does: their results, and whether they were
/// in flight at one time.
pub async fn race_pair<A, B>(
    first: impl Future<Output = A> + Send + 'static,
    second: impl Future<Output = B> + Send + 'static,
) -> (A, B, bool)
where
    A: Send + 'static,
    B: Send + 'static,
{
    enum One<A, B> {
        First(A),
        Second(B),
    }
    type Call<A, B> = Pin<Box<dyn Future<Output = One<A, B>> + Send>>;
    let calls: Vec<Call<A, B>> = vec![
        Box::pin(async move { One::First(first.await) }),
        Box::pin(async move { One::Second(second.await) }),
    ];
    let raced = race(calls).await;
    let overlapped = raced.overlapped();
    match <[_; 2]>::try_from(raced.results) {
        Ok([One::First(a), One::Second(b)]) => (a, b, overlapped),
        _ => unreachable!("the results come in the order of the calls"),
    }
}

/// The most of `spans` (start, end) that include one instant: some span's start.
fn most_at_once(spans: &[(Instant, Instant)]) -> usize {
    spans
        .iter()
        .map(|(at, _)| {
            spans
                .iter()
                .filter(|(began, ended)| began <= at && at < ended)
                .count()
        })
        .max()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn counts_the_spans_open_at_once() {
        let t = Instant::now();
        let at = |ms| t + Duration::from_millis(ms);
        assert_eq!(most_at_once(&[(at(0), at(10)), (at(10), at(20))]), 1);
        assert_eq!(most_at_once(&[(at(0), at(10)), (at(5), at(20))]), 2);
        assert_eq!(
            most_at_once(&[(at(0), at(30)), (at(5), at(20)), (at(10), at(40))]),
            3
        );
        assert_eq!(most_at_once(&[]), 0);
    }

    #[tokio::test]
    async fn calls_released_together_overlap() {
        let calls = (0..4)
            .map(|i| async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                i
            })
            .collect();
        let raced = race(calls).await;
        assert_eq!(raced.results, vec![0, 1, 2, 3]);
        assert!(raced.overlapped(), "{raced:?}");
    }
}
