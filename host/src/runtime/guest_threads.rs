//! Where guest code runs: threads of their own, at a lower priority than
//! the host's.
//!
//! A call executes WebAssembly on whatever thread polls its future, and a
//! guest that computes never gives that thread back before its deadline
//! (up to `MAX_TIMEOUT_MS`). On the host's runtime a few such calls would
//! hold every worker: `/healthz`, the inbox, database connections and other
//! chats would wait for them. So a call that computes is polled here:
//!
//! - a call starts on the caller's thread (most answer in microseconds, and
//!   a hop to another thread and back would cost them more than the call);
//!   once it has computed for an epoch tick it hands its thread back
//!   (`plugin.rs`), and from then on it runs here;
//! - a runtime of its own, one worker per core, each thread `nice`d below
//!   the host's, so the kernel runs the host's threads first whenever both
//!   want a core (the host mostly waits on I/O; guests may compute);
//! - guests yield to this runtime at every epoch tick (`plugin.rs`), so
//!   other chats' calls keep moving while some compute;
//! - while a call is polled, the *host's* runtime is the current one: what
//!   its host functions open (a database connection, an HTTP connection, a
//!   timer) and spawn belongs to the host's I/O driver and workers, which
//!   stay responsive, not to these busy threads.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tokio::runtime::{Handle, Runtime};
use tracing::Instrument as _;

/// How much lower guest threads run (`nice` +10: the kernel gives a host
/// thread about nine times a guest thread's share of a contended core).
const GUEST_NICENESS: i32 = 10;

/// Why a call's task did not finish on the guest threads.
#[derive(Debug, thiserror::Error)]
#[error("the plugin call's task {0}")]
pub struct GuestTaskError(&'static str);

/// Set by a call's epoch callback when its guest hands its thread back
/// after computing for a whole tick (not when it waits on the host).
#[derive(Clone, Default)]
pub struct Computing(Arc<AtomicBool>);

impl Computing {
    pub fn note(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn take(&self) -> bool {
        self.0.swap(false, Ordering::AcqRel)
    }
}

/// Runs `call` here until its guest has computed for a tick (`computing`
/// noted), then on the guest threads.
pub async fn run_guest<F>(call: F, computing: Computing) -> Result<F::Output, GuestTaskError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut call = Box::pin(call);
    let finished_here = std::future::poll_fn(|cx| match call.as_mut().poll(cx) {
        Poll::Ready(output) => Poll::Ready(Some(output)),
        // It yielded because it computes: hand it over (the wake it asked
        // for reaches this task, which is done with it by then).
        Poll::Pending if computing.take() => Poll::Ready(None),
        Poll::Pending => Poll::Pending,
    })
    .await;
    match finished_here {
        Some(output) => Ok(output),
        None => run_on_guest_threads(call).await,
    }
}

/// Runs `call` on the guest threads and waits for it. Everything the call
/// opens or spawns while polled belongs to the caller's runtime.
pub async fn run_on_guest_threads<F>(call: F) -> Result<F::Output, GuestTaskError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let Ok(host) = Handle::try_current() else {
        // Not on a runtime at all (never the case for the host's calls):
        // there is no host to protect, run it here.
        return Ok(call.await);
    };
    let Some(guests) = guest_runtime() else {
        return Ok(call.await);
    };
    // The message's span (its correlation id) goes with it.
    let span = tracing::Span::current();
    guests
        .spawn(InHostContext { host, call }.instrument(span))
        .await
        .map_err(|error| {
            if error.is_panic() {
                GuestTaskError("panicked")
            } else {
                GuestTaskError("was cancelled (the host is shutting down)")
            }
        })
}

/// The process's guest runtime, started on first use; none if the OS
/// refused its threads (calls then run on the caller's runtime, as before).
fn guest_runtime() -> Option<&'static Runtime> {
    static GUESTS: OnceLock<Option<Runtime>> = OnceLock::new();
    GUESTS
        .get_or_init(|| {
            let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .thread_name("wasm-guest")
                .on_thread_start(lower_priority)
                // Guest polls are long (an epoch tick while computing):
                // look at newly spawned calls after every other poll.
                .global_queue_interval(2)
                .enable_all()
                .build()
                .inspect_err(|error| {
                    tracing::error!(%error, "cannot start the guest threads: plugin calls run on the host's runtime");
                })
                .ok()
        })
        .as_ref()
}

fn lower_priority() {
    // Linux: the nice value is per thread; `who = 0` is the calling thread.
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority only reads its integer arguments.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, GUEST_NICENESS);
    }
}

pin_project_lite::pin_project! {
    /// Polls `call` with the host's runtime entered.
    struct InHostContext<F> {
        host: Handle,
        #[pin]
        call: F,
    }
}

impl<F: Future> Future for InHostContext<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _host = this.host.enter();
        this.call.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_call_runs_on_a_guest_thread_and_spawns_on_the_host() {
        let (thread, spawned_on) = run_on_guest_threads(async {
            let here = std::thread::current().name().map(str::to_string);
            let spawned = tokio::spawn(async { std::thread::current().name().map(str::to_string) });
            (here, spawned.await.unwrap())
        })
        .await
        .unwrap();
        assert_eq!(thread.as_deref(), Some("wasm-guest"));
        assert_ne!(
            spawned_on.as_deref(),
            Some("wasm-guest"),
            "what a call spawns runs on the host's runtime"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_call_moves_to_the_guest_threads_only_once_it_computes() {
        let thread = || std::thread::current().name().map(str::to_string);
        let computing = Computing::default();
        let quick = run_guest(async move { thread() }, computing.clone())
            .await
            .unwrap();
        assert_ne!(
            quick.as_deref(),
            Some("wasm-guest"),
            "answered where it was called"
        );

        let noted = computing.clone();
        let long = run_guest(
            async move {
                let before = thread();
                // What the epoch callback does when a tick passes mid-guest.
                noted.note();
                tokio::task::yield_now().await;
                (before, thread())
            },
            computing,
        )
        .await
        .unwrap();
        assert_ne!(long.0.as_deref(), Some("wasm-guest"));
        assert_eq!(
            long.1.as_deref(),
            Some("wasm-guest"),
            "then on the guest threads"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_panicking_call_is_an_error_not_a_panic_of_the_host() {
        let outcome = run_on_guest_threads(async { panic!("guest side") }).await;
        assert!(outcome.unwrap_err().to_string().contains("panicked"));
    }
}
