//! Flow control for adapters that receive many chats at once: the messages of
//! one chat are handled in order, different chats concurrently, and no more
//! than a fixed number are queued or running in total. When that many are in
//! flight, `submit` waits: the adapter stops taking updates (backpressure)
//! instead of buffering without bound.
//!
//! Every lane in the map holds at least one permit until it has removed
//! itself: a job's permit travels with it through the queue, the lane worker
//! keeps it while the job runs, and the worker gives up the permit of its last
//! job only after taking the lane out of the map. So when `drain` holds every
//! permit, no job is queued or running and no lane is left.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::infra::sync::lock;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;
/// A job and its share of the in-flight bound, released by the lane worker.
type Queued = (Job, OwnedSemaphorePermit);
type Lanes = Arc<Mutex<HashMap<i64, mpsc::UnboundedSender<Queued>>>>;

pub struct ChatLanes {
    lanes: Lanes,
    in_flight: Arc<Semaphore>,
    capacity: u32,
}

impl ChatLanes {
    pub fn new(max_in_flight: u32) -> Self {
        Self {
            lanes: Arc::default(),
            in_flight: Arc::new(Semaphore::new(max_in_flight as usize)),
            capacity: max_in_flight,
        }
    }

    /// Waits for room, then queues `job` behind the chat's earlier messages.
    pub async fn submit(&self, chat_id: i64, job: impl Future<Output = ()> + Send + 'static) {
        let Ok(permit) = self.in_flight.clone().acquire_owned().await else {
            return; // closed: shutting down
        };
        let queued: Queued = (Box::pin(job), permit);
        let mut lanes = lock(&self.lanes);
        // A lane whose worker is gone (its task was dropped with a runtime)
        // refuses the send: start a new one.
        let queued = match lanes.get(&chat_id) {
            Some(lane) => match lane.send(queued) {
                Ok(()) => return,
                Err(mpsc::error::SendError(queued)) => queued,
            },
            None => queued,
        };
        let (lane, queue) = mpsc::unbounded_channel();
        // Cannot fail: `queue` is alive right here.
        let _ = lane.send(queued);
        lanes.insert(chat_id, lane);
        tokio::spawn(run_lane(chat_id, queue, self.lanes.clone()));
    }

    /// Messages queued or running now (a finished chat's last message counts
    /// until its lane is gone, a moment later).
    pub fn in_flight(&self) -> usize {
        self.capacity as usize - self.in_flight.available_permits()
    }

    /// Waits until every queued and running message is done and every lane
    /// is gone, at most `deadline`. Returns whether all finished.
    pub async fn drain(&self, deadline: Duration) -> bool {
        tokio::time::timeout(deadline, self.in_flight.acquire_many(self.capacity))
            .await
            .is_ok_and(|permits| permits.is_ok())
    }
}

/// One chat's worker: runs its jobs in order and ends when the queue is empty.
async fn run_lane(chat_id: i64, mut queue: mpsc::UnboundedReceiver<Queued>, lanes: Lanes) {
    loop {
        // Only this worker receives, and the lane is in the map until it
        // removes itself, so the first receive always finds the job that
        // started it or that a submitter sent while the lane was listed.
        let Ok((job, permit)) = queue.try_recv() else {
            // Unreachable by the reasoning above; leave the map consistent anyway.
            lock(&lanes).remove(&chat_id);
            return;
        };
        if CatchUnwind(job).await.is_err() {
            // A bug in one handler must not stop the messages queued behind it.
            tracing::error!(chat_id, "a chat job panicked; its chat goes on");
        }
        // Submitters send while holding this lock, so an empty queue seen
        // under it stays empty until the lane is gone.
        let mut map = lock(&lanes);
        if queue.is_empty() {
            map.remove(&chat_id);
            drop(map);
            // Released only now: whoever holds every permit sees no lane.
            drop(permit);
            return;
        }
        drop(map);
        drop(permit);
    }
}

/// Runs a job and turns its panic into `Err`, so the lane worker survives it
/// and still releases the job's permit and its lane.
struct CatchUnwind(Job);

impl Future for CatchUnwind {
    type Output = Result<(), ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // The job is never polled again after a panic (the worker drops it),
        // so no broken state it left behind can be observed.
        let job = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| job.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(())) => Poll::Ready(Ok(())),
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_chat_in_order_many_chats_at_once_and_bounded() {
        let lanes = Arc::new(ChatLanes::new(8));
        let log = Arc::new(Mutex::new(Vec::new()));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        for i in 0..40 {
            let chat = i % 4;
            let (log, running, peak) = (log.clone(), running.clone(), peak.clone());
            lanes
                .submit(chat, async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    lock(&log).push((chat, i));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await;
            assert!(lanes.in_flight() <= 8);
        }
        assert!(lanes.drain(Duration::from_secs(5)).await);
        let log = lock(&log).clone();
        assert_eq!(log.len(), 40);
        for chat in 0..4 {
            let order: Vec<i64> = log
                .iter()
                .filter(|(c, _)| *c == chat)
                .map(|(_, i)| *i)
                .collect();
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(order, sorted, "chat {chat} out of order");
        }
        let peak = peak.load(Ordering::SeqCst);
        assert!(peak > 1, "chats never ran concurrently");
        assert!(peak <= 4, "one chat ran two messages at once: {peak}");
        assert!(lock(&lanes.lanes).is_empty(), "idle lanes are removed");
    }

    /// The guarantee `drain` gives, tried where the race was: jobs that end
    /// at once, so the last permit and the lane's removal are nearly
    /// simultaneous, on a runtime with more threads than the machine may have.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn once_drained_no_lane_is_left() {
        let lanes = ChatLanes::new(4);
        for round in 0..200 {
            for chat in 0..6 {
                lanes
                    .submit(chat, async { tokio::task::yield_now().await })
                    .await;
            }
            assert!(lanes.drain(Duration::from_secs(5)).await, "round {round}");
            assert!(
                lock(&lanes.lanes).is_empty(),
                "round {round}: a lane outlived drain"
            );
            assert_eq!(lanes.in_flight(), 0, "round {round}");
        }
    }

    #[tokio::test]
    async fn a_panicking_job_does_not_block_its_chat() {
        let lanes = ChatLanes::new(2);
        lanes
            .submit(1, async { panic!("plugin adapter bug") })
            .await;
        // Queued behind the panic, in the same lane: it still runs.
        let (done, mut rx) = mpsc::unbounded_channel();
        let behind = done.clone();
        lanes
            .submit(1, async move { behind.send(1).unwrap() })
            .await;
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(2), rx.recv())
                .await
                .unwrap(),
            Some(1)
        );
        // And so does a message sent after the lane is gone.
        assert!(lanes.drain(Duration::from_secs(1)).await, "a permit leaked");
        assert!(lock(&lanes.lanes).is_empty());
        lanes
            .submit(1, async { panic!("plugin adapter bug") })
            .await;
        lanes.submit(1, async move { done.send(2).unwrap() }).await;
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(2), rx.recv())
                .await
                .unwrap(),
            Some(2)
        );
        assert!(lanes.drain(Duration::from_secs(1)).await, "a permit leaked");
        assert!(lock(&lanes.lanes).is_empty());
    }
}
