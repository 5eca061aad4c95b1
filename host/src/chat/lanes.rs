//! Flow control for adapters that receive many chats at once: the messages of
//! one chat are handled in order, different chats concurrently, and no more
//! than a fixed number are queued or running in total. When that many are in
//! flight, `submit` waits: the adapter stops taking updates (backpressure)
//! instead of buffering without bound.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;
type Lanes = Arc<Mutex<HashMap<i64, mpsc::UnboundedSender<Job>>>>;

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
        let job: Job = Box::pin(async move {
            job.await;
            drop(permit);
        });
        let mut lanes = lock(&self.lanes);
        // A lane whose worker died (a panicking job) refuses the send: start a new one.
        let job = match lanes.get(&chat_id) {
            Some(lane) => match lane.send(job) {
                Ok(()) => return,
                Err(mpsc::error::SendError(job)) => job,
            },
            None => job,
        };
        let (lane, queue) = mpsc::unbounded_channel();
        let _ = lane.send(job);
        lanes.insert(chat_id, lane);
        tokio::spawn(run_lane(chat_id, queue, self.lanes.clone()));
    }

    /// Messages queued or running now.
    pub fn in_flight(&self) -> usize {
        self.capacity as usize - self.in_flight.available_permits()
    }

    /// Waits until every queued and running message is done, at most `deadline`.
    /// Returns whether all finished.
    pub async fn drain(&self, deadline: Duration) -> bool {
        tokio::time::timeout(deadline, self.in_flight.acquire_many(self.capacity))
            .await
            .is_ok_and(|permits| permits.is_ok())
    }
}

/// One chat's worker: runs its jobs in order and ends when the queue is empty.
async fn run_lane(chat_id: i64, mut queue: mpsc::UnboundedReceiver<Job>, lanes: Lanes) {
    loop {
        while let Ok(job) = queue.try_recv() {
            job.await;
        }
        // Submitters send while holding this lock, so an empty queue seen
        // under it stays empty until the lane is gone.
        let mut lanes = lock(&lanes);
        if queue.is_empty() {
            lanes.remove(&chat_id);
            return;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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

    #[tokio::test]
    async fn a_panicking_job_does_not_block_its_chat() {
        let lanes = ChatLanes::new(2);
        lanes
            .submit(1, async { panic!("plugin adapter bug") })
            .await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (done, mut rx) = mpsc::unbounded_channel();
        lanes.submit(1, async move { done.send(()).unwrap() }).await;
        tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(lanes.drain(Duration::from_secs(1)).await);
    }
}
