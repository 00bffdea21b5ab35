//! A future run in place that is finished in the background if whoever awaits it goes
//! away: the create's call to IVPAY and the write of its answer must not die with the
//! request, yet spawning a task for every create costs a hand-off between threads.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TrackedFuture;

/// Polls the inner future in place. Dropped before it finished (the request was dropped:
/// client gone, time limit), it hands the rest of the work to a task of its own; its
/// output is then dropped (the work stores its result itself). Counted by `tracker` until
/// it finishes either way, so graceful shutdown waits for it.
pub(crate) struct FinishOnDrop<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    work: Option<Pin<Box<TrackedFuture<F>>>>,
}

impl<F> FinishOnDrop<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    pub(crate) fn new(tracker: &TaskTracker, work: F) -> Self {
        Self {
            work: Some(Box::pin(tracker.track_future(work))),
        }
    }
}

impl<F> Future for FinishOnDrop<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let Some(work) = self.work.as_mut() else {
            panic!("FinishOnDrop polled after it finished");
        };
        let done = work.as_mut().poll(cx);
        if done.is_ready() {
            self.work = None;
        }
        done
    }
}

impl<F> Drop for FinishOnDrop<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn drop(&mut self) {
        if let Some(rest) = self.work.take() {
            // Outside a runtime (a test dropping it at the end) there is nowhere to finish.
            // The future is still tracked (it was wrapped when made), so a plain spawn
            // keeps graceful shutdown waiting for it.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = rest.await;
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn finishes_in_place_when_awaited() {
        let tracker = TaskTracker::new();
        let answer = FinishOnDrop::new(&tracker, async { 7 }).await;
        assert_eq!(answer, 7);
        assert!(tracker.is_empty(), "nothing left behind");
    }

    #[tokio::test]
    async fn finishes_in_the_background_when_dropped_midway() {
        let tracker = TaskTracker::new();
        let finished = Arc::new(AtomicBool::new(false));
        let flag = finished.clone();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let work = async move {
            let _ = started_tx.send(());
            tokio::time::sleep(Duration::from_millis(50)).await;
            flag.store(true, Ordering::SeqCst);
        };
        let waiting = tokio::spawn(FinishOnDrop::new(&tracker, work));
        started_rx.await.expect("started in place");
        waiting.abort();
        let _ = waiting.await;
        assert_eq!(tracker.len(), 1, "the rest is a tracked task now");
        tracker.close();
        tokio::time::timeout(Duration::from_secs(2), tracker.wait())
            .await
            .expect("the tracker waits for it");
        assert!(finished.load(Ordering::SeqCst), "the work was finished");
    }
}
