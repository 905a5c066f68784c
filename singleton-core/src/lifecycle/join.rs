//! Waiting for several futures at once with no runtime to spawn them on, and catching a
//! future's panic.

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::Poll;

/// Polls every future until all are ready, and returns their outputs in order: independent
/// futures overlap, with no runtime to spawn them on.
pub(crate) async fn join_all<O>(futures: Vec<Pin<Box<dyn Future<Output = O> + Send + '_>>>) -> Vec<O> {
    let mut pending: Vec<Option<Pin<Box<dyn Future<Output = O> + Send + '_>>>> =
        futures.into_iter().map(Some).collect();
    let mut outputs: Vec<Option<O>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(move |cx| {
        let mut all = true;
        for (slot, out) in pending.iter_mut().zip(outputs.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => {
                        *out = Some(value);
                        *slot = None;
                    }
                    Poll::Pending => all = false,
                }
            }
        }
        if all {
            Poll::Ready(outputs.iter_mut().map(|o| o.take().expect("every future is ready")).collect())
        } else {
            Poll::Pending
        }
    })
    .await
}

/// A future whose polls are run under `catch_unwind`: a panic becomes its output.
pub(crate) struct CatchUnwind<F>(pub(crate) F);

impl<F: std::future::Future + Unpin> std::future::Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = &mut self.0;
        match panic::catch_unwind(AssertUnwindSafe(|| std::pin::Pin::new(inner).poll(cx))) {
            Ok(std::task::Poll::Ready(out)) => std::task::Poll::Ready(Ok(out)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(payload) => std::task::Poll::Ready(Err(payload)),
        }
    }
}
